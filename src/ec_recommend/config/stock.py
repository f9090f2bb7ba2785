"""Stock reservations: how long a lease lasts, how often expired ones are swept."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import Section


@dataclass(frozen=True)
class StockConfig:
    """Reservation leases (a reservation nobody confirms returns its units)."""

    # Seconds an unconfirmed reservation holds its units: well beyond the
    # longest request budget (15 s), so a slow checkout is never robbed.
    # CreateOrder's confirmation holds them to the payment timeout plus this.
    reservation_lease: float = 300.0
    lease_sweep_interval: float = 10.0  # how often the product service returns expired units


def stock_config(section: Section) -> StockConfig:
    """``stock:`` file section and ``EC_RESERVATION_LEASE``/... variables."""
    return StockConfig(
        reservation_lease=section.seconds("reservation_lease", "EC_RESERVATION_LEASE", 300.0),
        lease_sweep_interval=section.seconds(
            "lease_sweep_interval", "EC_RESERVATION_SWEEP_INTERVAL", 10.0
        ),
    )
