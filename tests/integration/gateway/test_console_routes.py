"""The seller desk's and the operator console's routes: answers and who may call them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import events_on, wait_for
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway

pytestmark = pytest.mark.asyncio

auth = GatewayUnderTest.auth
SERVICES = ("user", "product", "seller", "analytics")


@pytest_asyncio.fixture
async def desk(tmp_path: Path) -> AsyncIterator[GatewayUnderTest]:
    async with running_gateway(gateway_config(tmp_path), SERVICES) as running:
        yield running


async def _error(response: Any) -> tuple[int, str]:
    return response.status, (await response.json())["code"]


async def test_a_seller_reads_its_own_analytics_and_ledger(desk: GatewayUnderTest) -> None:
    http = desk.http
    created = await http.post(
        "/api/v1/products",
        json={"name": "ケトル", "base_price": {"amount": 4280}, "stock_quantity": 5},
        headers=auth("seller-a"),
    )
    product = await created.json()
    await http.post(
        "/api/v1/products",
        json={"name": "Other", "base_price": {"amount": 100}, "stock_quantity": 1},
        headers=auth("seller-b"),
    )

    analytics = await http.get("/api/v1/sellers/me/analytics", headers=auth("seller-a"))
    assert analytics.status == 200, await analytics.text()
    body = await analytics.json()
    assert [item["product_id"] for item in body["items"]] == [product["id"]]
    assert body["items"][0] | {"conversion": 0} == {
        "product_id": product["id"],
        "name": "ケトル",
        "status": "active",
        "stock_quantity": 5,
        "views": 0,
        "paid_quantity": 0,
        "paid_orders": 0,
        "conversion": 0,
        "revenue": {"amount": 0, "currency": "JPY"},
    }
    assert body["page"]["total_items"] == 1

    ledger = await http.get(
        "/api/v1/sellers/me/ledger", params={"page_size": "5"}, headers=auth("seller-a")
    )
    assert ledger.status == 200, await ledger.text()
    entries = await ledger.json()
    assert entries["entries"] == []
    assert entries["balance"] == {"amount": 0, "currency": "JPY"}

    bad = await http.get(
        "/api/v1/sellers/me/ledger", params={"page_size": "1000"}, headers=auth("seller-a")
    )
    assert await _error(bad) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/sellers/me/ledger", "/api/v1/sellers/me/analytics"],
)
async def test_only_sellers_reach_the_seller_routes(desk: GatewayUnderTest, path: str) -> None:
    assert await _error(await desk.http.get(path)) == (401, "UNAUTHORIZED")
    for caller in ("alice", "admin"):
        answer = await desk.http.get(path, headers=auth(caller))
        assert await _error(answer) == (403, "FORBIDDEN"), caller


async def test_the_overview_reports_health_limits_and_traffic(desk: GatewayUnderTest) -> None:
    answer = await desk.http.get("/api/v1/admin/overview", headers=auth("admin"))
    assert answer.status == 200, await answer.text()
    overview = await answer.json()
    assert overview["services"] == [{"name": name, "serving": True} for name in SERVICES]
    assert [r["tier"] for r in overview["rate_limit_rejections"]] == [
        "anonymous",
        "authenticated",
        "seller",
    ]
    assert isinstance(overview["traffic"], list)
    assert isinstance(overview["circuit_breakers"], list)
    assert isinstance(overview["outboxes"], list)
    # No events in this gateway: no queues, so none to redrive.
    queues = await desk.http.get("/api/v1/admin/queues", headers=auth("admin"))
    assert (queues.status, await queues.json()) == (200, {"items": []})
    redrive = await desk.http.post("/api/v1/admin/queues/x/redrive", headers=auth("admin"))
    assert await _error(redrive) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/admin/overview"),
        ("GET", "/api/v1/admin/queues"),
        ("POST", "/api/v1/admin/queues/order-created-queue/redrive"),
        ("POST", "/api/v1/admin/queues/order-created-queue/purge"),
    ],
)
async def test_only_admins_reach_the_admin_routes(
    desk: GatewayUnderTest, method: str, path: str
) -> None:
    assert await _error(await desk.http.request(method, path)) == (401, "UNAUTHORIZED")
    for caller in ("alice", "seller-a"):
        answer = await desk.http.request(method, path, headers=auth(caller))
        assert await _error(answer) == (403, "FORBIDDEN"), caller


async def test_the_openapi_document_has_the_new_routes(desk: GatewayUnderTest) -> None:
    document = await (await desk.http.get("/api/v1/openapi.json")).json()
    overview = document["paths"]["/api/v1/admin/overview"]["get"]
    assert "`admin` group" in overview["description"]
    assert overview["security"] == [{"bearer": []}]
    assert "/api/v1/sellers/me/analytics" in document["paths"]
    assert "post" in document["paths"]["/api/v1/admin/queues/{queue}/redrive"]


async def test_an_admin_sees_a_dead_letter_and_redrives_then_purges(
    tmp_path: Path, local_aws: LocalAws
) -> None:
    events = events_on(local_aws, consumer_wait_seconds=1)
    topology = load_topology()
    await provision(events, topology)
    config = replace(gateway_config(tmp_path), events=events)
    queue = topology.queues[0]
    async with (
        running_gateway(config, ("user",)) as running,
        aws_client("sqs", events) as sqs,
    ):
        http = running.http
        dlq = await queue_url(sqs, events, queue.dlq)
        await sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"type": "poison"}))

        async def depth() -> dict[str, Any]:
            answer = await http.get("/api/v1/admin/queues", headers=auth("admin"))
            assert answer.status == 200, await answer.text()
            by_name = {q["name"]: q for q in (await answer.json())["items"]}
            assert set(by_name) == {q.name for q in topology.queues}
            return dict(by_name[queue.name])

        await wait_for(lambda: _dlq_holds(depth, 1))
        redriven = await http.post(
            f"/api/v1/admin/queues/{queue.name}/redrive", headers=auth("admin")
        )
        assert redriven.status == 200, await redriven.text()
        assert await redriven.json() == {"moved": 1}
        await wait_for(lambda: _dlq_holds(depth, 0))

        await sqs.send_message(QueueUrl=dlq, MessageBody="again")
        await wait_for(lambda: _dlq_holds(depth, 1))
        purged = await http.post(f"/api/v1/admin/queues/{queue.dlq}/purge", headers=auth("admin"))
        assert purged.status == 204
        await wait_for(lambda: _dlq_holds(depth, 0))

        unknown = await http.post("/api/v1/admin/queues/nope/redrive", headers=auth("admin"))
        assert await _error(unknown) == (404, "NOT_FOUND")


async def _dlq_holds(depth: Any, count: int) -> bool:
    return bool((await depth())["dlq_messages"] == count)
