"""Every metric the dashboards and alerts of deploy/observability use is one `up` exports.

A panel or alert over a metric that does not exist shows nothing and never
fires; this scrapes the running system's /metrics and compares. The alerts'
own behaviour is tested by `promtool test rules` (.ci/deploy-checks).
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import yaml

from tests.e2e.conftest import RunningSystem

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        name, call = match.groups()
        if not call and name.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d.*", name):
            names.add(name)
    return names


def _used() -> dict[str, set[str]]:
    """Where each expression comes from -> the metric names it uses."""
    used: dict[str, set[str]] = {}
    alerts = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text(encoding="utf-8"))
    for group in alerts["groups"]:
        for rule in group["rules"]:
            used[f"alert {rule['alert']}"] = metric_names(rule["expr"])
    for path in sorted((OBSERVABILITY / "grafana").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                used[f"{path.name}: {panel['title']}"] = metric_names(target["expr"])
    return used


def _exported(gateway_url: str) -> set[str]:
    with urllib.request.urlopen(f"{gateway_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SERIES)
    return names


def test_the_extractor_finds_metric_names() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(x_bucket{a="b"}[5m]))) > 1'
        " and y offset 5m / z"
    ) == {"x_bucket", "y", "z"}


def test_every_metric_of_the_dashboards_and_alerts_is_exported(
    running_system: RunningSystem,
) -> None:
    used = _used()
    assert any(name.startswith("alert ") for name in used) and any(":" in n for n in used)
    exported = _exported(running_system.gateway_url)
    missing = {where: sorted(names - exported) for where, names in used.items() if names - exported}
    assert not missing, f"not exported by the system: {missing}"
    # the design's four metrics each have a row of the dashboard
    everything = set().union(*used.values())
    for seed in (
        "grpc_request_duration_seconds_bucket",
        "http_request_total",
        "queue_message_processed_total",
        "circuit_breaker_state",
        "outbox_oldest_unsent_age_seconds",
        "queue_dlq_messages",
    ):
        assert seed in everything
