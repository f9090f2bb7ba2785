"""Realtime settings: read from the environment, bad values named."""

from __future__ import annotations

import pytest

from ec_recommend.config import Config, ConfigError
from ec_recommend.edge.realtime.feed import filter_policy
from ec_recommend.edge.realtime.setup import backend_of
from ec_recommend.platform.events.published_here import ORIGIN, PublishedHere


def test_realtime_settings_are_read_and_checked() -> None:
    config = Config.from_env({"EC_WS_BACKEND": "redis", "EC_WS_SEND_QUEUE": "64"})
    assert (config.realtime.backend, config.realtime.send_queue) == ("redis", 64)
    for bad in (
        {"EC_WS_BACKEND": "kafka"},
        {"EC_WS_QUEUE_RETENTION": "10"},  # SQS keeps messages at least 60 s
        {"EC_WS_HEARTBEAT": "0"},
    ):
        with pytest.raises(ConfigError):
            Config.from_env(bad)


def test_auto_backend_prefers_redis_then_sqs() -> None:
    assert backend_of(Config.from_env({})) == "local"
    assert backend_of(Config.from_env({"EC_AWS_ENDPOINT_URL": "http://127.0.0.1:1"})) == "sqs"
    redis = {"EC_AWS_ENDPOINT_URL": "http://127.0.0.1:1", "EC_WS_REDIS_URL": "redis://x"}
    assert backend_of(Config.from_env(redis)) == "redis"


def test_auto_backend_hears_this_process_relays_when_they_publish_everything_pushed() -> None:
    here = PublishedHere()
    events = {"EC_AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    assert backend_of(Config.from_env(events), here) == "process"
    # Redis reaches every gateway process; a chosen backend stays chosen
    assert backend_of(Config.from_env({**events, "EC_WS_REDIS_URL": "redis://x"}), here) == "redis"
    assert backend_of(Config.from_env({**events, "EC_WS_BACKEND": "sqs"}), here) == "sqs"
    assert backend_of(Config.from_env({}), here) == "local"  # no events at all


def test_auto_backend_keeps_a_queue_when_this_process_publishes_only_some_events() -> None:
    # serve gateway order ...: other processes publish too; what is heard here
    # is left out of the queue by its origin
    some = PublishedHere(complete=False)
    assert some.origin is not None and some.origin != PublishedHere(complete=False).origin
    assert PublishedHere().origin is None  # up: nothing to leave out
    assert backend_of(Config.from_env({"EC_AWS_ENDPOINT_URL": "http://127.0.0.1:1"}), some) == "sqs"


def test_a_gateway_queue_leaves_out_only_its_own_origin() -> None:
    assert filter_policy(["order.paid"]) == {"type": ["order.paid"]}
    # unmarked messages pass (exists: false first: moto stops at the first
    # rule needing the attribute); any other origin passes
    assert filter_policy(["order.paid"], "me")[ORIGIN] == [
        {"exists": False},
        {"anything-but": ["me"]},
    ]
