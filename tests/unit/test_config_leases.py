"""Settings of reservation leases and checkout admission."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec_recommend.config import Config, ConfigError


def test_defaults_hold_a_reservation_minutes_beyond_any_request() -> None:
    config = Config.from_env({})
    assert config.stock.reservation_lease == 300.0
    assert config.stock.lease_sweep_interval == 10.0
    assert (config.order.checkout_queue, config.order.checkout_queue_wait) == (64, 1.0)


def test_from_the_environment_and_the_file(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("stock:\n  reservation_lease: 60\norder:\n  checkout_queue: 8\n")
    config = Config.from_env(
        {"EC_RESERVATION_SWEEP_INTERVAL": "0.5", "EC_CHECKOUT_QUEUE_WAIT": "0.25"}, file=file
    )
    assert (config.stock.reservation_lease, config.stock.lease_sweep_interval) == (60.0, 0.5)
    assert (config.order.checkout_queue, config.order.checkout_queue_wait) == (8, 0.25)
    assert Config.from_env({"EC_CHECKOUT_QUEUE": "0"}).order.checkout_queue == 0


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"EC_RESERVATION_LEASE": "0"}, "stock.reservation_lease"),
        ({"EC_RESERVATION_SWEEP_INTERVAL": "soon"}, "stock.lease_sweep_interval"),
        ({"EC_CHECKOUT_QUEUE": "-1"}, "order.checkout_queue"),
    ],
)
def test_bad_values_name_their_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Config.from_env(env)
