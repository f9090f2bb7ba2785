"""``ec-recommend up``: the whole system on one machine, in one process.

Order of start: moto's server (child process) -> Cognito pool and SNS/SQS
topology on it, while every gRPC service is built beside (their outbox
relays wait for the topology) -> event consumers -> replay of the
events the last broker may not have delivered -> demo data (with real
Cognito accounts), while the gateway starts beside them (it listens, not
ready) -> ``<data-dir>/endpoints.json`` -> ``/readyz`` turns 200.
Everything stops in reverse order on exit; a stop first lets the events
in flight reach their subscribers (bounded).

moto's child is supervised (``local_broker``): when it dies it is started
again on the same port, the pool, sender identity and topology are put back
and the outbox replays what the dead child held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ec_recommend.config import Config
from ec_recommend.edge.gateway.app import cognito_setup, create_app, mark_ready, serving
from ec_recommend.edge.gateway.health import BROKER_STATE
from ec_recommend.edge.gateway.workers import GatewayWorkers, per_process_limits, worker_spec
from ec_recommend.platform import errors
from ec_recommend.platform.aws import LocalAws
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.published_here import PublishedHere
from ec_recommend.platform.events.relay import OutboxRelay
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.security.call_token import renew_data_dir_key
from ec_recommend.platform.security.tls import GATEWAY
from ec_recommend.runtime import local_identity, replay_window
from ec_recommend.runtime.background_enter import BackgroundEnter
from ec_recommend.runtime.endpoints_file import endpoints_path, write_endpoints
from ec_recommend.runtime.events import hosted_consumers
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.local_aws import MotoChild
from ec_recommend.runtime.local_broker import LocalBroker
from ec_recommend.runtime.registry import CONSUMERS, ServiceEnv, available_services

log = logging.getLogger(__name__)

DEMO_PASSWORD = "Demo-password-1"


@dataclass(frozen=True)
class LocalSystem:
    endpoints: dict[str, Any]
    endpoints_file: Path


def ready_summary(system: LocalSystem, demo_password: str | None, *, seconds: float) -> str:
    """What a person at a terminal needs once ``up`` is ready (tools get the JSON line)."""
    from ec_recommend.runtime.demo import DEMO_USERS

    gateway = system.endpoints["gateway_url"]
    lines = [
        f"ec-recommend is up (ready in {seconds:.1f} s)",
        f"  REST API      {gateway}/api/v1/products",
        f"  OpenAPI       {gateway}/api/v1/openapi.json",
    ]
    if demo_password:
        accounts = ", ".join(email for _subject, email, _name in DEMO_USERS)
        lines.append(f"  demo accounts {accounts} (password {demo_password})")
    lines += [
        f"  local AWS     {system.endpoints['aws_endpoint_url']} (moto)",
        f"  endpoints     {system.endpoints_file}",
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def local_config(config: Config, aws: LocalAws) -> Config:
    """``config`` pointed at the local AWS, with the local profile's conveniences."""
    auth = replace(
        config.auth,
        region=aws.region,
        endpoint_url=aws.endpoint_url,
        allow_seller_signup=True,
        auto_confirm=True,
    )
    events = replace(config.events, enabled=True, endpoint_url=aws.endpoint_url, region=aws.region)
    return replace(config, auth=auth, events=events)


async def _seed(aws: LocalAws, tag: str) -> None:
    """Seed moto's random ids by the data dir's tag: the pool and the demo
    accounts get the same ids on every run in one data dir, so its demo users
    can log in again, and other ids in another data dir (local_identity.py).
    (Accounts signed up later live only as long as this moto child.)"""
    import aiohttp

    seed = {"a": str(local_identity.moto_seed(tag))}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{aws.endpoint_url}/moto-api/seed", params=seed) as response,
    ):
        if response.status != 200:
            log.warning("could not seed moto (HTTP %s): demo ids differ per run", response.status)


async def _provision(
    config: Config, aws: LocalAws, demo: bool
) -> tuple[Config, dict[str, Any], dict[str, str]]:
    """Cognito pool, demo accounts (email -> subject), then the SNS/SQS topology."""
    from ec_recommend.platform.auth.provision import provision_user_pool
    from ec_recommend.platform.events.provision import provision
    from ec_recommend.platform.events.topology import load_topology

    pool = await provision_user_pool(aws, config.auth.pool_name)
    config = replace(config, auth=pool.apply(config.auth))
    # right after the pool, before anything else draws on moto's random ids
    subjects = await _demo_accounts(config) if demo else {}
    await _prepare_email(config)  # before the topology lets events reach the mailer
    report = await provision(config.events, load_topology(config.events.topology_path))
    log.info(
        "SNS/SQS topology: %d topics, %d queues", len(report.topic_arns), len(report.queue_urls)
    )
    facts = {
        "aws_endpoint_url": aws.endpoint_url,
        "region": aws.region,
        "cognito_user_pool_id": pool.user_pool_id,
        "cognito_client_id": pool.client_id,
        "topics": dict(report.topic_arns),
        "queues": dict(report.queue_urls),
    }
    return config, facts, subjects


