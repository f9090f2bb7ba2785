"""WebSocket push on the gateway."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import ConfigError, Section


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


def realtime_config(section: Section) -> RealtimeConfig:
    """``realtime:`` file section and ``EC_WS_*`` variables."""
    backend = str(section.pick("backend", "EC_WS_BACKEND", "auto"))
    if backend not in ("auto", "redis", "sqs", "local"):
        raise ConfigError(f"realtime.backend: expected auto, redis, sqs or local, got {backend!r}")
    retention = section.count("queue_retention", "EC_WS_QUEUE_RETENTION", 60)
    if not 60 <= retention <= 1_209_600:
        raise ConfigError(f"realtime.queue_retention: SQS allows 60..1209600, got {retention}")
    count, seconds = section.count, section.seconds
    return RealtimeConfig(
        backend=backend,
        redis_url=section.pick("redis_url", "EC_WS_REDIS_URL", None) or None,
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
