"""``/healthz`` beside ``/metrics``: what probes of service and consumer processes ask."""

from __future__ import annotations

import aiohttp
import pytest

from ec_recommend.platform.telemetry.endpoint import serve_metrics

pytestmark = pytest.mark.asyncio


async def test_healthz_answers_while_the_endpoint_is_open_and_stops_with_it() -> None:
    async with aiohttp.ClientSession() as session:
        async with serve_metrics() as endpoint:
            url = f"http://{endpoint.host}:{endpoint.port}/healthz"
            async with session.get(url) as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok"}
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url):
                pass
