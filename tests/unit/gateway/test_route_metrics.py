"""The gateway's pre-resolved metric children record the series observe_http records."""

from __future__ import annotations

from ec_recommend.platform.telemetry.metrics import Metrics


def _samples(metrics: Metrics) -> list[str]:
    text = metrics.render()[0].decode()
    return sorted(line for line in text.splitlines() if line.startswith("http_"))


def test_children_match_the_label_dict_api() -> None:
    by_children, by_labels = Metrics(), Metrics()
    route = by_children.http_route("gateway", "/api/v1/products/{product_id}", "GET")
    in_flight = by_children.http_in_flight_of("gateway")
    for status, seconds in ((200, 0.002), (200, 0.03), (404, 0.2)):
        in_flight.inc()
        by_labels.http_started("gateway")
        route.observe(status, seconds)
        by_labels.observe_http("gateway", "/api/v1/products/{product_id}", "GET", status, seconds)
    in_flight.inc()
    in_flight.dec()
    by_labels.http_started("gateway")
    by_labels.http_finished("gateway")
    assert _samples(by_children) == _samples(by_labels)
    assert any('status="404"} 1' in line for line in _samples(by_children))


def test_a_child_shares_its_series_with_the_label_dict_api() -> None:
    metrics = Metrics()
    metrics.observe_http("gateway", "/x", "GET", 200, 0.01)
    metrics.http_route("gateway", "/x", "GET").observe(200, 0.01)
    assert 'http_request_total{endpoint="/x",method="GET",service="gateway",status="200"} 2' in (
        _samples(metrics)
    )
