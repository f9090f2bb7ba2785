"""Process configuration: frozen dataclasses, read once.

This module is the only reader of ``os.environ`` (through ``Config.from_env``);
everything else receives the values it needs. A YAML file given with
``--config`` supplies the same keys; environment variables win over it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

SERVICE_NAMES: tuple[str, ...] = ("user", "product", "order", "cart", "search", "recommendation")


class ConfigError(ValueError):
    """Configuration that cannot work; the message names the key."""


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
    ``data_dir``; with a PostgreSQL URL every service has its own schema,
    named ``schema_prefix + service``.
    """

    data_dir: Path = Path(".ec-data")
    database_url: str | None = None
    schema_prefix: str = ""
    pool_size: int = 5


@dataclass(frozen=True)
class RpcConfig:
    """gRPC listening and dialling.

    ``ports`` gives the listening port of each hosted service (0 = ephemeral);
    ``endpoints`` where to reach services that this process does not host.
    """

    host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=dict)
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    pool_size: int = 2
    drain_timeout: float = 10.0
    default_timeout: float = 10.0


@dataclass(frozen=True)
class OrderConfig:
    """Order rules: how long an order may stay unpaid, how often that is checked."""

    payment_timeout: float = 1800.0
    sweep_interval: float = 30.0
    checkout_concurrency: int = 16  # checkouts reserving stock at once, per process


@dataclass(frozen=True)
class AuthConfig:
    """Cognito: where the pool is and how tokens are checked.

    ``endpoint_url`` is moto's server locally and ``None`` (AWS) in production.
    ``issuer``/``jwks_url`` default to the AWS URLs of the pool; locally the
    JWKS comes from moto, whose tokens still name the AWS issuer.
    ``jwks_refresh_interval`` bounds refetches on an unknown ``kid`` so garbage
    tokens cannot hammer the JWKS endpoint.
    """

    region: str = "ap-northeast-1"
    user_pool_id: str = ""
    client_id: str = ""
    jwks_url: str = ""
    issuer: str = ""
    endpoint_url: str | None = None
    allow_seller_signup: bool = False
    auto_confirm: bool = False
    pool_name: str = "ec-recommend"
    jwks_refresh_interval: float = 30.0
    jwks_max_age: float = 3600.0

    @property
    def configured(self) -> bool:
        return bool(self.user_pool_id and self.client_id)

    @property
    def resolved_issuer(self) -> str:
        return self.issuer or (
            f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"
        )

    @property
    def resolved_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        if self.endpoint_url:
            # moto serves every pool's JWKS under its own root.
            return f"{self.endpoint_url.rstrip('/')}/{self.user_pool_id}/.well-known/jwks.json"
        return f"{self.resolved_issuer}/.well-known/jwks.json"


@dataclass(frozen=True)
class TelemetryConfig:
    """Traces, metrics and logs of one process.

    Spans go out over OTLP/HTTP only when ``otlp_endpoint`` is set (e.g.
    ``http://collector:4318``); without it spans only carry ids (so log
    lines carry trace ids) and record nothing. A service or worker
    process serves ``/metrics`` on ``metrics_port`` (0 = any free port).
    ``log_format`` is ``json``, ``text`` or ``auto`` (text on a terminal).
    With ``consumer_links`` a consumer span starts a new trace linked to the
    producer's instead of continuing it as a child.
    """

    otlp_endpoint: str | None = None
    service_name: str = ""  # empty: named after what the process hosts
    sample_ratio: float = 1.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    log_format: str = "auto"
    consumer_links: bool = False


@dataclass(frozen=True)
class EventsConfig:
    """SNS/SQS: where AWS is, how names are prefixed, relay and consumer pacing.

    ``endpoint_url`` is moto's server locally and ``None`` (AWS) in production.
    ``name_prefix`` is put before every topic and queue name, so tests and
    several local systems can share one endpoint. Relays and consumers run
    only when ``enabled`` (default: an endpoint is set, or production).
    """

    enabled: bool = False
    endpoint_url: str | None = None
    region: str = "ap-northeast-1"
    name_prefix: str = ""
    topology_path: Path | None = None  # None = the packaged settings/topology.yaml
    relay_batch_size: int = 10
    relay_interval: float = 0.2
    relay_max_backoff: float = 30.0
    consumer_concurrency: int = 10  # one full receive batch
    consumer_wait_seconds: int = 10  # long poll; shutdown waits one out
    shutdown_grace: float = 10.0


