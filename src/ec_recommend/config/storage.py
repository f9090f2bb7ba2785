"""Where services keep their data and how they reach each other over gRPC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ec_recommend.config.values import ConfigError, Section, positive_int

SERVICE_NAMES: tuple[str, ...] = ("user", "product", "order", "cart", "search", "recommendation")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, key: str) -> Endpoint:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{key}: expected host:port, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StorageConfig:
    """Where services keep their data.

    Without ``database_url`` every service has its own SQLite file under
    ``data_dir`` (``pool_size`` connections each); with a PostgreSQL URL every
    service has its own schema, named ``schema_prefix + service``, and all
    that one process hosts share one pool: at most ``pool_size +
    max_overflow`` connections per process. A connection not free within
    ``pool_timeout`` seconds is answered UNAVAILABLE with a retry hint.
    """

    data_dir: Path = Path(".ec-data")
    database_url: str | None = None
    schema_prefix: str = ""
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout: float = 5.0


@dataclass(frozen=True)
class RpcConfig:
    """gRPC listening and dialling.

    ``ports`` gives the listening port of each hosted service (0 = ephemeral);
    ``endpoints`` where to reach services that this process does not host.
    ``in_process``: services hosted together call each other directly
    (platform/rpc/local.py); False sends those calls over sockets too.
    ``transport``: what carries calls between processes, ``grpcio`` (gRPC's
    C core, ``grpc.aio``) or ``grpclib`` (pure Python HTTP/2); None is the
    platform's default (``platform/rpc/transport.py``).
    """

    host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=dict)
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    pool_size: int = 2
    drain_timeout: float = 10.0
    default_timeout: float = 10.0
    in_process: bool = True
    transport: str | None = None


RPC_TRANSPORTS = ("grpcio", "grpclib")


def storage_config(section: Section) -> StorageConfig:
    """``storage:`` file section and ``EC_DATABASE_URL``/``EC_DATA_DIR``/... variables."""
    return StorageConfig(
        data_dir=Path(section.pick("data_dir", "EC_DATA_DIR", ".ec-data")),
        database_url=section.pick("database_url", "EC_DATABASE_URL", None) or None,
        schema_prefix=str(section.pick("schema_prefix", "EC_SCHEMA_PREFIX", "")),
        pool_size=section.count("pool_size", "EC_DB_POOL_SIZE", 10),
        max_overflow=section.count("max_overflow", "EC_DB_MAX_OVERFLOW", 10, allow_zero=True),
        pool_timeout=section.seconds("pool_timeout", "EC_DB_POOL_TIMEOUT", 5.0),
    )


def rpc_config(section: Section) -> RpcConfig:
    """``rpc:`` file section and ``EC_PORT_<SERVICE>``/``EC_ENDPOINTS_<SERVICE>``/... variables."""
    env = section.env
    ports: dict[str, int] = {}
    for name, port in dict(section.values.get("ports") or {}).items():
        ports[str(name)] = positive_int(port, f"rpc.ports.{name}", allow_zero=True)
    endpoints: dict[str, tuple[Endpoint, ...]] = {}
    for name, spec in dict(section.values.get("endpoints") or {}).items():
        items = spec if isinstance(spec, list) else str(spec).split(",")
        key = f"rpc.endpoints.{name}"
        endpoints[str(name)] = tuple(Endpoint.parse(str(item), key=key) for item in items)
    for service in SERVICE_NAMES:
        upper = service.upper()
        if f"EC_PORT_{upper}" in env:
            ports[service] = positive_int(
                env[f"EC_PORT_{upper}"], f"EC_PORT_{upper}", allow_zero=True
            )
        if f"EC_ENDPOINTS_{upper}" in env:
            key = f"EC_ENDPOINTS_{upper}"
            endpoints[service] = tuple(
                Endpoint.parse(item, key=key) for item in env[key].split(",") if item.strip()
            )
    unknown = (set(ports) | set(endpoints)) - set(SERVICE_NAMES)
    if unknown:
        raise ConfigError(f"rpc: unknown service name(s) {sorted(unknown)}")
    return RpcConfig(
        host=str(section.pick("host", "EC_RPC_HOST", "127.0.0.1")),
        ports=ports,
        endpoints=endpoints,
        pool_size=section.count("pool_size", "EC_RPC_POOL_SIZE", 2),
        drain_timeout=section.seconds("drain_timeout", "EC_DRAIN_TIMEOUT", 10.0),
        default_timeout=section.seconds("default_timeout", "EC_RPC_TIMEOUT", 10.0),
        in_process=section.flag("in_process", "EC_RPC_IN_PROCESS", True),
        transport=_transport(section),
    )


def _transport(section: Section) -> str | None:
    value = section.pick("transport", "EC_RPC_TRANSPORT", None)
    if value is None or value == "":
        return None
    if value not in RPC_TRANSPORTS:
        raise ConfigError(
            f"{section.key('transport')}: expected one of {', '.join(RPC_TRANSPORTS)}, "
            f"got {value!r}"
        )
    return str(value)
