"""Event plumbing for processes and the command line.

``hosted_consumers`` runs registered consumers (``registry.CONSUMERS``) on the
current loop; ``add_event_commands``/``run_event_command`` give the CLI its
``provision``, ``dlq`` and ``events replay`` commands. Relays need nothing here: the host starts
one for every service database in ``env.outboxes``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ec_recommend.config import Config
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.runtime import process
from ec_recommend.runtime.endpoints_file import with_running_up
from ec_recommend.runtime.registry import CONSUMERS, ServiceEnv

if TYPE_CHECKING:
    from ec_recommend.platform.events.consumer import Subscription
    from ec_recommend.platform.events.worker import ConsumerWorker

log = logging.getLogger(__name__)

EVENT_COMMANDS = ("provision", "dlq", "events")
EMIT_CHOICES = ("cloudformation", "authorizer-zip")
# Services whose database holds an outbox (``env.outboxes`` in their build).
OUTBOX_SERVICES = ("user", "product", "order")


async def _subscription(name: str, env: ServiceEnv, stack: AsyncExitStack) -> Subscription:
    # imported here: the command line reads this module before `up` starts its broker
    from ec_recommend.platform.events.consumer import Subscription

    try:
        module = importlib.import_module(CONSUMERS[name])
    except KeyError:
        raise ValueError(f"unknown consumer {name!r}; choose from {', '.join(CONSUMERS)}") from None
    with acting_as(name):  # what it starts here calls as the consumer, too
        made: Any = module.subscription(env)
        if hasattr(made, "__aenter__"):
            made = await stack.enter_async_context(made)
        elif hasattr(made, "__await__"):
            made = await made
    if not isinstance(made, Subscription):
        raise TypeError(f"consumer {name}: subscription() gave {type(made).__name__}")
    # the registered name is the one `certs init` writes a certificate for
    return replace(made, identity=name)


@asynccontextmanager
async def hosted_consumers(
    config: Config, env: ServiceEnv, names: Sequence[str]
) -> AsyncIterator[list[ConsumerWorker]]:
    """Run the named consumers until the block exits (then drain them)."""
    from ec_recommend.platform.events.runner import running_consumers

    async with AsyncExitStack() as stack:
        subscriptions = [await _subscription(name, env, stack) for name in dict.fromkeys(names)]
        workers = await stack.enter_async_context(
            running_consumers(config.storage, config.events, subscriptions)
        )
        yield workers


_DATA_DIR_HELP = (
    "where a running `up` keeps its endpoints.json, used when no AWS endpoint is set "
    "(default: EC_DATA_DIR, else .ec-data)"
)


def add_event_commands(commands: Any) -> None:
    """Add ``provision`` and ``dlq`` to the CLI's subcommands."""
    provision = commands.add_parser(
        "provision",
        help="create or update the SNS/SQS topology and Cognito pool (idempotent)",
        description="Create or update topics, queues, DLQs, queue policies and "
        "subscriptions from settings/topology.yaml (EC_AWS_ENDPOINT_URL for moto, AWS "
        "otherwise). Idempotent: prints what it created or updated. With --emit, "
        "call nothing and write instead: `cloudformation`, a CloudFormation template "
        "of the topology, Cognito pool, SES sender and an API Gateway with the Lambda "
        "authorizer; `authorizer-zip`, that authorizer's deployment package.",
    )
    provision.add_argument(
        "--emit",
        choices=EMIT_CHOICES,
        default=None,
        help="write a CloudFormation template or the authorizer's zip instead of provisioning",
    )
    provision.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where --emit writes (template: default stdout; zip: default "
        "ec-recommend-authorizer.zip)",
    )
    provision.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    provision.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    dlq = commands.add_parser(
        "dlq",
        help="list, show, redrive or purge dead-letter queues",
        description="list [QUEUE]: messages in each DLQ. show QUEUE: peek at dead "
        "letters. redrive QUEUE [--max N]: move them back to the source queue. "
        "purge QUEUE [--yes]: delete them (asks first). QUEUE is a queue or DLQ name.",
    )
    dlq.add_argument("action", choices=["list", "show", "redrive", "purge"])
    dlq.add_argument("queue", nargs="?", default=None, metavar="QUEUE")
    dlq.add_argument("--max", type=int, default=None, help="at most N messages")
    dlq.add_argument("--yes", action="store_true", help="purge without asking")
    dlq.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    dlq.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    events = commands.add_parser(
        "events",
        help="replay: publish the events sent since a time again (inboxes dedupe)",
        description="replay --since TIME [--service S ...]: outbox rows sent at or after "
        "TIME (ISO 8601, UTC unless an offset is given, or a duration back from now: "
        "90s, 15m, 2h, 1d) become pending, so the relay of a running or the next "
        "`up`/`serve` publishes them again. Consumers dedupe on the event id, so a "
        "replay is harmless. Default: every service with an outbox.",
    )
    events.add_argument("action", choices=["replay"])
    events.add_argument("--since", required=True, help="ISO 8601 time or duration (15m)")
    events.add_argument(
        "--service",
        action="append",
        choices=OUTBOX_SERVICES,
        default=None,
        help="a service whose outbox to replay (repeatable; default: all)",
    )
    events.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    events.add_argument("--data-dir", type=Path, default=None, help="where the data lives")