@dataclass(frozen=True)
class NotificationConfig:
    """Outgoing email (SES, at ``events.endpoint_url``/``events.region``).

    SES refuses mail from an unverified sender; with ``verify_sender`` (the
    local profile's default) the consumer verifies it at start.
    """

    sender: str = "no-reply@ec-recommend.local"
    verify_sender: bool = False


@dataclass(frozen=True)
class CacheConfig:
    """Product read cache: in-process (TTL + LRU) unless ``redis_url`` is set."""

    redis_url: str | None = None
    ttl: float = 5.0
    max_entries: int = 10_000


@dataclass(frozen=True)
class TlsConfig:
    """mTLS between services (seed 7.1).

    ``mode``: STRICT (TLS, client certificate from ``ca`` required), PERMISSIVE
    (TLS, client certificate optional: callers without one have no service
    identity), DISABLE (plaintext). A process presents ``cert``/``key``; or,
    when it hosts several services, ``cert_dir/<service>.crt`` and ``.key`` of
    the service it acts for (what ``ec-recommend certs init`` writes).
    """

    mode: str = "DISABLE"
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    cert_dir: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "DISABLE"


@dataclass(frozen=True)
class GatewayConfig:
    """The REST gateway: where it listens, body limit, rate limits, proxies.

    ``rate_limit_backend`` is ``memory`` (one process) or ``redis`` (shared by
    every gateway using ``redis_url``). ``trusted_proxies`` are addresses or
    CIDRs whose ``X-Forwarded-For`` is believed.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 256 * 1024
    rate_limit_backend: str = "memory"
    redis_url: str | None = None
    rate_limit_anonymous: int = 100
    rate_limit_authenticated: int = 1000
    rate_limit_seller: int = 5000
    rate_limit_window: float = 60.0
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class RealtimeConfig:
    """WebSocket push (``/api/v1/ws``) on the gateway.

    ``backend``: ``auto`` (Redis pub/sub when ``redis_url`` or
    ``gateway.redis_url`` is set, else an SQS queue per gateway when events are
    enabled, else in-process only), ``redis``, ``sqs`` or ``local``.
    ``queue_retention`` is the per-gateway SQS queue's MessageRetentionPeriod;
    a queue whose heartbeat is older than ``instance_ttl`` is swept.
    """

    backend: str = "auto"
    redis_url: str | None = None
    heartbeat: float = 20.0
    idle_timeout: float = 60.0
    max_message_bytes: int = 4096
    connections: int = 10_000
    connections_per_user: int = 5
    subscriptions_per_connection: int = 50
    send_queue: int = 256
    replay_window: float = 60.0
    replay_per_topic: int = 100
    queue_retention: int = 60
    instance_ttl: float = 120.0


@dataclass(frozen=True)
class Config:
    profile: str = "local"  # local | production
    storage: StorageConfig = field(default_factory=StorageConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    log_level: str = "INFO"
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    order: OrderConfig = field(default_factory=OrderConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    notification: NotificationConfig = field(default_factory=NotificationConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    # Seconds between backfill passes of the search/recommendation projections
    # from ProductService/OrderService; 0 = one pass at start.
    projection_sync_interval: float = 5.0
    tls: TlsConfig = field(default_factory=TlsConfig)
    mesh_file: Path | None = None  # None: the packaged settings/mesh.yaml
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, file: Path | None = None
    ) -> Config:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        if file is not None:
            values = _load_yaml(file)
        return _build(values, env)

    def with_data_dir(self, data_dir: Path) -> Config:
        return replace(self, storage=replace(self.storage, data_dir=data_dir))


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return loaded


def _positive_int(value: object, key: str, *, allow_zero: bool = False) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {number}")
    return number


def _positive_float(value: object, key: str) -> float:
    try:
        number = float(str(value))
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be > 0, got {number}")
    return number


def _build(values: Mapping[str, Any], env: Mapping[str, str]) -> Config:
    """Merge file values and ``EC_*`` variables (which win) into a Config."""
    storage_in = dict(values.get("storage") or {})
    rpc_in = dict(values.get("rpc") or {})

    def pick(section: Mapping[str, Any], key: str, env_key: str, default: Any) -> Any:
        return env.get(env_key, section.get(key, default))

    profile = str(env.get("EC_PROFILE", values.get("profile", "local")))
    if profile not in ("local", "production"):
        raise ConfigError(f"profile: expected local or production, got {profile!r}")

    database_url = pick(storage_in, "database_url", "EC_DATABASE_URL", None) or None
    storage = StorageConfig(
        data_dir=Path(pick(storage_in, "data_dir", "EC_DATA_DIR", ".ec-data")),
        database_url=database_url,
        schema_prefix=str(pick(storage_in, "schema_prefix", "EC_SCHEMA_PREFIX", "")),
        pool_size=_positive_int(
            pick(storage_in, "pool_size", "EC_DB_POOL_SIZE", 5), "storage.pool_size"
        ),
    )

    ports: dict[str, int] = {}
    for name, port in dict(rpc_in.get("ports") or {}).items():
        ports[str(name)] = _positive_int(port, f"rpc.ports.{name}", allow_zero=True)
    endpoints: dict[str, tuple[Endpoint, ...]] = {}
    for name, spec in dict(rpc_in.get("endpoints") or {}).items():
        items = spec if isinstance(spec, list) else str(spec).split(",")
        key = f"rpc.endpoints.{name}"
        endpoints[str(name)] = tuple(Endpoint.parse(str(item), key=key) for item in items)
    for service in SERVICE_NAMES:
        upper = service.upper()
        if f"EC_PORT_{upper}" in env:
            ports[service] = _positive_int(
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

    rpc = RpcConfig(
        host=str(pick(rpc_in, "host", "EC_RPC_HOST", "127.0.0.1")),
        ports=ports,
        endpoints=endpoints,
        pool_size=_positive_int(pick(rpc_in, "pool_size", "EC_RPC_POOL_SIZE", 2), "rpc.pool_size"),
        drain_timeout=_positive_float(
            pick(rpc_in, "drain_timeout", "EC_DRAIN_TIMEOUT", 10.0), "rpc.drain_timeout"
        ),
        default_timeout=_positive_float(
            pick(rpc_in, "default_timeout", "EC_RPC_TIMEOUT", 10.0), "rpc.default_timeout"
        ),
    )
    order_in = dict(values.get("order") or {})
    order = OrderConfig(
        payment_timeout=_positive_float(
            pick(order_in, "payment_timeout", "EC_PAYMENT_TIMEOUT", 1800.0),
            "order.payment_timeout",
        ),
        sweep_interval=_positive_float(
            pick(order_in, "sweep_interval", "EC_ORDER_SWEEP_INTERVAL", 30.0),
            "order.sweep_interval",
        ),
        checkout_concurrency=_positive_int(
            pick(order_in, "checkout_concurrency", "EC_CHECKOUT_CONCURRENCY", 16),
            "order.checkout_concurrency",
        ),
    )
    return Config(
        profile=profile,
        storage=storage,
        rpc=rpc,
        log_level=str(env.get("EC_LOG_LEVEL", values.get("log_level", "INFO"))).upper(),
        telemetry=_telemetry_config(dict(values.get("telemetry") or {}), env),
        auth=_auth_config(dict(values.get("auth") or {}), env, profile),
        order=order,
        events=_events_config(dict(values.get("events") or {}), env, profile),
        notification=_notification_config(dict(values.get("notification") or {}), env, profile),
        cache=_cache_config(dict(values.get("cache") or {}), env),
        gateway=_gateway_config(dict(values.get("gateway") or {}), env),
        realtime=_realtime_config(dict(values.get("realtime") or {}), env),
        projection_sync_interval=float(
            _positive_int(
                pick(values, "projection_sync_interval", "EC_PROJECTION_SYNC_INTERVAL", 5),
                "projection_sync_interval",
                allow_zero=True,
            )
        ),
        tls=_tls_config(dict(values.get("tls") or {}), env, profile),
        mesh_file=_optional_path(pick(values, "mesh_file", "EC_MESH_FILE", None)),
    )


def _parse_flag(value: object, key: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def auth_config_from_env(environ: Mapping[str, str] | None = None) -> AuthConfig:
    """Only the ``auth`` settings, for processes that need nothing else.

    The Lambda authorizer uses this: it has no services, storage or TLS to
    configure, and must not fail on their production requirements.
    """
    env = dict(os.environ if environ is None else environ)
    profile = str(env.get("EC_PROFILE", "local"))
    if profile not in ("local", "production"):
        raise ConfigError(f"profile: expected local or production, got {profile!r}")
    return _auth_config({}, env, profile)


def _auth_config(section: Mapping[str, Any], env: Mapping[str, str], profile: str) -> AuthConfig:
    """``auth:`` file section and ``EC_COGNITO_*`` variables; local defaults suit moto."""

    def pick(key: str, env_key: str, default: Any) -> Any:
        return env.get(env_key, section.get(key, default))

    local = profile == "local"
    region_default = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1"
    return AuthConfig(
        region=str(pick("region", "EC_COGNITO_REGION", region_default)),
        user_pool_id=str(pick("user_pool_id", "EC_COGNITO_USER_POOL_ID", "")),
        client_id=str(pick("client_id", "EC_COGNITO_CLIENT_ID", "")),
        jwks_url=str(pick("jwks_url", "EC_COGNITO_JWKS_URL", "")),
        issuer=str(pick("issuer", "EC_COGNITO_ISSUER", "")),
        endpoint_url=pick("endpoint_url", "EC_COGNITO_ENDPOINT_URL", None) or None,
        allow_seller_signup=_parse_flag(
            pick("allow_seller_signup", "EC_ALLOW_SELLER_SIGNUP", local),
            "auth.allow_seller_signup",
        ),
        auto_confirm=_parse_flag(
            pick("auto_confirm", "EC_COGNITO_AUTO_CONFIRM", local), "auth.auto_confirm"
        ),
        pool_name=str(pick("pool_name", "EC_COGNITO_POOL_NAME", "ec-recommend")),
        jwks_refresh_interval=_positive_float(
            pick("jwks_refresh_interval", "EC_JWKS_REFRESH_INTERVAL", 30.0),
            "auth.jwks_refresh_interval",
        ),
        jwks_max_age=_positive_float(
            pick("jwks_max_age", "EC_JWKS_MAX_AGE", 3600.0), "auth.jwks_max_age"
        ),
    )


def _telemetry_config(section: Mapping[str, Any], env: Mapping[str, str]) -> TelemetryConfig:
    """``telemetry:`` file section and ``EC_*`` variables."""

    def pick(key: str, env_key: str, default: Any) -> Any:
        return env.get(env_key, section.get(key, default))

    log_format = str(pick("log_format", "EC_LOG_FORMAT", "auto")).lower()
    if log_format not in ("auto", "json", "text"):
        raise ConfigError(f"telemetry.log_format: expected auto, json or text, got {log_format!r}")
    ratio_text = pick("sample_ratio", "EC_TRACE_SAMPLE_RATIO", 1.0)
    try:
        ratio = float(str(ratio_text))
    except ValueError:
        message = f"telemetry.sample_ratio: expected a number, got {ratio_text!r}"
        raise ConfigError(message) from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"telemetry.sample_ratio: must be within 0..1, got {ratio}")
    links = str(pick("consumer_links", "EC_TRACE_CONSUMER_LINKS", "false")).strip().lower()
    if links not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"telemetry.consumer_links: expected true or false, got {links!r}")
    return TelemetryConfig(
        otlp_endpoint=pick("otlp_endpoint", "EC_OTLP_ENDPOINT", None) or None,
        service_name=str(pick("service_name", "EC_SERVICE_NAME", "")),
        sample_ratio=ratio,
        metrics_host=str(pick("metrics_host", "EC_METRICS_HOST", "127.0.0.1")),
        metrics_port=_positive_int(
            pick("metrics_port", "EC_METRICS_PORT", 0), "telemetry.metrics_port", allow_zero=True
        ),
        log_format=log_format,
        consumer_links=links in ("1", "true", "yes", "on"),
    )


def _events_config(
    section: Mapping[str, Any], env: Mapping[str, str], profile: str
) -> EventsConfig:
    """``events:`` file section and ``EC_EVENTS_*``/``EC_AWS_*`` variables."""

    def pick(key: str, env_key: str, default: Any) -> Any:
        return env.get(env_key, section.get(key, default))

    endpoint_url = pick("endpoint_url", "EC_AWS_ENDPOINT_URL", None) or None
    region_default = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1"
    topology = pick("topology_path", "EC_TOPOLOGY", None)
    wait = _positive_int(
        pick("consumer_wait_seconds", "EC_CONSUMER_WAIT_SECONDS", 10),
        "events.consumer_wait_seconds",
        allow_zero=True,
    )
    if wait > 20:
        raise ConfigError(f"events.consumer_wait_seconds: at most 20, got {wait}")
    batch = _positive_int(pick("relay_batch_size", "EC_RELAY_BATCH", 10), "events.relay_batch_size")
    if batch > 10:
        raise ConfigError(f"events.relay_batch_size: at most 10 (PublishBatch), got {batch}")
    return EventsConfig(
        enabled=str(
            pick("enabled", "EC_EVENTS_ENABLED", bool(endpoint_url) or profile == "production")
        ).lower()
        in ("1", "true", "yes", "on"),
        endpoint_url=endpoint_url,
        region=str(pick("region", "EC_AWS_REGION", region_default)),
        name_prefix=str(pick("name_prefix", "EC_EVENTS_PREFIX", "")),
        topology_path=Path(topology) if topology else None,
        relay_batch_size=batch,
        relay_interval=_positive_float(
            pick("relay_interval", "EC_RELAY_INTERVAL", 0.2), "events.relay_interval"
        ),
        relay_max_backoff=_positive_float(
            pick("relay_max_backoff", "EC_RELAY_MAX_BACKOFF", 30.0), "events.relay_max_backoff"
        ),
        consumer_concurrency=_positive_int(
            pick("consumer_concurrency", "EC_CONSUMER_CONCURRENCY", 10),
            "events.consumer_concurrency",
        ),
        consumer_wait_seconds=wait,
        shutdown_grace=_positive_float(
            pick("shutdown_grace", "EC_EVENTS_SHUTDOWN_GRACE", 10.0), "events.shutdown_grace"
        ),
    )


def _notification_config(
    section: Mapping[str, Any], env: Mapping[str, str], profile: str
) -> NotificationConfig:
    """``notification:`` file section and ``EC_EMAIL_*`` variables."""
    sender = str(env.get("EC_EMAIL_SENDER", section.get("sender", NotificationConfig.sender)))
    if "@" not in sender:
        raise ConfigError(f"notification.sender: expected an email address, got {sender!r}")
    verify = env.get("EC_EMAIL_VERIFY_SENDER", section.get("verify_sender", profile == "local"))
    return NotificationConfig(
        sender=sender, verify_sender=str(verify).lower() in ("1", "true", "yes", "on")
    )


def _cache_config(section: Mapping[str, Any], env: Mapping[str, str]) -> CacheConfig:
    """``cache:`` file section and ``EC_CACHE_*`` variables."""
    return CacheConfig(
        redis_url=env.get("EC_CACHE_REDIS_URL", section.get("redis_url")) or None,
        ttl=_positive_float(env.get("EC_CACHE_TTL", section.get("ttl", 5.0)), "cache.ttl"),
        max_entries=_positive_int(
            env.get("EC_CACHE_MAX_ENTRIES", section.get("max_entries", 10_000)),
            "cache.max_entries",
        ),
    )


def _optional_path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _tls_config(section: Mapping[str, Any], env: Mapping[str, str], profile: str) -> TlsConfig:
    """``tls:`` file section (the seed's shape) and ``EC_TLS_*`` variables.

    STRICT is the default in production; the local profile defaults to DISABLE.
    """
    certs = dict(section.get("certificates") or {})

    def path(key: str, env_key: str) -> Path | None:
        return _optional_path(env.get(env_key, certs.get(key)))

    default_mode = "STRICT" if profile == "production" else "DISABLE"
    mode = str(env.get("EC_TLS_MODE", section.get("mode", default_mode))).upper()
    if mode not in ("STRICT", "PERMISSIVE", "DISABLE"):
        raise ConfigError(f"tls.mode: expected STRICT, PERMISSIVE or DISABLE, got {mode!r}")
    tls = TlsConfig(
        mode=mode,
        ca=path("ca", "EC_TLS_CA"),
        cert=path("cert", "EC_TLS_CERT"),
        key=path("key", "EC_TLS_KEY"),
        cert_dir=path("dir", "EC_TLS_CERT_DIR"),
    )
    if tls.enabled:
        if tls.ca is None:
            raise ConfigError(f"tls.certificates.ca: required when tls.mode is {mode}")
        if tls.cert_dir is None and (tls.cert is None or tls.key is None):
            raise ConfigError(
                f"tls.certificates: cert and key (or dir) are required when tls.mode is {mode}"
            )
    return tls


def _gateway_config(section: Mapping[str, Any], env: Mapping[str, str]) -> GatewayConfig:
    """``gateway:`` file section and ``EC_GATEWAY_*``/``EC_RATE_LIMIT_*`` variables."""

    def pick(key: str, env_key: str, default: Any) -> Any:
        return env.get(env_key, section.get(key, default))

    backend = str(pick("rate_limit_backend", "EC_RATE_LIMIT_BACKEND", "memory"))
    if backend not in ("memory", "redis"):
        raise ConfigError(f"gateway.rate_limit_backend: expected memory or redis, got {backend!r}")
    redis_url = pick("redis_url", "EC_REDIS_URL", None) or None
    if backend == "redis" and not redis_url:
        raise ConfigError("gateway.redis_url: required with the redis rate-limit backend")
    proxies = pick("trusted_proxies", "EC_TRUSTED_PROXIES", ())
    if isinstance(proxies, str):
        proxies = [p for p in proxies.split(",") if p.strip()]
    import ipaddress

    for proxy in proxies:
        try:
            ipaddress.ip_network(str(proxy).strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"gateway.trusted_proxies: not an address or CIDR: {proxy!r}"
            ) from None
    return GatewayConfig(
        host=str(pick("host", "EC_GATEWAY_HOST", "127.0.0.1")),
        port=_positive_int(pick("port", "EC_GATEWAY_PORT", 8080), "gateway.port", allow_zero=True),
        max_body_bytes=_positive_int(
            pick("max_body_bytes", "EC_GATEWAY_MAX_BODY_BYTES", 256 * 1024),
            "gateway.max_body_bytes",
        ),
        rate_limit_backend=backend,
        redis_url=redis_url,
        rate_limit_anonymous=_positive_int(
            pick("rate_limit_anonymous", "EC_RATE_LIMIT_ANONYMOUS", 100),
            "gateway.rate_limit_anonymous",
        ),
        rate_limit_authenticated=_positive_int(
            pick("rate_limit_authenticated", "EC_RATE_LIMIT_AUTHENTICATED", 1000),
            "gateway.rate_limit_authenticated",
        ),
        rate_limit_seller=_positive_int(
            pick("rate_limit_seller", "EC_RATE_LIMIT_SELLER", 5000), "gateway.rate_limit_seller"
        ),
        rate_limit_window=_positive_float(
            pick("rate_limit_window", "EC_RATE_LIMIT_WINDOW", 60.0), "gateway.rate_limit_window"
        ),
        trusted_proxies=tuple(str(p).strip() for p in proxies),
    )


def _realtime_config(section: Mapping[str, Any], env: Mapping[str, str]) -> RealtimeConfig:
    """``realtime:`` file section and ``EC_WS_*`` variables."""

    def pick(key: str, env_key: str, default: Any) -> Any:
        return env.get(env_key, section.get(key, default))

    backend = str(pick("backend", "EC_WS_BACKEND", "auto"))
    if backend not in ("auto", "redis", "sqs", "local"):
        raise ConfigError(f"realtime.backend: expected auto, redis, sqs or local, got {backend!r}")
    redis_url = pick("redis_url", "EC_WS_REDIS_URL", None) or None
    retention = _positive_int(
        pick("queue_retention", "EC_WS_QUEUE_RETENTION", 60), "realtime.queue_retention"
    )
    if not 60 <= retention <= 1_209_600:
        raise ConfigError(f"realtime.queue_retention: SQS allows 60..1209600, got {retention}")

    def count(key: str, env_key: str, default: int) -> int:
        return _positive_int(pick(key, env_key, default), f"realtime.{key}")

    def seconds(key: str, env_key: str, default: float) -> float:
        return _positive_float(pick(key, env_key, default), f"realtime.{key}")

    return RealtimeConfig(
        backend=backend,
        redis_url=redis_url,
        heartbeat=seconds("heartbeat", "EC_WS_HEARTBEAT", 20.0),
        idle_timeout=seconds("idle_timeout", "EC_WS_IDLE_TIMEOUT", 60.0),
        max_message_bytes=count("max_message_bytes", "EC_WS_MAX_MESSAGE_BYTES", 4096),
        connections=count("connections", "EC_WS_CONNECTIONS", 10_000),
        connections_per_user=count("connections_per_user", "EC_WS_CONNECTIONS_PER_USER", 5),
        subscriptions_per_connection=count(
            "subscriptions_per_connection", "EC_WS_SUBSCRIPTIONS", 50
        ),
        send_queue=count("send_queue", "EC_WS_SEND_QUEUE", 256),
        replay_window=seconds("replay_window", "EC_WS_REPLAY_WINDOW", 60.0),
        replay_per_topic=count("replay_per_topic", "EC_WS_REPLAY_PER_TOPIC", 100),
        queue_retention=retention,
        instance_ttl=seconds("instance_ttl", "EC_WS_INSTANCE_TTL", 120.0),
    )
