"""The scrape config finds the pods deploy/kubernetes makes; every alert has a test.

(Debian's promtool cannot parse Kubernetes discovery, so the scrape config is
read here; the rules are checked and unit-tested by promtool in CI.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
OBSERVABILITY = ROOT / "deploy" / "observability"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_scrape_job_keeps_exactly_what_the_pods_carry() -> None:
    config = _yaml(OBSERVABILITY / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    keeps = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    for path in sorted((ROOT / "deploy" / "kubernetes" / "base" / "workloads").glob("*.yaml")):
        (deployment,) = [
            d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Deployment"
        ]
        template = deployment["spec"]["template"]
        labels, annotations = template["metadata"]["labels"], template["metadata"]["annotations"]
        ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
        pod = "__meta_kubernetes_pod_"
        assert (
            labels["app.kubernetes.io/part-of"] == keeps[(pod + "label_app_kubernetes_io_part_of",)]
        )
        assert (
            annotations["prometheus.io/scrape"] == keeps[(pod + "annotation_prometheus_io_scrape",)]
        )
        assert keeps[(pod + "container_port_name",)] in ports


def test_every_alert_has_a_promtool_test() -> None:
    alerts = {
        rule["alert"]
        for group in _yaml(OBSERVABILITY / "alerts.yml")["groups"]
        for rule in group["rules"]
    }
    tests = _yaml(OBSERVABILITY / "alerts.test.yml")["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == alerts
