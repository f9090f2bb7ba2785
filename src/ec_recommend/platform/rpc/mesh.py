"""Mesh policies per target service, loaded from ``settings/mesh.yaml``.

The file has the seed's shape (section 6.1): ``virtual_services`` with
``protocol``, ``retry_policy`` {max_retries, retry_on, retry_timeout},
``timeout`` and ``circuit_breaker`` {threshold, timeout}. A ``defaults``
section supplies every policy a service does not name. Which methods may be
retried and who may call them are explicit tables here, never guessed.

The file is validated when a process starts: an unknown key, a wrong type or
an impossible value is a ``ConfigError`` that names the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ec_recommend.config import ConfigError
from ec_recommend.platform.rpc.policies import (
    BreakerPolicy,
    MeshConfig,
    OutlierPolicy,
    RetryBudget,
    RetryPolicy,
    ServicePolicy,
)
from ec_recommend.platform.rpc.yaml_nodes import NodeReader

__all__ = [
    "DEFAULT_MESH_FILE",
    "RETRY_ON",
    "BreakerPolicy",
    "MeshConfig",
    "OutlierPolicy",
    "RetryBudget",
    "RetryPolicy",
    "ServicePolicy",
    "load_mesh",
    "parse_mesh",
]

DEFAULT_MESH_FILE = Path(__file__).resolve().parents[2] / "settings" / "mesh.yaml"

# retry_on names (Envoy's vocabulary plus gRPC status names) → error codes.
# UNAVAILABLE is always retryable: the call was refused before any work.
RETRY_ON: Mapping[str, frozenset[str]] = {
    "server-error": frozenset({"INTERNAL", "UNKNOWN", "DATA_LOSS", "UNAVAILABLE"}),
    "gateway-error": frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"}),
    "unavailable": frozenset({"UNAVAILABLE"}),
    "deadline-exceeded": frozenset({"DEADLINE_EXCEEDED"}),
    "internal": frozenset({"INTERNAL"}),
    "resource-exhausted": frozenset({"RESOURCE_EXHAUSTED"}),
    "aborted": frozenset({"ABORTED"}),
}


def load_mesh(path: Path | None = None) -> MeshConfig:
    """Read and validate a mesh file (default: the packaged settings/mesh.yaml)."""
    path = path or DEFAULT_MESH_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_mesh(text, source=str(path))


def parse_mesh(text: str, *, source: str = "mesh.yaml") -> MeshConfig:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if root is None:
        return MeshConfig()
    reader = _Reader(source)
    top = reader.mapping(root, "top level", {"mesh", "defaults", "virtual_services"})
    name = "ec-recommend-mesh"
    if "mesh" in top:
        mesh = reader.mapping(top["mesh"], "mesh", {"name"})
        name = reader.string(mesh["name"], "mesh.name") if "name" in mesh else name
    defaults = ServicePolicy(name="*")
    if "defaults" in top:
        defaults = reader.service(top["defaults"], "defaults", defaults, named=False)
    services: dict[str, ServicePolicy] = {}
    if "virtual_services" in top:
        node = top["virtual_services"]
        if not isinstance(node, yaml.SequenceNode):
            reader.fail(node, "virtual_services: expected a list")
        for index, item in enumerate(node.value):
            policy = reader.service(item, f"virtual_services[{index}]", defaults, named=True)
            if policy.name in services:
                reader.fail(item, f"virtual_services[{index}]: {policy.name!r} is listed twice")
            services[policy.name] = policy
    return MeshConfig(name=name, defaults=defaults, services=services)


_SERVICE_KEYS = {
    "name",
    "protocol",
    "timeout",
    "retry_policy",
    "retry_budget",
    "circuit_breaker",
    "outlier_detection",
    "idempotent_methods",
    "idempotent_with_key",
    "allowed_callers",
}


class _Reader(NodeReader):
    """Turns YAML nodes into policy values, failing with the node's line."""

    def service(
        self, node: yaml.Node, where: str, base: ServicePolicy, *, named: bool
    ) -> ServicePolicy:
        keys = _SERVICE_KEYS if named else _SERVICE_KEYS - {"name"}
        values = self.mapping(node, where, keys)
        policy = base
        if named:
            if "name" not in values:
                self.fail(node, f"{where}: missing 'name'")
            name = self.string(values["name"], f"{where}.name").removesuffix("-service")
            policy = replace(policy, name=name)
            where = f"virtual_services {name!r}"
        if "protocol" in values:
            protocol = self.string(values["protocol"], f"{where}.protocol")
            if protocol != "grpc":
                self.fail(values["protocol"], f"{where}.protocol: only grpc is supported")
        if "timeout" in values:
            policy = replace(policy, timeout=self.duration(values["timeout"], f"{where}.timeout"))
        if "retry_policy" in values:
            policy = replace(policy, retry=self.retry(values["retry_policy"], where, base.retry))
        if "retry_budget" in values:
            budget = self.mapping(
                values["retry_budget"], f"{where}.retry_budget", {"ratio", "reserve"}
            )
            ratio = policy.budget.ratio
            if "ratio" in budget:
                ratio = self.number(budget["ratio"], f"{where}.retry_budget.ratio", minimum=0)
            reserve = policy.budget.reserve
            if "reserve" in budget:
                reserve = self.number(budget["reserve"], f"{where}.retry_budget.reserve", minimum=0)
            policy = replace(policy, budget=RetryBudget(ratio=ratio, reserve=reserve))
        if "circuit_breaker" in values:
            cb = self.mapping(
                values["circuit_breaker"], f"{where}.circuit_breaker", {"threshold", "timeout"}
            )
            breaker = policy.breaker
            if "threshold" in cb:
                threshold = self.number(
                    cb["threshold"], f"{where}.circuit_breaker.threshold", minimum=1, integer=True
                )
                breaker = replace(breaker, threshold=threshold)
            if "timeout" in cb:
                breaker = replace(
                    breaker,
                    timeout=self.duration(cb["timeout"], f"{where}.circuit_breaker.timeout"),
                )
            policy = replace(policy, breaker=breaker)
        if "outlier_detection" in values:
            policy = replace(
                policy, outlier=self.outlier(values["outlier_detection"], where, policy.outlier)
            )
        for key in ("idempotent_methods", "idempotent_with_key"):
            if key in values:
                policy = replace(
                    policy, **_changes(key, self.strings(values[key], f"{where}.{key}"))
                )
        if "allowed_callers" in values:
            table = values["allowed_callers"]
            if not isinstance(table, yaml.MappingNode):
                self.fail(
                    table, f"{where}.allowed_callers: expected a mapping of method to callers"
                )
            callers = {
                self.string(k, f"{where}.allowed_callers"): self.strings(
                    v, f"{where}.allowed_callers"
                )
                for k, v in table.value
            }
            policy = replace(policy, allowed_callers=callers)
        return policy

    def retry(self, node: yaml.Node, where: str, base: RetryPolicy) -> RetryPolicy:
        where = f"{where}.retry_policy"
        keys = {
            "max_retries",
            "retry_on",
            "retry_timeout",
            "initial_delay",
            "max_delay",
            "multiplier",
            "jitter",
        }
        values = self.mapping(node, where, keys)
        policy = base
        if "max_retries" in values:
            policy = replace(
                policy,
                max_retries=self.number(
                    values["max_retries"], f"{where}.max_retries", minimum=0, integer=True
                ),
            )
        if "retry_on" in values:
            codes: set[str] = {"UNAVAILABLE"}
            if not isinstance(values["retry_on"], yaml.SequenceNode):
                self.fail(values["retry_on"], f"{where}.retry_on: expected a list")
            for item in values["retry_on"].value:
                name = self.string(item, f"{where}.retry_on")
                if name not in RETRY_ON:
                    self.fail(
                        item,
                        f"{where}.retry_on: unknown condition {name!r} "
                        f"(expected one of {', '.join(RETRY_ON)})",
                    )
                codes |= RETRY_ON[name]
            policy = replace(policy, retry_on=frozenset(codes))
        for key in ("retry_timeout", "initial_delay", "max_delay"):
            if key in values:
                policy = replace(
                    policy, **_changes(key, self.duration(values[key], f"{where}.{key}"))
                )
        if "multiplier" in values:
            policy = replace(
                policy,
                multiplier=self.number(values["multiplier"], f"{where}.multiplier", minimum=1),
            )
        if "jitter" in values:
            jitter = self.number(values["jitter"], f"{where}.jitter", minimum=0)
            if jitter >= 1:
                self.fail(values["jitter"], f"{where}.jitter: must be < 1")
            policy = replace(policy, jitter=jitter)
        if policy.max_delay < policy.initial_delay:
            self.fail(node, f"{where}: max_delay is smaller than initial_delay")
        return policy

    def outlier(self, node: yaml.Node, where: str, base: OutlierPolicy) -> OutlierPolicy:
        where = f"{where}.outlier_detection"
        values = self.mapping(
            node, where, {"consecutive_failures", "ejection_time", "probe_timeout"}
        )
        policy = base
        if "consecutive_failures" in values:
            policy = replace(
                policy,
                consecutive_failures=self.number(
                    values["consecutive_failures"],
                    f"{where}.consecutive_failures",
                    minimum=1,
                    integer=True,
                ),
            )
        for key in ("ejection_time", "probe_timeout"):
            if key in values:
                policy = replace(
                    policy, **_changes(key, self.duration(values[key], f"{where}.{key}"))
                )
        return policy


def _changes(key: str, value: Any) -> dict[str, Any]:
    return {key: value}
