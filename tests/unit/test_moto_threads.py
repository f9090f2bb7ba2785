"""The local broker's SNS and SQS registries can be read while another request writes them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from moto.sns.models import SNSBackend
from moto.sqs.models import SQSBackend

from ec_recommend.runtime import moto_threads


def test_iterating_a_registry_while_it_grows_does_not_fail() -> None:
    registry = moto_threads.SnapshotDict({"a": 1, "b": 2})
    for key in registry:  # a plain dict raises "dictionary changed size during iteration"
        registry[key + "'"] = 0
    for value in registry.values():
        registry[f"v{value}"] = value
    for key, _ in registry.items():
        registry.pop(key)
    assert registry == {}


def test_backends_made_after_the_patch_use_snapshot_registries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for backend in (SNSBackend, SQSBackend):
        monkeypatch.setattr(backend, "__init__", backend.__init__)
    assert moto_threads.snapshot_registries()
    sns = SNSBackend("ap-northeast-1", "123456789012")
    sqs = SQSBackend("ap-northeast-1", "123456789012")
    assert isinstance(sns.subscriptions, moto_threads.SnapshotDict)
    assert isinstance(sns.topics, moto_threads.SnapshotDict)
    assert isinstance(sqs.queues, moto_threads.SnapshotDict)
    topic = sns.create_topic("orders")
    sqs.create_queue("q")
    # moto still works on them
    assert [t.arn for t in sns.topics.values()] == [topic.arn]
    assert list(sqs.queues) == ["q"]


class _PausingLook:
    """A message's receipt-handle check that, the ``at``-th time a request
    makes it, first lets another request run (``meanwhile``, on its own
    thread): the thread switch that, under load, lands inside moto's delete."""

    def __init__(self, look: Callable[[str], bool], meanwhile: Callable[[], None], at: int) -> None:
        self._look = look
        self._meanwhile = meanwhile
        self._looks_left = at
        self.others: list[threading.Thread] = []

    def __call__(self, receipt_handle: str) -> bool:
        self._looks_left -= 1
        if self._looks_left == 0:
            other = threading.Thread(target=self._meanwhile)
            other.start()
            # If the queue is locked the other request waits for this one and
            # cannot finish within this window; the test then joins it.
            other.join(timeout=0.3)
            self.others.append(other)
        return self._look(receipt_handle)


@pytest.fixture
def sqs_backend(monkeypatch: pytest.MonkeyPatch) -> SQSBackend:
    monkeypatch.setattr(SQSBackend, "__init__", SQSBackend.__init__)
    for owner, name in moto_threads.LOCKED_QUEUE_CALLS:
        monkeypatch.setattr(owner, name, getattr(owner, name))
    assert moto_threads.snapshot_registries()
    assert moto_threads.lock_queue_changes()
    return SQSBackend("ap-northeast-1", "123456789012")


def test_two_deletes_on_one_queue_at_once_both_stay_deleted(sqs_backend: SQSBackend) -> None:
    # moto rebuilt a queue's message list with no lock: the delete that ended
    # last wrote back the message the other had just removed, which then sat
    # in flight for a whole visibility timeout and was delivered again.
    sqs_backend.create_queue("q")
    sqs_backend.send_message("q", "x")
    sqs_backend.send_message("q", "y")
    x, y = sqs_backend.receive_message("q", 10, 0, 30)
    queue = sqs_backend.get_queue("q")
    # The first look is the delete's "is it here?"; the second is its rebuild.
    first = queue._messages[0]
    look = _PausingLook(
        first.had_receipt_handle,
        lambda: sqs_backend.delete_message("q", y.receipt_handle),
        at=2,
    )
    first.had_receipt_handle = look  # type: ignore[method-assign]
    sqs_backend.delete_message("q", x.receipt_handle)
    for other in look.others:
        other.join()
    assert queue._messages == []
    assert queue.approximate_number_of_messages_not_visible == 0


def test_a_long_poll_waits_without_holding_its_queue(sqs_backend: SQSBackend) -> None:
    sqs_backend.create_queue("q")
    received: list[Any] = []
    poll = threading.Thread(
        target=lambda: received.extend(sqs_backend.receive_message("q", 1, 20, 30))
    )
    poll.start()
    queue = sqs_backend.get_queue("q")
    # Once the poll waits, a send must get the lock and wake it.
    deadline = time.monotonic() + 10
    while not queue._messages_lock._waiters and time.monotonic() < deadline:  # type: ignore[attr-defined]
        poll.join(timeout=0.01)
    sqs_backend.send_message("q", "hello")
    poll.join(timeout=10)
    assert [m.body for m in received] == ["hello"]
