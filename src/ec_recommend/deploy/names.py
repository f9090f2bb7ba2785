"""Logical ids: CloudFormation accepts only letters and digits."""

from __future__ import annotations

import re


def logical_id(kind: str, name: str) -> str:
    """``logical_id("Queue", "order-processing-queue")`` -> ``QueueOrderProcessingQueue``."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    return kind + "".join(word[:1].upper() + word[1:] for word in words if word)


def prefixed(name: str) -> dict[str, str]:
    """A resource name with the stack's EventsPrefix parameter in front (EC_EVENTS_PREFIX)."""
    return {"Fn::Sub": f"${{EventsPrefix}}{name}"}
