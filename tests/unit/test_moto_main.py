"""The local broker's patch of moto: it still applies, and it still expires messages."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from moto.sqs.models import SQSBackend

from ec_recommend.runtime import moto_main


def backend_with_retention(seconds: int) -> SimpleNamespace:
    queue = SimpleNamespace(message_retention_period=str(seconds))
    return SimpleNamespace(get_queue=lambda name: queue)


@pytest.mark.parametrize(("age", "kept"), [(0, True), (59, True), (61, False)])
def test_a_message_is_handed_out_only_within_its_queues_retention(age: int, kept: bool) -> None:
    message = SimpleNamespace(sent_timestamp=(time.time() - age) * 1000)
    assert moto_main._retention_check(backend_with_retention(60), "q", message) is kept


def test_the_installed_moto_is_the_one_the_patch_was_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # were it not, up's broker would silently be O(n²) in its backlog again
    original = SQSBackend.is_message_valid_based_on_retention_period
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period", original)
    assert moto_main.patch_moto()
    assert SQSBackend.is_message_valid_based_on_retention_period is moto_main._retention_check