def run_event_command(config: Config, args: argparse.Namespace) -> int:
    if args.command == "events":
        return _run_replay(config, args)
    if args.command == "provision" and args.emit:
        return _emit(config, args.emit, args.out)
    config = with_running_up(config)
    if not config.events.enabled:
        print(
            "ec-recommend: events are not configured: run `ec-recommend up` in the data dir "
            f"({config.storage.data_dir}), or set EC_AWS_ENDPOINT_URL (moto) "
            "or EC_PROFILE=production (AWS)",
            file=sys.stderr,
        )
        return 2
    if config.events.endpoint_url and (why := process.unreachable(config.events.endpoint_url)):
        print(f"ec-recommend: {why}", file=sys.stderr)
        return 1
    if args.command == "provision":
        return process.run(_aws_errors_in_one_line(_provision(config), config.events.endpoint_url))
    if args.action != "list" and not args.queue:
        print(f"ec-recommend: dlq {args.action} needs a QUEUE", file=sys.stderr)
        return 2
    if args.max is not None and args.max < 1:
        print("ec-recommend: --max must be at least 1", file=sys.stderr)
        return 2
    if args.action == "purge" and not args.yes:
        try:
            answer = input(f"Delete every message in the DLQ of {args.queue}? [y/N] ")
        except EOFError:  # no one to ask (stdin closed): the safe answer
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    return process.run(_aws_errors_in_one_line(_dlq(config, args), config.events.endpoint_url))


async def _aws_errors_in_one_line(work: Awaitable[int], endpoint: str | None) -> int:
    """An AWS failure at the command line is one line naming where, not a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return await work
    except (BotoCoreError, ClientError, OSError) as exc:
        print(f"ec-recommend: AWS at {endpoint or 'its default endpoint'}: {exc}", file=sys.stderr)
        return 1


def _emit(config: Config, what: str, out: Path | None) -> int:
    """Write the CloudFormation template or the authorizer's package; call no AWS API."""
    from ec_recommend.deploy import build_template, package_authorizer, render
    from ec_recommend.deploy.package import PackagingError
    from ec_recommend.deploy.template import lambda_python

    target = out or Path("ec-recommend-authorizer.zip")
    try:
        if what == "cloudformation":
            # a settings file that cannot be read is a ValueError naming it
            text = render(build_template(config))
            if out is None:
                sys.stdout.write(text)
                return 0
            partial = out.with_name(out.name + ".partial")
            partial.write_text(text, encoding="utf-8")
            partial.replace(out)  # never a half-written template at ``out``
            print(f"wrote {out}")
            return 0
        count = package_authorizer(target, lambda_python())
    except (OSError, ValueError) as exc:  # an unwritable --out, unreadable settings
        print(f"ec-recommend: {exc}", file=sys.stderr)
        return 2
    except PackagingError as exc:
        print(f"ec-recommend: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target} ({count} files, {target.stat().st_size // 1024} KiB)")
    return 0


