"""moto's registries of topics, subscriptions and queues, safe to read while another thread writes.

moto's server answers each connection on a thread of its own, and its SNS
and SQS backends keep topics, subscriptions and queues in plain dicts that
requests iterate (a publish walks every subscription, a subscribe looks for
an existing one) while other requests add or remove entries. Under the GIL
that fails only when a thread switch lands mid-iteration, and then as a 500
("dictionary changed size during iteration"): rarely, and never in AWS. Here
those dicts hand out copies of their views, made in one step under the GIL.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

# backend class (module, name) -> the dicts of it that requests iterate
REGISTRIES = {
    ("moto.sns.models", "SNSBackend"): ("topics", "subscriptions"),
    ("moto.sqs.models", "SQSBackend"): ("queues",),
}


class SnapshotDict(OrderedDict[Any, Any]):
    """An ordered dict whose ``keys``, ``values``, ``items`` and iteration are copies."""

    def keys(self) -> list[Any]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return list(super().items())

    def __iter__(self) -> Any:
        return iter(list(super().keys()))


def snapshot_registries() -> bool:
    """Have every SNS and SQS backend made from now on use ``SnapshotDict``s."""
    import importlib

    for (module_name, class_name), names in REGISTRIES.items():
        backend = getattr(importlib.import_module(module_name), class_name, None)
        if backend is None:
            return False
        _wrap_init(backend, names)
    return True


def _wrap_init(backend: type, names: tuple[str, ...]) -> None:
    made = vars(backend)["__init__"]  # each backend class defines its own

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        for name in names:
            setattr(self, name, SnapshotDict(getattr(self, name)))

    backend.__init__ = init  # type: ignore[misc]
