"""Order rules: how long an order may stay unpaid, how often that is checked."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import ConfigError, Section


@dataclass(frozen=True)
class OrderConfig:
    """Order rules: how long an order may stay unpaid, how often that is checked."""

    payment_timeout: float = 1800.0  # an unpaid order is cancelled at its deadline
    sweep_interval: float = 30.0  # the full sweep (abandoned attempts, stock, refunds)
    checkout_concurrency: int = 16  # checkouts reserving stock at once, per process
    payment_call_timeout: float = 10.0  # longest one call to the payment provider may take
    # A payment attempt PROCESSING longer than this was abandoned (its caller's
    # process died): a retry or the sweep asks the provider how it ended.
    payment_resolve_after: float = 30.0
    # Beyond those, at most this many wait for a turn, each at most this long;
    # the rest are shed at once (503 + Retry-After) rather than time out late.
    checkout_queue: int = 64
    checkout_queue_wait: float = 1.0
    # How long the sandbox processor takes to answer a charge: 0 answers at
    # once; a real processor's 0.2-2 s rehearses payments in flight.
    sandbox_latency: float = 0.0


def order_config(section: Section) -> OrderConfig:
    """``order:`` file section and ``EC_PAYMENT_TIMEOUT``/... variables."""
    config = OrderConfig(
        payment_timeout=section.seconds("payment_timeout", "EC_PAYMENT_TIMEOUT", 1800.0),
        sweep_interval=section.seconds("sweep_interval", "EC_ORDER_SWEEP_INTERVAL", 30.0),
        checkout_concurrency=section.count("checkout_concurrency", "EC_CHECKOUT_CONCURRENCY", 16),
        payment_call_timeout=section.seconds(
            "payment_call_timeout", "EC_PAYMENT_CALL_TIMEOUT", 10.0
        ),
        payment_resolve_after=section.seconds(
            "payment_resolve_after", "EC_PAYMENT_RESOLVE_AFTER", 30.0
        ),
        checkout_queue=section.count("checkout_queue", "EC_CHECKOUT_QUEUE", 64, allow_zero=True),
        checkout_queue_wait=section.seconds("checkout_queue_wait", "EC_CHECKOUT_QUEUE_WAIT", 1.0),
        sandbox_latency=section.seconds(
            "sandbox_latency", "EC_SANDBOX_PAYMENT_LATENCY", 0.0, allow_zero=True
        ),
    )
    if config.payment_resolve_after <= config.payment_call_timeout:
        # Resolving an attempt whose call may still be running could miss its charge.
        raise ConfigError(
            f"{section.key('payment_resolve_after')}: must exceed payment_call_timeout "
            f"({config.payment_call_timeout}s), got {config.payment_resolve_after}s"
        )
    return config
