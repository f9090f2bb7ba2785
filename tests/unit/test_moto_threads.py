"""The local broker's SNS and SQS registries can be read while another request writes them."""

from __future__ import annotations

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
