"""The ``ec-recommend`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ec_recommend.config import Config, ConfigError
from ec_recommend.platform import errors, heap
from ec_recommend.runtime import process
from ec_recommend.runtime.endpoints_file import with_running_up
from ec_recommend.runtime.events import (
    EVENT_COMMANDS,
    add_event_commands,
    hosted_consumers,
    run_event_command,
)
from ec_recommend.runtime.registry import (
    CONSUMERS,
    ServiceEnv,
    available_services,
    certificate_names,
)

if TYPE_CHECKING:
    from ec_recommend.platform.events.published_here import PublishedHere
    from ec_recommend.platform.rpc.client import ClientFactory
    from ec_recommend.runtime.local_aws import MotoChild

# Only light modules above: `up` starts its broker's child before it imports
# what runs in this process, so the two load side by side (_up).
log = logging.getLogger("ec_recommend")

DESCRIPTION = """\
ec-recommend: an e-commerce backend as asyncio microservices.
Start with `ec-recommend up`; `ec-recommend COMMAND --help` tells more.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ec-recommend",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the whole system locally with demo data (one process)",
        description="Start every service in one process on one event loop, load demo "
        "data, write <data-dir>/endpoints.json and run until Ctrl-C (SIGINT), "
        "SIGTERM or SIGHUP.",
    )
    up.add_argument(
        "--host",
        default=None,
        help="gateway address (default: EC_GATEWAY_HOST, else 127.0.0.1)",
    )
    up.add_argument(
        "--port",
        type=int,
        default=None,
        help="gateway port, 0 = any free port (default: EC_GATEWAY_PORT, else 8080)",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the data lives (default: EC_DATA_DIR, else .ec-data)",
    )
    up.add_argument("--no-demo", action="store_true", help="do not load demo data")
    up.add_argument(
        "--mtls",
        action="store_true",
        help="mTLS (STRICT) between all services, with development certificates "
        "under <data-dir>/certs (created on first use)",
    )
    up.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    up.add_argument(
        "--insecure-auth",
        action="store_true",
        help="let --host be a non-loopback address although the local identity provider's "
        "signing key is public (anyone who can reach the gateway can forge any token)",
    )
    up.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="gateway processes sharing the port (SO_REUSEPORT): this one and N-1 workers "
        "(default: 1)",
    )
    up.add_argument(
        "--json",
        action="store_true",
        help="report readiness as one JSON line, as when stdout is not a terminal",
    )

    serve = commands.add_parser(
        "serve",
        help="run one or more services, consumers and/or the gateway in one process",
        description="Run the named services, each on its own gRPC port, until "
        "SIGINT, SIGTERM or SIGHUP, then drain in-flight calls and stop. Ports come from "
        "EC_PORT_<SERVICE> or the config file (default: any free port); one JSON "
        "line on stdout reports where each service listens.",
    )
    serve.add_argument(
        "services",
        nargs="+",
        metavar="SERVICE",
        help=f"one or more of: {', '.join(_servable())}",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where SQLite files live (default: EC_DATA_DIR, else .ec-data)",
    )
    serve.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="with gateway: gateway processes sharing its port, this one and N-1 workers",
    )

    certs = commands.add_parser(
        "certs",
        help="development CA and service certificates for mTLS (certs init)",
        description="certs init: create a development CA and one certificate per "
        "service, consumer and the gateway (kept if present; --force starts over).",
    )
    certs.add_argument("action", choices=["init"])
    certs.add_argument("--dir", type=Path, default=None, help="default: <data-dir>/certs")
    certs.add_argument("--force", action="store_true", help="replace the CA and every certificate")
    certs.add_argument("--data-dir", type=Path, default=None, help="where the data lives")
    certs.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    add_event_commands(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ec-recommend")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _servable() -> list[str]:
    """What ``serve`` can host: services, event consumers and the gateway."""
    return list(dict.fromkeys([*available_services(), *CONSUMERS, "gateway"]))


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError("a number of processes from 1 to 64")
    return count


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = Config.from_env(file=args.config)
    except ConfigError as exc:
        print(f"ec-recommend: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.data_dir is not None:
        config = config.with_data_dir(args.data_dir)
    if getattr(args, "mtls", False):
        from ec_recommend.platform.security.tls import dev_tls_config

        config = replace(
            config, tls=dev_tls_config(config.storage.data_dir / "certs", certificate_names())
        )
    process.configure_logging(config)
    if args.command == "certs":
        return _certs_init(config, args)
    if args.command in EVENT_COMMANDS:
        return run_event_command(config, args)
    try:  # mesh.yaml is validated before anything starts
        from ec_recommend.platform.rpc.mesh import load_mesh

        load_mesh(config.mesh_file)
    except ConfigError as exc:
        print(f"ec-recommend: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve_command(config, args)
    return _up_command(config, args)


def _serve_command(config: Config, args: argparse.Namespace) -> int:
    known = _servable()
    unknown = [name for name in args.services if name not in known]
    if unknown:
        return _fail(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(known)}")
    consumers = [name for name in args.services if name in CONSUMERS]
    services = [name for name in args.services if name in available_services()]
    gateway = "gateway" in args.services
    if args.workers > 1 and not gateway:
        return _fail("--workers is for the gateway: serve gateway")
    if consumers or gateway:
        config = with_running_up(config)
    if consumers and not config.events.enabled:
        return _fail(
            "consumers need SNS/SQS: run `ec-recommend up` in the data dir, "
            "or set EC_AWS_ENDPOINT_URL, or EC_PROFILE=production"
        )
    if gateway and not config.auth.configured:
        return _fail(
            "the gateway needs a Cognito pool: run `ec-recommend up` in the data dir, "
            "or set EC_COGNITO_USER_POOL_ID and EC_COGNITO_CLIENT_ID "
            "(and EC_COGNITO_ENDPOINT_URL for moto)"
        )
    if gateway and (busy := process.port_in_use(config.gateway.host, config.gateway.port)):
        return _fail(busy + "; set EC_GATEWAY_PORT")
    try:
        return process.run(
            _serve(config, services, consumers, gateway=gateway, workers=args.workers)
        )
    except errors.Unavailable as exc:  # at start: a consumer's service has no address
        return _fail(f"{exc}; set EC_ENDPOINTS_<SERVICE>=host:port, or serve it in this process")


def _up_command(config: Config, args: argparse.Namespace) -> int:
    host = args.host or config.gateway.host
    port = config.gateway.port if args.port is None else args.port
    from ec_recommend.runtime.local_identity import listen_refusal

    if (refusal := listen_refusal(host, insecure=args.insecure_auth)) is not None:
        return _fail(refusal)
    if busy := process.port_in_use(host, port):
        return _fail(busy + "; choose another with --port (0 = any free port)")
    return process.run(_up(config, args, host, port))


def _fail(message: str) -> int:
    """One line on stderr and the usage exit status: what is wrong and what to do."""
    print(f"ec-recommend: {message}", file=sys.stderr)
    return 2


def _certs_init(config: Config, args: argparse.Namespace) -> int:
    from ec_recommend.platform.security.certs import init_certificates

    directory = args.dir or config.storage.data_dir / "certs"
    written = init_certificates(directory, certificate_names(), force=args.force)
    print(f"certificates in {directory}: wrote {', '.join(written) or 'nothing (all present)'}")
    return 0


async def _serve(
    config: Config,
    names: Sequence[str],
    consumers: Sequence[str] = (),
    *,
    gateway: bool = False,
    workers: int = 1,
) -> int:
    from ec_recommend.platform.events.published_here import PublishedHere
    from ec_recommend.platform.security.tls import GATEWAY
    from ec_recommend.platform.telemetry.endpoint import serve_metrics
    from ec_recommend.runtime.host import host_services

    # A gateway here hears what this process's relays publish; other
    # processes' events still reach it through its queue.
    published_here = PublishedHere(complete=False) if gateway else None

    async def body(stop: asyncio.Event) -> None:
        telemetry = config.telemetry
        async with (
            host_services(
                config,
                names,
                identity=GATEWAY if gateway else None,
                published_here=published_here,
            ) as hosted,
            serve_metrics(telemetry.metrics_host, telemetry.metrics_port) as metrics,
        ):
            env = ServiceEnv(config=config, clients=hosted.clients)
            async with (
                hosted_consumers(config, env, consumers),
                _gateway(
                    config,
                    hosted.clients,
                    hosted.endpoints(),
                    gateway,
                    workers,
                    published_here=published_here,
                ) as gateway_url,
            ):
                heap.settle()
                process.report_ready(
                    services=hosted.endpoints(),
                    consumers=list(consumers),
                    metrics_url=metrics.url,
                    gateway_url=gateway_url,
                )
                await stop.wait()
            log.info("stopping: draining in-flight calls")

    with process.traced(config, "+".join([*names, *consumers])):
        await process.until_stopped(body)
    return 0


@asynccontextmanager
async def _gateway(
    config: Config,
    clients: ClientFactory,
    hosted: Mapping[str, str],
    enabled: bool,
    workers: int = 1,
    published_here: PublishedHere | None = None,
) -> AsyncIterator[str | None]:
    """The REST gateway in this process (and its workers) when ``serve gateway`` asked."""
    if not enabled:
        yield None
        return
    from ec_recommend.edge.gateway.app import served_gateway

    async with served_gateway(
        config, clients, hosted, workers=workers, published_here=published_here
    ) as url:
        yield url


async def _up(config: Config, args: argparse.Namespace, host: str, port: int) -> int:
    from ec_recommend.runtime.local_aws import spawned_moto

    async def body(stop: asyncio.Event) -> None:
        started = time.monotonic()
        # The broker's child starts first: it loads moto on the other core
        # while this process imports the system (~1 s each on a slow machine).
        async with spawned_moto(host) as moto:
            await _up_running(config, args, host, port, moto, started, stop)

    with process.traced(config, "ec-recommend"):
        await process.until_stopped(body)
    return 0


async def _up_running(
    config: Config,
    args: argparse.Namespace,
    host: str,
    port: int,
    moto: MotoChild,
    started: float,
    stop: asyncio.Event,
) -> None:
    from ec_recommend.runtime.local_system import DEMO_PASSWORD, local_system, ready_summary

    async with local_system(
        config, host=host, port=port, demo=not args.no_demo, workers=args.workers, moto=moto
    ) as system:
        demo_password = None if args.no_demo else DEMO_PASSWORD
        heap.settle()
        if sys.stdout.isatty() and not args.json:
            print(
                ready_summary(system, demo_password, seconds=time.monotonic() - started),
                flush=True,
            )
        else:
            process.report_ready(
                **system.endpoints,
                endpoints_file=str(system.endpoints_file),
                demo_password=demo_password,
            )
        await stop.wait()
        log.info("stopping: gateway, consumers, services, then local AWS")


if __name__ == "__main__":
    sys.exit(main())
