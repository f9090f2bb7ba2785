"""What a gateway worker is given: divided in-memory budgets, endpoints of every service."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ec_recommend.cli import _parser
from ec_recommend.config import Config, GatewayConfig
from ec_recommend.config.storage import Endpoint
from ec_recommend.edge.gateway.workers import per_process_limits, worker_spec


def test_in_memory_budgets_are_divided_among_the_processes() -> None:
    config = Config(gateway=GatewayConfig(rate_limit_anonymous=100, rate_limit_seller=5))
    divided = per_process_limits(config, 3).gateway
    assert (divided.rate_limit_anonymous, divided.rate_limit_authenticated) == (34, 334)
    assert divided.rate_limit_seller == 2
    assert per_process_limits(config, 1) is config


def test_redis_budgets_are_shared_so_stay_whole() -> None:
    gateway = GatewayConfig(rate_limit_backend="redis", redis_url="redis://127.0.0.1:6379")
    config = Config(gateway=gateway)
    assert per_process_limits(config, 4) is config


def test_a_worker_dials_the_parents_services_and_the_configured_ones() -> None:
    config = Config()
    config = replace(
        config,
        rpc=replace(
            config.rpc,
            ports={"user": 0},
            endpoints={"order": (Endpoint.parse("10.0.0.5:7001", key="order"),)},
        ),
    )
    spec = worker_spec(config, port=8123, endpoints={"user": "127.0.0.1:5001"}, services=["user"])
    assert spec.config.gateway.port == 8123
    assert spec.config.rpc.ports == {}  # a worker hosts no service
    assert {name: [str(e) for e in es] for name, es in spec.config.rpc.endpoints.items()} == {
        "order": ["10.0.0.5:7001"],
        "user": ["127.0.0.1:5001"],
    }
    assert spec.services == ("user",)


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_workers_option_takes_a_sane_count(value: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["up", "--workers", value])
    assert _parser().parse_args(["serve", "gateway", "--workers", "2"]).workers == 2
