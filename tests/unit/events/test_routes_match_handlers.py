"""Each queue receives exactly the event types its consumer handles.

An event routed to a queue whose consumer ignores it costs a delivery, a
receive and a delete for nothing; one a consumer handles but no route
brings is silently never handled. Both are derived here from the
consumers' own handler tables, so neither can drift from the topology.
"""

from __future__ import annotations

from typing import Any

import pytest

from ec_recommend.consumers import (
    cache_invalidation,
    inventory,
    notification,
    recommendation,
    search,
)
from ec_recommend.consumers.analytics import consumer as analytics
from ec_recommend.consumers.seller import consumer as seller
from ec_recommend.platform.events.topology import load_topology

NOTHING: Any = None  # handler tables are built from bound methods: no dependency is called

HANDLED: dict[str, set[str]] = {
    analytics.QUEUE: set(analytics.handlers()),
    cache_invalidation.QUEUE: set(cache_invalidation.CacheInvalidator(NOTHING).handlers()),
    inventory.QUEUE: set(inventory.Inventory(NOTHING).handlers()),
    notification.QUEUE: set(notification.Notifier(NOTHING, NOTHING).handlers()),
    recommendation.QUEUE: set(recommendation.RecommendationUpdater(NOTHING, NOTHING).handlers()),
    search.QUEUE: set(search.SearchIndexer(NOTHING, NOTHING).handlers()),
    seller.QUEUE: set(seller.SellerLedger(NOTHING, NOTHING).handlers()),
}


def test_every_consumer_queue_is_in_the_topology() -> None:
    topology = load_topology()
    assert set(HANDLED) <= {queue.name for queue in topology.queues}


@pytest.mark.parametrize("queue_name", sorted(HANDLED))
def test_a_queue_receives_what_its_consumer_handles_and_nothing_else(queue_name: str) -> None:
    topology = load_topology()
    queue = topology.queue(queue_name)
    routed = set(queue.events) | set(queue.direct)
    assert routed == HANDLED[queue_name]
    for event_type in queue.events:  # and a topic carries each of them
        topic = topology.topic_for(event_type)
        assert topic is not None and queue.subscriber in topic.subscribers
