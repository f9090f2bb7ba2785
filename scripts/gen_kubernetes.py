"""Writes deploy/kubernetes/base/ from the service registry and the call graph.

One Deployment + Service + PodDisruptionBudget per service and per consumer
group, the gateway's and product's HorizontalPodAutoscalers, and one
NetworkPolicy per workload that admits exactly the callers of CALLS. The
output is committed and tests/unit/deploy/test_kubernetes.py fails when it
differs from what this script writes, or when CALLS differs from the calls
the code makes (or from mesh.yaml's allowed_callers). Overlays
(deploy/kubernetes/overlays/) are written by hand.

    python scripts/gen_kubernetes.py [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "kubernetes" / "base"
SETTINGS = ROOT / "src" / "ec_recommend" / "settings"

GRPC_PORT = 50051
HTTP_PORT = 8080
METRICS_PORT = 9100
# Settings mounted from ConfigMaps; routes.yaml is read from the package, so
# it is mounted over the packaged file (the site-packages path follows the
# image's Python, taken from the Dockerfile).
SETTINGS_DIR = "/etc/ec-recommend/settings"
CERTS_DIR = "/etc/ec-recommend/certs"

# Shutdown: preStop waits until the endpoint is out of every load balancer,
# then SIGTERM drains in-flight calls (EC_DRAIN_TIMEOUT) and, in consumers,
# lets handled batches finish (EC_EVENTS_SHUTDOWN_GRACE). The grace period
# covers all of it plus a margin, so the kubelet never kills a draining pod.
PRESTOP_SECONDS = 5
DRAIN_TIMEOUT = 10
EVENTS_SHUTDOWN_GRACE = 10
MARGIN_SECONDS = 5


@dataclass(frozen=True)
class Workload:
    name: str  # Deployment, Service and identity (certificate) name
    serves: tuple[str, ...]  # arguments of `ec-recommend serve`
    kind: str  # gateway | service | consumer
    replicas: int = 1

    @property
    def grpc(self) -> bool:
        return self.kind == "service"


WORKLOADS = (
    Workload("gateway", ("gateway",), "gateway", replicas=2),
    Workload("user", ("user",), "service"),
    Workload("product", ("product",), "service", replicas=2),
    Workload("cart", ("cart",), "service"),
    Workload("order", ("order",), "service"),
    Workload("search", ("search",), "service"),
    Workload("recommendation", ("recommendation",), "service"),
    # analytics and seller are a gRPC service and the consumer that feeds its
    # database, under one name and one certificate: one process serves both.
    Workload("analytics", ("analytics",), "service"),
    Workload("seller", ("seller",), "service"),
    Workload("inventory", ("inventory",), "consumer"),
    Workload("notification", ("notification",), "consumer"),
    Workload("search-indexer", ("search-indexer",), "consumer"),
    Workload("recommendation-updater", ("recommendation-updater",), "consumer"),
    Workload("cache-invalidation", ("cache-invalidation",), "consumer"),
)

# Who calls which gRPC service: the NetworkPolicies admit exactly these.
# (Checked against the stubs each identity's code makes and against
# mesh.yaml's allowed_callers by tests/unit/deploy/test_kubernetes.py.)
CALLS: dict[str, tuple[str, ...]] = {
    "gateway": (
        "user",
        "product",
        "cart",
        "order",
        "search",
        "recommendation",
        "seller",
        "analytics",
    ),
    "cart": ("product",),
    "order": ("product", "cart"),
    "search": ("product",),
    "recommendation": ("product", "order"),
    "seller": ("user",),
    "analytics": ("product",),  # whose products a seller asks stats about
    "inventory": ("product",),
    "notification": ("user",),
    "search-indexer": ("product",),
    "recommendation-updater": ("product",),
    "cache-invalidation": ("product",),
}

# Requests and limits per process, measured on `serve` processes (2-core
# machine, PostgreSQL, local broker; docs/deployment.md#resources): one
# service alone is 104-106 MB resident once ready; under the checkout bench
# (4 buyers, ~6 orders/s) a process of gateway+user+product+cart peaked at
# 125 MB and 0.20 cores, one of the other 5 services and 7 consumers at
# 122 MB and 0.25 cores; CPU per order was 17 ms (front) and 32 ms (back).
# Requests: the resident size plus headroom, and CPU for ~10 orders/s.
# Memory limits: twice the peak. No CPU limits: throttling a process whose
# calls carry deadlines turns spare cores into timeouts.
RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "gateway": {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "320Mi"}},
    "service": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "consumer": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
}

LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "ec-recommend"}


def python_version() -> str:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^ARG PYTHON_VERSION=(\d+\.\d+)$", text, re.MULTILINE)
    if not found:
        raise SystemExit("Dockerfile: no ARG PYTHON_VERSION=X.Y")
    return found.group(1)


def grace_seconds(workload: Workload) -> int:
    events = EVENTS_SHUTDOWN_GRACE if workload.kind != "gateway" else 0
    return PRESTOP_SECONDS + DRAIN_TIMEOUT + events + MARGIN_SECONDS


def _labels(workload: Workload) -> dict[str, str]:
    return {LABEL: workload.name, "app.kubernetes.io/component": workload.kind, **PART_OF}


def _env(workload: Workload) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "EC_MESH_FILE", "value": f"{SETTINGS_DIR}/mesh.yaml"},
        {"name": "EC_TOPOLOGY", "value": f"{SETTINGS_DIR}/topology.yaml"},
        {"name": "EC_TLS_CA", "value": f"{CERTS_DIR}/ca.crt"},
        {"name": "EC_TLS_CERT", "value": f"{CERTS_DIR}/{workload.name}.crt"},
        {"name": "EC_TLS_KEY", "value": f"{CERTS_DIR}/{workload.name}.key"},
        {"name": "EC_DRAIN_TIMEOUT", "value": str(DRAIN_TIMEOUT)},
        {"name": "EC_EVENTS_SHUTDOWN_GRACE", "value": str(EVENTS_SHUTDOWN_GRACE)},
        {
            "name": "EC_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "ec-recommend-database", "key": "url"}},
        },
        {
            # every process signs and checks the identity each gRPC call carries with it
            "name": "EC_CALL_IDENTITY_KEY",
            "valueFrom": {"secretKeyRef": {"name": "ec-recommend-call-identity", "key": "key"}},
        },
    ]
    for name in workload.serves:
        if workload.grpc:
            env.append({"name": f"EC_PORT_{name.upper()}", "value": str(GRPC_PORT)})
    return env


def _probes(workload: Workload) -> dict[str, Any]:
    if workload.kind == "gateway":
        ready = {"httpGet": {"path": "/readyz", "port": "http"}}
        live = {"httpGet": {"path": "/healthz", "port": "http"}}
    else:
        # /healthz on the metrics port opens once the services listen; the
        # local overlay adds grpc.health (plaintext there), see its patches.
        ready = live = {"httpGet": {"path": "/healthz", "port": "metrics"}}
    return {
        "startupProbe": {**live, "periodSeconds": 2, "failureThreshold": 30},
        "readinessProbe": {**ready, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**live, "periodSeconds": 10, "failureThreshold": 3},
    }


def _ports(workload: Workload) -> list[dict[str, Any]]:
    ports = [{"name": "metrics", "containerPort": METRICS_PORT}]
    if workload.kind == "gateway":
        ports.insert(0, {"name": "http", "containerPort": HTTP_PORT})
    if workload.grpc:
        ports.insert(0, {"name": "grpc", "containerPort": GRPC_PORT})
    return ports


def deployment(workload: Workload, python: str) -> dict[str, Any]:
    packaged = f"/usr/local/lib/python{python}/site-packages/ec_recommend/settings"
    container = {
        "name": "ec-recommend",
        "image": "ec-recommend:latest",
        "args": list(workload.serves),
        "envFrom": [{"configMapRef": {"name": "ec-recommend-env"}}],
        "env": _env(workload),
        "ports": _ports(workload),
        **_probes(workload),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        "resources": RESOURCES[workload.kind],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "settings", "mountPath": SETTINGS_DIR, "readOnly": True},
            {
                "name": "settings",
                "mountPath": f"{packaged}/routes.yaml",
                "subPath": "routes.yaml",
                "readOnly": True,
            },
            {"name": "certs", "mountPath": CERTS_DIR, "readOnly": True},
            {"name": "data", "mountPath": "/var/lib/ec-recommend"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload.name, "labels": _labels(workload)},
        "spec": {
            "replicas": workload.replicas,
            "selector": {"matchLabels": {LABEL: workload.name}},
            "template": {
                "metadata": {
                    "labels": _labels(workload),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": grace_seconds(workload),
                    "securityContext": {
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "settings", "configMap": {"name": "ec-recommend-settings"}},
                        # Certificates are a Secret of ca.crt and <identity>.crt/.key;
                        # optional, since mTLS is off (DISABLE) in the local overlay.
                        {
                            "name": "certs",
                            "secret": {"secretName": "ec-recommend-certs", "optional": True},
                        },
                        # Scratch only (the databases are PostgreSQL schemas).
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service(workload: Workload) -> dict[str, Any]:
    ports = [
        {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]}
        for p in _ports(workload)
    ]
    for port in ports:
        if port["name"] == "grpc":
            port["appProtocol"] = "grpc"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": workload.name, "labels": _labels(workload)},
        "spec": {"selector": {LABEL: workload.name}, "ports": ports},
    }


def disruption_budget(workload: Workload) -> dict[str, Any]:
    # Several replicas: keep one serving; one replica: a drain may take it,
    # its callers retry (idempotent reads) or the queue keeps the events.
    budget = {"minAvailable": 1} if workload.replicas > 1 else {"maxUnavailable": 1}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": workload.name, "labels": _labels(workload)},
        "spec": {**budget, "selector": {"matchLabels": {LABEL: workload.name}}},
    }


def autoscaler(workload: Workload, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": workload.name, "labels": _labels(workload)},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": workload.name,
            },
            "minReplicas": workload.replicas,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
            # Scale down slowly: a drained gateway drops its WebSockets.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def callers_of(target: str) -> list[str]:
    return sorted(caller for caller, targets in CALLS.items() if target in targets)


def network_policies() -> list[dict[str, Any]]:
    scrape = {
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "ports": [{"port": "metrics", "protocol": "TCP"}],
    }
    policies: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-ingress", "labels": dict(PART_OF)},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }
    ]
    for workload in WORKLOADS:
        rules: list[dict[str, Any]] = [scrape]
        if workload.kind == "gateway":
            rules.append({"ports": [{"port": "http", "protocol": "TCP"}]})
        elif workload.grpc and callers_of(workload.name):
            rules.append(
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchExpressions": [
                                    {
                                        "key": LABEL,
                                        "operator": "In",
                                        "values": callers_of(workload.name),
                                    }
                                ]
                            }
                        }
                    ],
                    "ports": [{"port": "grpc", "protocol": "TCP"}],
                }
            )
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"{workload.name}-ingress", "labels": _labels(workload)},
                "spec": {
                    "podSelector": {"matchLabels": {LABEL: workload.name}},
                    "policyTypes": ["Ingress"],
                    "ingress": rules,
                },
            }
        )
    return policies


def kustomization() -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": dict(PART_OF), "includeSelectors": False}],
        "resources": [
            *(f"workloads/{w.name}.yaml" for w in WORKLOADS),
            "autoscaling.yaml",
            "network-policies.yaml",
        ],
        "configMapGenerator": [
            {
                "name": "ec-recommend-settings",
                "files": [f"settings/{name}" for name in SETTING_FILES],
            }
        ],
    }


SETTING_FILES = ("mesh.yaml", "routes.yaml", "topology.yaml")
HEADER = "# Generated by scripts/gen_kubernetes.py; do not edit.\n"


def _yaml(documents: list[dict[str, Any]]) -> bytes:
    text = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=100) for d in documents)
    return (HEADER + text).encode("utf-8")


def render_base() -> dict[Path, bytes]:
    """Every file of the base, by its path under the base directory."""
    python = python_version()
    files = {
        Path("workloads", f"{w.name}.yaml"): _yaml(
            [deployment(w, python), service(w), disruption_budget(w)]
        )
        for w in WORKLOADS
    }
    by_name = {w.name: w for w in WORKLOADS}
    files[Path("autoscaling.yaml")] = _yaml(
        [autoscaler(by_name["gateway"], 10), autoscaler(by_name["product"], 8)]
    )
    files[Path("network-policies.yaml")] = _yaml(network_policies())
    files[Path("kustomization.yaml")] = _yaml([kustomization()])
    for name in SETTING_FILES:
        files[Path("settings", name)] = (SETTINGS / name).read_bytes()
    return files


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    for relative, content in render_base().items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BASE)
    args = parser.parse_args()
    generate(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
