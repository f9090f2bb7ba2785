"""Order rules: how long an order may stay unpaid, how often that is checked."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import Section


@dataclass(frozen=True)
class OrderConfig:
    """Order rules: how long an order may stay unpaid, how often that is checked."""

    payment_timeout: float = 1800.0
    sweep_interval: float = 30.0
    checkout_concurrency: int = 16  # checkouts reserving stock at once, per process
    # Beyond those, at most this many wait for a turn, each at most this long;
    # the rest are shed at once (503 + Retry-After) rather than time out late.
    checkout_queue: int = 64
    checkout_queue_wait: float = 1.0


def order_config(section: Section) -> OrderConfig:
    """``order:`` file section and ``EC_PAYMENT_TIMEOUT``/... variables."""
    return OrderConfig(
        payment_timeout=section.seconds("payment_timeout", "EC_PAYMENT_TIMEOUT", 1800.0),
        sweep_interval=section.seconds("sweep_interval", "EC_ORDER_SWEEP_INTERVAL", 30.0),
        checkout_concurrency=section.count("checkout_concurrency", "EC_CHECKOUT_CONCURRENCY", 16),
        checkout_queue=section.count("checkout_queue", "EC_CHECKOUT_QUEUE", 64, allow_zero=True),
        checkout_queue_wait=section.seconds("checkout_queue_wait", "EC_CHECKOUT_QUEUE_WAIT", 1.0),
    )
