"""What `up` prints at a terminal once ready: where to go, who to log in as, how to stop."""

from __future__ import annotations

from pathlib import Path

from ec_recommend.runtime.local_system import LocalSystem, ready_summary

SYSTEM = LocalSystem(
    endpoints={"gateway_url": "http://127.0.0.1:8080", "aws_endpoint_url": "http://127.0.0.1:5123"},
    endpoints_file=Path(".ec-data/endpoints.json"),
)


def test_the_summary_names_what_a_newcomer_needs() -> None:
    text = ready_summary(SYSTEM, "Demo-password-1", seconds=2.4)
    assert "ready in 2.4 s" in text
    assert "http://127.0.0.1:8080/api/v1/products" in text
    assert "http://127.0.0.1:8080/api/v1/openapi.json" in text
    assert "customer@example.com" in text and "seller@example.com" in text
    assert "Demo-password-1" in text
    assert ".ec-data/endpoints.json" in text
    assert "Ctrl-C" in text
    assert len(text.splitlines()) <= 10  # short, unlike the JSON line for tools


def test_without_demo_data_no_accounts_are_offered() -> None:
    text = ready_summary(SYSTEM, None, seconds=1.0)
    assert "password" not in text
    assert "customer@example.com" not in text
