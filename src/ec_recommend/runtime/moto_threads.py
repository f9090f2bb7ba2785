"""moto's SNS and SQS state, safe for the requests its server answers at once.

moto's server answers each connection on a thread of its own. Under the GIL
a race shows only when a thread switch lands in the wrong place: rarely, and
never in AWS. Two kinds are closed here.

Registries: SNS and SQS keep topics, subscriptions and queues in plain dicts
that requests iterate (a publish walks every subscription, a subscribe looks
for an existing one) while other requests add or remove entries; that fails
as a 500 ("dictionary changed size during iteration"). Those dicts hand out
copies of their views, made in one step under the GIL.

A queue's messages: moto deletes a message by rebuilding the queue's list
and assigning it back, with no lock. Two deletes at once (two consumers'
DeleteMessageBatch calls on one queue) could each write back the message the
other removed: it stayed in flight for a whole visibility timeout and was
delivered again. A message sent during the rebuild could be dropped outright.
Each queue's own lock (the one moto takes to add a message) now also covers
deletes, receives, visibility changes and purges (``LOCKED_QUEUE_CALLS``). A
long poll still waits without it: moto's wait releases it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from moto.sqs.models import Queue, SQSBackend

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


# (owner, method) that change or walk a queue's message list; the backend's
# take the queue's name first.
LOCKED_QUEUE_CALLS: tuple[tuple[type, str], ...] = (
    (Queue, "delete_message"),
    (SQSBackend, "receive_message"),
    (SQSBackend, "change_message_visibility"),
    (SQSBackend, "purge_queue"),
)


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


def lock_queue_changes() -> bool:
    """Run every call in ``LOCKED_QUEUE_CALLS`` under its queue's lock."""
    for owner, name in LOCKED_QUEUE_CALLS:
        call = getattr(owner, name, None)
        if call is None:
            return False
        setattr(owner, name, _under_queue_lock(call, is_backend=owner is SQSBackend))
    return True


def _under_queue_lock(call: Callable[..., Any], *, is_backend: bool) -> Callable[..., Any]:
    @functools.wraps(call)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(args[0] if args else kwargs["queue_name"]) if is_backend else self
        with queue._messages_lock:
            return call(self, *args, **kwargs)

    return locked