async def _provision(config: Config) -> int:
    from ec_recommend.platform.events.provision import provision
    from ec_recommend.platform.events.topology import load_topology

    report = await provision(config.events, load_topology(config.events.topology_path))
    for line in report.lines():
        print(line)
    print(
        f"{len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged"
    )
    print(await _store_email_template(config))
    if config.auth.endpoint_url or config.profile == "production":
        from ec_recommend.platform.auth.provision import provision_user_pool

        pool = await provision_user_pool(config.auth)
        print(
            f"cognito pool {config.auth.pool_name}: EC_COGNITO_USER_POOL_ID={pool.user_pool_id} "
            f"EC_COGNITO_CLIENT_ID={pool.client_id}"
        )
    else:
        print("cognito pool: skipped (set EC_COGNITO_ENDPOINT_URL, or use the production profile)")
    return 0


async def _store_email_template(config: Config) -> str:
    """The SES template every email is sent through (see consumers/email.py)."""
    from ec_recommend.consumers.email import PASSTHROUGH_TEMPLATE, store_template
    from ec_recommend.platform.aws import open_aws_client

    async with open_aws_client(
        "ses", region=config.events.region, endpoint_url=config.events.endpoint_url
    ) as ses:
        state = "created" if await store_template(ses) else "unchanged"
    return f"ses template {PASSTHROUGH_TEMPLATE}: {state}"


async def _dlq(config: Config, args: argparse.Namespace) -> int:
    from ec_recommend.platform.events import dlq
    from ec_recommend.platform.events.aws import aws_client
    from ec_recommend.platform.events.topology import TopologyError, load_topology

    topology = load_topology(config.events.topology_path)
    try:
        queue = topology.queue(args.queue) if args.queue else None
    except TopologyError as exc:
        print(f"ec-recommend: {exc}", file=sys.stderr)
        return 2
    async with aws_client("sqs", config.events) as sqs:
        if args.action == "list":
            depths = await dlq.depths(sqs, config.events, topology)
            for name, count in depths.items():
                if queue is None or name == queue.dlq:
                    print(f"{name}\t{count}")
            return 0
        assert queue is not None
        if args.action == "show":
            for letter in await dlq.peek(sqs, config.events, queue, args.max or 10):
                print(letter.summary())
                print(f"  {letter.body[:500]}")
            return 0
        if args.action == "redrive":
            moved = await dlq.redrive(sqs, config.events, queue, args.max)
            print(f"moved {moved} message(s) from {queue.dlq} back to {queue.name}")
            return 0
        await dlq.purge(sqs, config.events, queue)
        print(f"purged {queue.dlq}")
        return 0


def _run_replay(config: Config, args: argparse.Namespace) -> int:
    from ec_recommend.platform.clock import utcnow
    from ec_recommend.platform.events.replay import BadSince, parse_since

    try:
        since = parse_since(args.since, utcnow())
    except BadSince as exc:
        print(f"ec-recommend: {exc}", file=sys.stderr)
        return 2
    return process.run(_replay(config, args.service or list(OUTBOX_SERVICES), since))


async def _replay(config: Config, services: Sequence[str], since: datetime) -> int:
    from sqlalchemy.exc import DBAPIError

    from ec_recommend.platform.events.replay import mark_unsent
    from ec_recommend.platform.storage import open_database

    for service in dict.fromkeys(services):
        if (
            not config.storage.database_url
            and not (config.storage.data_dir / f"{service}.db").exists()
        ):
            print(f"{service}: no database in {config.storage.data_dir}; nothing to replay")
            continue
        async with open_database(config.storage, service, []) as db:
            try:
                count = await mark_unsent(db, since)
            except DBAPIError:  # no outbox table: the service never ran here
                print(f"{service}: no outbox in this database; nothing to replay")
                continue
        print(f"{service}: {count} event(s) sent since {since.isoformat()} will be published again")
    return 0
