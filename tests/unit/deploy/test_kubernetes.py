"""deploy/kubernetes/base: current, complete, and fenced by the real call graph.

The base is written by scripts/gen_kubernetes.py; CI renders every overlay
with `kubectl kustomize` and validates it against the Kubernetes schemas
(.ci/deploy-checks). Here: the committed base is what the script writes,
every service and consumer runs somewhere, the NetworkPolicies admit exactly
the calls the code makes (and every caller mesh.yaml's allowed_callers
names), and pods get the time to drain that their settings ask for.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ec_recommend.config import Config
from ec_recommend.platform.rpc.mesh import load_mesh
from ec_recommend.runtime.registry import CONSUMERS, SERVICES, certificate_names
from tests.unit.security.call_graph import call_graph

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "deploy" / "kubernetes" / "base"
LABEL = "app.kubernetes.io/name"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_kubernetes", ROOT / "scripts" / "gen_kubernetes.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _documents(*paths: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in paths
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc["kind"] != "Kustomization"
    ]


# the manifests (settings/ holds the ConfigMap files)
DOCUMENTS = _documents(*sorted(BASE.glob("*.yaml")), *sorted(BASE.glob("workloads/*.yaml")))
DEPLOYMENTS = {d["metadata"]["name"]: d for d in DOCUMENTS if d["kind"] == "Deployment"}


def _container(name: str) -> dict[str, Any]:
    container: dict[str, Any] = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(name: str) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in _container(name)["env"]}


def test_the_committed_base_is_what_the_generator_writes() -> None:
    written = _generator().render_base()
    committed = {p.relative_to(BASE): p.read_bytes() for p in BASE.rglob("*") if p.is_file()}
    assert sorted(written) == sorted(committed)
    stale = [str(path) for path in written if written[path] != committed[path]]
    assert not stale, f"run python scripts/gen_kubernetes.py: {stale} differ"


def test_every_service_and_consumer_runs_in_a_deployment() -> None:
    served = {arg for name in DEPLOYMENTS for arg in _container(name)["args"]}
    assert set(SERVICES) | set(CONSUMERS) | {"gateway"} <= served
    for name in DEPLOYMENTS:
        # the certificate a pod presents is one `certs init` writes
        assert name in certificate_names()
        assert _env(name)["EC_TLS_CERT"].endswith(f"/{name}.crt")


def _policy_graph() -> dict[str, set[str]]:
    """caller -> the services whose gRPC port its pods may reach."""
    graph: dict[str, set[str]] = {}
    for doc in DOCUMENTS:
        if doc["kind"] != "NetworkPolicy" or "ingress" not in doc["spec"]:
            continue
        target = doc["spec"]["podSelector"]["matchLabels"][LABEL]
        for rule in doc["spec"]["ingress"]:
            if {"port": "grpc", "protocol": "TCP"} not in rule.get("ports", []):
                continue
            for peer in rule["from"]:
                (expression,) = peer["podSelector"]["matchExpressions"]
                assert expression["key"] == LABEL and expression["operator"] == "In"
                for caller in expression["values"]:
                    graph.setdefault(caller, set()).add(target)
    return graph


def test_network_policies_admit_exactly_the_calls_the_code_makes() -> None:
    in_code = {caller: targets for caller, targets in call_graph().items() if targets}
    assert _policy_graph() == in_code


def test_every_allowed_caller_may_reach_its_service() -> None:
    graph = _policy_graph()
    mesh = load_mesh()
    for service in SERVICES:
        for method, callers in (mesh.policy(service).allowed_callers or {}).items():
            for caller in callers:
                assert service in graph.get(caller, set()), f"{caller} -> {service}.{method}"


def test_everything_else_is_denied() -> None:
    (deny,) = [d for d in DOCUMENTS if d["metadata"]["name"] == "default-deny-ingress"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_the_grace_period_covers_the_drain(name: str) -> None:
    spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    container = _container(name)
    prestop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # what the pod's own settings make of its drain and (for consumers) event grace
    config = Config.from_env({key: value for key, value in _env(name).items() if value})
    needed = prestop + config.rpc.drain_timeout
    if any(arg in CONSUMERS for arg in container["args"]):
        needed += config.events.shutdown_grace
    assert spec["terminationGracePeriodSeconds"] > needed


def test_probes_resources_and_budgets() -> None:
    budgets = {d["metadata"]["name"] for d in DOCUMENTS if d["kind"] == "PodDisruptionBudget"}
    scaled = {d["metadata"]["name"] for d in DOCUMENTS if d["kind"] == "HorizontalPodAutoscaler"}
    assert budgets == set(DEPLOYMENTS)
    assert scaled == {"gateway", "product"}
    gateway = _container("gateway")
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for name in DEPLOYMENTS:
        resources = _container(name)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"]
        assert resources["limits"]["memory"]


def test_settings_are_the_packaged_ones() -> None:
    packaged = ROOT / "src" / "ec_recommend" / "settings"
    for path in (BASE / "settings").iterdir():
        assert path.read_text(encoding="utf-8") == (packaged / path.name).read_text(
            encoding="utf-8"
        )
