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


def order_config(section: Section) -> OrderConfig:
    """``order:`` file section and ``EC_PAYMENT_TIMEOUT``/... variables."""
    return OrderConfig(
        payment_timeout=section.seconds("payment_timeout", "EC_PAYMENT_TIMEOUT", 1800.0),
        sweep_interval=section.seconds("sweep_interval", "EC_ORDER_SWEEP_INTERVAL", 30.0),
        checkout_concurrency=section.count("checkout_concurrency", "EC_CHECKOUT_CONCURRENCY", 16),
    )
