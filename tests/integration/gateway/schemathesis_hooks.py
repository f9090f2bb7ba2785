"""Schemathesis hooks (SCHEMATHESIS_HOOKS): cases that break an ``x-constraints`` rule.

The document states rules between two values that JSON Schema cannot
(``{"at_most": ["query.min_price", "query.max_price"]}``); schemathesis
generates each value on its own, so a positive case may break one and be
refused, rightly. Such cases are skipped, read from the operation itself.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _value(case: Any, path: str) -> Any:
    location, *names = path.split(".")
    value = case.query if location == "query" else case.body
    for name in names:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _comparable(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _breaks(rule: dict[str, Any], case: Any) -> bool:
    if "at_most" in rule:
        low, high = (_comparable(_value(case, path)) for path in rule["at_most"])
        return low is not None and high is not None and low > high
    path, key = rule["unique"]
    items = _value(case, path)
    if not isinstance(items, list):
        return False
    keys = [str(item.get(key)).lower() for item in items if isinstance(item, dict) and key in item]
    return len(keys) != len(set(keys))


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    rules = case.operation.definition.raw.get("x-constraints", ())
    return not any(_breaks(rule, case) for rule in rules)
