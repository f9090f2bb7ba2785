"""SNS/SQS events and the email the notification consumer sends through SES."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ec_recommend.config.values import ConfigError, Section, aws_region_default, truthy


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
    relay_concurrency: int = 1  # PublishBatch calls in flight per pass (production: 8)
    relay_interval: float = 0.2
    relay_max_backoff: float = 30.0
    consumer_concurrency: int = 10  # one full receive batch
    consumer_wait_seconds: int = 10  # long poll; shutdown waits one out (local profile: 2)
    # After a partial batch, wait this long before receiving again so the next
    # batch is fuller (fewer receives and deletes per message); 0 disables.
    consumer_batch_linger: float = 0.1
    shutdown_grace: float = 10.0


@dataclass(frozen=True)
class NotificationConfig:
    """Outgoing email (SES, at ``events.endpoint_url``/``events.region``).

    SES refuses mail from an unverified sender; with ``verify_sender`` (the
    local profile's default) the consumer verifies it at start.
    """

    sender: str = "no-reply@ec-recommend.local"
    verify_sender: bool = False


def events_config(section: Section, profile: str) -> EventsConfig:
    """``events:`` file section and ``EC_EVENTS_*``/``EC_AWS_*`` variables."""
    endpoint_url = section.pick("endpoint_url", "EC_AWS_ENDPOINT_URL", None) or None
    topology = section.pick("topology_path", "EC_TOPOLOGY", None)
    # A stop waits out each long poll in flight (closing the connection would
    # leave what SQS hands it invisible for a visibility timeout): locally,
    # where the broker stops with the process, a short poll keeps Ctrl-C quick.
    wait = section.count(
        "consumer_wait_seconds",
        "EC_CONSUMER_WAIT_SECONDS",
        10 if profile == "production" else 2,
        allow_zero=True,
    )
    if wait > 20:
        raise ConfigError(f"events.consumer_wait_seconds: at most 20, got {wait}")
    batch = section.count("relay_batch_size", "EC_RELAY_BATCH", 10)
    if batch > 10:
        raise ConfigError(f"events.relay_batch_size: at most 10 (PublishBatch), got {batch}")
    enabled_default = bool(endpoint_url) or profile == "production"
    return EventsConfig(
        enabled=truthy(section.pick("enabled", "EC_EVENTS_ENABLED", enabled_default)),
        endpoint_url=endpoint_url,
        region=str(section.pick("region", "EC_AWS_REGION", aws_region_default(section.env))),
        name_prefix=str(section.pick("name_prefix", "EC_EVENTS_PREFIX", "")),
        topology_path=Path(topology) if topology else None,
        relay_batch_size=batch,
        # moto is one Python process whose SendMessage cost grows with the queue:
        # concurrent batches only fill queues faster there. AWS is latency-bound.
        relay_concurrency=section.count(
            "relay_concurrency", "EC_RELAY_CONCURRENCY", 8 if profile == "production" else 1
        ),
        relay_interval=section.seconds("relay_interval", "EC_RELAY_INTERVAL", 0.2),
        relay_max_backoff=section.seconds("relay_max_backoff", "EC_RELAY_MAX_BACKOFF", 30.0),
        consumer_concurrency=section.count("consumer_concurrency", "EC_CONSUMER_CONCURRENCY", 10),
        consumer_wait_seconds=wait,
        consumer_batch_linger=section.seconds(
            "consumer_batch_linger", "EC_CONSUMER_BATCH_LINGER", 0.1, allow_zero=True
        ),
        shutdown_grace=section.seconds("shutdown_grace", "EC_EVENTS_SHUTDOWN_GRACE", 10.0),
    )


def notification_config(section: Section, profile: str) -> NotificationConfig:
    """``notification:`` file section and ``EC_EMAIL_*`` variables."""
    sender = str(section.pick("sender", "EC_EMAIL_SENDER", NotificationConfig.sender))
    if "@" not in sender:
        raise ConfigError(f"notification.sender: expected an email address, got {sender!r}")
    verify = section.pick("verify_sender", "EC_EMAIL_VERIFY_SENDER", profile == "local")
    return NotificationConfig(sender=sender, verify_sender=truthy(verify))
