"""Reading a hand-written YAML file node by node, so errors name the line.

``yaml.compose`` keeps each node's position; ``NodeReader`` checks a node's
shape and value and raises ``ConfigError`` with ``source line N: where: what``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ec_recommend.config import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


class NodeReader:
    """Typed values out of YAML nodes; a wrong one fails with its line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, message: str) -> Any:
        raise ConfigError(f"{self.source} line {node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, where: str, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{where}: expected a mapping")
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in allowed:
                self.fail(
                    key_node,
                    f"{where}: unknown key {key!r} (expected one of {', '.join(sorted(allowed))})",
                )
            result[key] = value_node
        return result

    def scalar(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{where}: expected a single value")
        return str(node.value)

    def string(self, node: yaml.Node, where: str) -> str:
        value = self.scalar(node, where).strip()
        if not value:
            self.fail(node, f"{where}: must not be empty")
        return value

    def strings(self, node: yaml.Node, where: str) -> frozenset[str]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{where}: expected a list")
        return frozenset(self.string(item, where) for item in node.value)

    def number(self, node: yaml.Node, where: str, *, minimum: float, integer: bool = False) -> Any:
        text = self.scalar(node, where)
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            return self.fail(node, f"{where}: expected {kind}, got {text!r}")
        if value < minimum:
            self.fail(node, f"{where}: must be >= {minimum}, got {value}")
        return value

    def duration(self, node: yaml.Node, where: str) -> float:
        text = self.scalar(node, where)
        match = _DURATION.match(text)
        if match is None:
            return float(self.fail(node, f"{where}: expected a duration like 5s or 250ms"))
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds <= 0:
            self.fail(node, f"{where}: must be > 0")
        return seconds
