"""The ``ec-recommend`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from ec_recommend.config import Config, ConfigError
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.runtime import process
from ec_recommend.runtime.events import (
    EVENT_COMMANDS,
    add_event_commands,
    hosted_consumers,
    run_event_command,
)
from ec_recommend.runtime.registry import CONSUMERS, ServiceEnv, available_services

log = logging.getLogger("ec_recommend")

DESCRIPTION = """\
ec-recommend: an e-commerce backend as asyncio microservices.

commands:
  up         run the whole system locally with demo data (one process)
  serve      run one or more services and/or event consumers in one process
  provision  create or update the SNS/SQS topology and Cognito pool (idempotent)
  dlq        list, show, redrive or purge dead-letter queues
  events     replay: publish the events sent since a time again (inboxes dedupe)
  certs      development CA and service certificates for mTLS (certs init)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ec-recommend",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run every service locally with demo data",
        description="Start every service in one process on one event loop, load demo "
        "data, write <data-dir>/endpoints.json and run until SIGINT/SIGTERM.",
    )
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--port", type=int, default=8080, help="gateway port (0 = any free port)")
    up.add_argument("--data-dir", type=Path, default=None, help="where the data lives")
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
        help="gateway processes sharing the port (SO_REUSEPORT): this one and N-1 workers",
    )

    serve = commands.add_parser(
        "serve",
        help="run the named services in one process",
        description="Run the named services, each on its own gRPC port, until "
        "SIGINT/SIGTERM, then drain in-flight calls and stop. Ports come from "
        "EC_PORT_<SERVICE> or the config file (default: any free port); one JSON "
        "line on stdout reports where each service listens.",
    )
    serve.add_argument(
        "services",
        nargs="+",
        metavar="SERVICE",
        help=f"one or more of: {', '.join(dict.fromkeys(available_services() + list(CONSUMERS)))}",
    )
    serve.add_argument("--data-dir", type=Path, default=None, help="where SQLite files live")
    serve.add_argument("--config", type=Path, default=None, help="YAML configuration file")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="with gateway: gateway processes sharing its port, this one and N-1 workers",
    )

    certs = commands.add_parser(
        "certs",
        help="development certificates for mTLS",
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

        config = replace(config, tls=dev_tls_config(config.storage.data_dir / "certs"))
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
        known = list(dict.fromkeys([*available_services(), *CONSUMERS, "gateway"]))
        unknown = [name for name in args.services if name not in known]
        if unknown:
            print(
                f"ec-recommend: unknown service(s): {', '.join(unknown)}; "
                f"choose from {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
        consumers = [name for name in args.services if name in CONSUMERS]
        if consumers and not config.events.enabled:
            print(
                "ec-recommend: consumers need SNS/SQS: set EC_AWS_ENDPOINT_URL or "
                "EC_PROFILE=production",
                file=sys.stderr,
            )
            return 2
        services = [name for name in args.services if name in available_services()]
        gateway = "gateway" in args.services
        if args.workers > 1 and not gateway:
            print("ec-recommend: --workers is for the gateway: serve gateway", file=sys.stderr)
            return 2
        return process.run(
            _serve(config, services, consumers, gateway=gateway, workers=args.workers)
        )
    from ec_recommend.runtime.local_identity import listen_refusal

    refusal = listen_refusal(args.host, insecure=args.insecure_auth)
    if refusal is not None:
        print(f"ec-recommend: {refusal}", file=sys.stderr)
        return 2
    return process.run(_up(config, args))


def _certs_init(config: Config, args: argparse.Namespace) -> int:
    from ec_recommend.platform.security.certs import init_certificates
    from ec_recommend.platform.security.tls import certificate_names

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
    from ec_recommend.platform.security.tls import GATEWAY
    from ec_recommend.platform.telemetry.endpoint import serve_metrics
    from ec_recommend.runtime.host import host_services

    async def body(stop: asyncio.Event) -> None:
        telemetry = config.telemetry
        async with (
            host_services(config, names, identity=GATEWAY if gateway else None) as hosted,
            serve_metrics(telemetry.metrics_host, telemetry.metrics_port) as metrics,
        ):
            env = ServiceEnv(config=config, clients=hosted.clients)
            async with (
                hosted_consumers(config, env, consumers),
                _gateway(
                    config, hosted.clients, hosted.endpoints(), gateway, workers
                ) as gateway_url,
            ):
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
) -> AsyncIterator[str | None]:
    """The REST gateway in this process (and its workers) when ``serve gateway`` asked."""
    if not enabled:
        yield None
        return
    from ec_recommend.edge.gateway.app import served_gateway

    async with served_gateway(config, clients, hosted, workers=workers) as url:
        yield url


async def _up(config: Config, args: argparse.Namespace) -> int:
    from ec_recommend.runtime.local_system import DEMO_PASSWORD, local_system

    async def body(stop: asyncio.Event) -> None:
        async with local_system(
            config, host=args.host, port=args.port, demo=not args.no_demo, workers=args.workers
        ) as system:
            process.report_ready(
                **system.endpoints,
                endpoints_file=str(system.endpoints_file),
                demo_password=None if args.no_demo else DEMO_PASSWORD,
            )
            await stop.wait()
            log.info("stopping: gateway, consumers, services, then local AWS")

    with process.traced(config, "ec-recommend"):
        await process.until_stopped(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