async def _seeded_provision(
    config: Config, aws: LocalAws, demo: bool, tag: str
) -> tuple[Config, dict[str, Any], dict[str, str]]:
    await _seed(aws, tag)
    return await _provision(config, aws, demo)


async def _settled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` if it still runs (a start that failed elsewhere) and wait for it."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _prepare_email(config: Config) -> None:
    """SES refuses mail from an unverified sender and bulk mail without its
    stored template; a fresh moto knows neither."""
    if not config.notification.verify_sender:
        return
    from ec_recommend.consumers.email import prepare_sending
    from ec_recommend.platform.aws import open_aws_client

    async with open_aws_client(
        "ses", region=config.events.region, endpoint_url=config.events.endpoint_url
    ) as ses:
        await prepare_sending(ses, config.notification.sender)


async def _restore(
    config: Config, aws: LocalAws, demo: bool, clients: ClientFactory, tag: str
) -> None:
    """Put back on a fresh moto child what the dead one held.

    The pool gets its old id (ids are hashed from the pool's name, see
    ``local_aws``); the demo accounts are signed up again and our users
    follow their subjects; other accounts sign up again (their emails relink).
    """
    await _seed(aws, tag)
    restored, _facts, subjects = await _provision(config, aws, demo)
    if restored.auth.user_pool_id != config.auth.user_pool_id:
        # Tokens name the pool: logins fail until up restarts, events still flow.
        log.error(
            "the recreated Cognito pool has id %s, not %s; restart up to log in again",
            restored.auth.user_pool_id,
            config.auth.user_pool_id,
        )
    if subjects:
        from ec_recommend.runtime.demo import relink_demo_users

        await relink_demo_users(clients, subjects)


class _CleanStop:
    """On a clean exit, let events in flight arrive, then record the stop for the next start."""

    def __init__(self, config: Config, relays: Sequence[OutboxRelay]) -> None:
        self.config = config
        self.relays = relays

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return  # not clean: the next start replays since this broker started
        log.info(
            "stopping: letting events in flight reach their subscribers (up to %.0f s)",
            self.config.events.shutdown_grace,
        )
        try:
            done = await replay_window.drained(
                self.relays, self.config.events, self.config.events.shutdown_grace
            )
        except Exception as error:  # the broker may be down right now
            log.warning("cannot tell whether every event was delivered: %s", error)
            return
        if done:
            replay_window.write_mark(self.config.storage.data_dir, utcnow())


async def _demo_accounts(config: Config) -> dict[str, str]:
    """Cognito accounts for the demo users (email -> subject), so they can log in."""
    from ec_recommend.platform.auth.cognito import CognitoAccounts, cognito_client
    from ec_recommend.runtime.demo import DEMO_SELLER_ID, DEMO_USERS, demo_group

    subjects: dict[str, str] = {}
    async with cognito_client(config.auth) as client:
        accounts = CognitoAccounts(
            client,
            user_pool_id=config.auth.user_pool_id,
            client_id=config.auth.client_id,
            auto_confirm=True,
            allow_seller_signup=True,
            new_seller_id=lambda: DEMO_SELLER_ID,
        )
        for _subject, email, name in DEMO_USERS:
            group = demo_group(email)
            # Sign-up makes customers and sellers only; an operator is promoted after.
            role = "seller" if group == "seller" else "customer"
            try:
                result = await accounts.signup(email, DEMO_PASSWORD, name, role)
            except errors.AlreadyExists:
                continue
            if group == "admin":
                await client.admin_add_user_to_group(
                    UserPoolId=config.auth.user_pool_id, Username=email, GroupName=group
                )
            subjects[email] = result.sub
    return subjects


@asynccontextmanager
async def local_system(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    demo: bool = True,
    workers: int = 1,
    moto: MotoChild | None = None,
) -> AsyncIterator[LocalSystem]:
    """``workers`` > 1: the gateway also runs in workers - 1 more processes on its
    port (edge/gateway/workers.py), dialling the services hosted here. ``moto``:
    the broker's child if the caller started it already (on ``host``)."""
    data_dir = config.storage.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    path = endpoints_path(data_dir)
    # A file from an earlier run names ports that are gone; readers wait for the new one.
    path.unlink(missing_ok=True)
    tag = local_identity.pool_tag(data_dir)
    pool = local_identity.pool_name(config.auth.pool_name, tag)
    config = replace(config, auth=replace(config.auth, pool_name=pool))
    if config.tls.call_key is None:
        # a fresh key on every start, kept in the data dir for what runs beside
        # up there (gateway workers get this config; `serve` reads the file)
        config = replace(config, tls=replace(config.tls, call_key=renew_data_dir_key(data_dir)))
    local_identity.warn_if_exposed(host)
    async with AsyncExitStack() as stack:
        stack.callback(path.unlink, missing_ok=True)
        broker = await stack.enter_async_context(LocalBroker(host, spawned=moto))
        aws = broker.aws
        config = local_config(config, aws)
        # The services' migrations and servers need no broker: they are built
        # while moto provisions (its CPU is the child's, theirs ours). Their
        # relays wait for the topology; nothing else draws on moto's seeded
        # ids meanwhile, so the demo accounts keep theirs.
        provisioning = asyncio.create_task(_seeded_provision(config, aws, demo, tag))
        stack.push_async_callback(_settled, provisioning)
        names = available_services()
        # the gateway and the demo loader call as the gateway; services and
        # consumers as themselves
        # This process's gateway hears what its own relays publish: they are
        # every service's, so it needs no queue of its own to push events.
        published_here = PublishedHere()
        hosted = await stack.enter_async_context(
            host_services(
                config,
                names,
                identity=GATEWAY,
                relays_after=provisioning,
                published_here=published_here,
            )
        )
        config, facts, subjects = await provisioning
        edge = per_process_limits(config, workers)
        app = create_app(
            cognito_setup(
                edge,
                clients=hosted.clients,
                services=names,
                ready=False,
                published_here=published_here,
            )
        )
        app[BROKER_STATE] = broker.state
        # Its resources mostly wait on the broker: they start while the consumers
        # start and the demo data loads. It is not ready (/readyz) until the end.
        gateway = BackgroundEnter(
            serving(app, host, port, reuse_port=workers > 1), name="gateway-start"
        )
        stack.push_async_callback(gateway.abandon)
        await stack.enter_async_context(
            hosted_consumers(
                config, ServiceEnv(config=config, clients=hosted.clients), list(CONSUMERS)
            )
        )
        log.info("event consumers running: %d", len(CONSUMERS))
        # This broker is new: what the last one held unsent to subscribers goes again.
        await _replay(data_dir, hosted.relays, replay_window.read_mark(data_dir), broker.started_at)

        async def on_restart(fresh: LocalAws, died_started_at: datetime) -> None:
            await _restore(config, fresh, demo, hosted.clients, tag)
            await _replay(data_dir, hosted.relays, died_started_at, utcnow())

        broker.on_restart = on_restart
        await stack.enter_async_context(_CleanStop(config, hosted.relays))
        if demo:
            from ec_recommend.runtime.demo import load_demo_data

            await load_demo_data(hosted.clients, subjects)
        # Workers are waited for after this gateway's own shutdown, told to stop before it.
        workers_exit = await stack.enter_async_context(AsyncExitStack())
        gateway_url = await gateway.handover(stack)  # it stops first, as if entered here
        if workers > 1:
            started = await workers_exit.enter_async_context(
                _workers(edge, app, gateway_url, hosted, workers)
            )
            stack.callback(started.begin_stop)
        # services: what a `serve` of a consumer or a gateway next to it dials
        endpoints = {"gateway_url": gateway_url, **facts, "services": hosted.endpoints()}
        write_endpoints(data_dir, endpoints)
        mark_ready(app)
        log.info("gateway listening on %s; endpoints in %s", gateway_url, path)
        yield LocalSystem(endpoints, path)


def _workers(
    config: Config, app: Any, gateway_url: str, hosted: Any, workers: int
) -> GatewayWorkers:
    """The gateway's worker processes: the same gateway, dialling the services here."""
    from ec_recommend.edge.gateway.keys import PRODUCT_CACHE
    from ec_recommend.platform.cache import LocalProductCache

    spec = worker_spec(
        config,
        port=int(gateway_url.rsplit(":", 1)[1]),
        endpoints=hosted.endpoints(),
        services=available_services(),
    )
    cache = app[PRODUCT_CACHE]
    return GatewayWorkers(
        spec, workers - 1, cache if isinstance(cache, LocalProductCache) else None
    )


async def _replay(
    data_dir: Path, relays: Sequence[OutboxRelay], since: datetime | None, broker_start: datetime
) -> None:
    """Replay since ``since``, then remember that this broker's start is the new bound."""
    await replay_window.replay(relays, since)
    replay_window.write_mark(data_dir, broker_start)
