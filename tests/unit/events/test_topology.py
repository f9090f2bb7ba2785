"""Topology loading: the shipped file is valid; mistakes are named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from ec_recommend.platform.events.topology import TopologyError, load_topology, parse_topology

SEED_QUEUES = {
    "email-notification-queue": ("email-notification-dlq", 300),
    "order-processing-queue": ("order-processing-dlq", 600),
    "analytics-event-queue": ("analytics-event-dlq", 60),
}


def test_shipped_topology_keeps_the_seed_and_adds_a_queue_per_subscriber() -> None:
    topology = load_topology()
    assert {t.name for t in topology.topics} == {"user-events", "order-events", "product-events"}
    for name, (dlq, timeout) in SEED_QUEUES.items():
        queue = topology.queue(name)
        assert (queue.dlq, queue.visibility_timeout) == (dlq, timeout)
    subscribers = {q.subscriber for q in topology.queues}
    assert {"seller-service", "search-service", "recommendation-service"} <= subscribers
    assert "cache-invalidation-service" in subscribers
    assert all(q.max_receive_count >= 1 for q in topology.queues)


def test_routes_filter_each_queue_to_its_events() -> None:
    routes = {(r.topic, r.queue): r for r in load_topology().routes()}
    inventory = routes[("order-events", "order-processing-queue")]
    assert inventory.filter_policy == {"type": ["order.cancelled"]}
    assert ("product-events", "order-processing-queue") not in routes


def test_a_dlq_name_finds_its_queue() -> None:
    assert load_topology().queue("search-index-dlq").name == "search-index-queue"
    with pytest.raises(TopologyError):
        load_topology().queue("nope")


def raw() -> dict[str, Any]:
    from importlib import resources

    text = resources.files("ec_recommend").joinpath("settings/topology.yaml").read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return copy.deepcopy(loaded)


def broken(change: str) -> dict[str, Any]:
    data = raw()
    if change == "unknown event":
        data["topics"][0]["events"].append("user.teleported")
    elif change == "event on two topics":
        data["topics"][1]["events"].append("user.created")
    elif change == "subscriber without queue":
        data["topics"][0]["subscribers"].append("ghost-service")
    elif change == "queue event not on its topics":
        data["queues"][1]["events"].append("product.created")
    elif change == "duplicate name":
        data["queues"][1]["dlq"] = data["queues"][0]["dlq"]
    elif change == "bad timeout":
        data["queues"][0]["visibility_timeout"] = 50000
    elif change == "bad name":
        data["queues"][0]["name"] = "has space"
    elif change == "no topics":
        data["topics"] = []
    return data


@pytest.mark.parametrize(
    "change",
    [
        "unknown event",
        "event on two topics",
        "subscriber without queue",
        "queue event not on its topics",
        "duplicate name",
        "bad timeout",
        "bad name",
        "no topics",
    ],
)
def test_mistakes_are_rejected(change: str) -> None:
    with pytest.raises(TopologyError):
        parse_topology(broken(change))
