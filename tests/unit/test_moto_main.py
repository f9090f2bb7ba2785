"""The local broker's patch of moto: it still applies, and it still expires messages."""

from __future__ import annotations

import string
import time
from datetime import datetime
from types import SimpleNamespace

import moto.sqs.models as sqs_models
import pytest
from moto.sqs.models import SQSBackend

from ec_recommend.runtime import moto_main


def keep_patches_to_this_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``patch_moto`` replaces, put back after the test."""
    import moto.backends as backends
    import moto.core.responses as responses

    for name in moto_main.PATCHED_NAMES:
        monkeypatch.setattr(sqs_models, name, getattr(sqs_models, name))
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)


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
    keep_patches_to_this_test(monkeypatch)
    assert moto_main.patch_moto()
    assert SQSBackend.is_message_valid_based_on_retention_period is moto_main._retention_check
    assert sqs_models.unix_time_millis is moto_main.unix_time_millis


def test_the_cheap_clock_reads_what_motos_reads() -> None:
    from moto.core import utils

    assert abs(moto_main.unix_time_millis() - utils.unix_time_millis()) < 1_000
    moment = datetime(2026, 12, 1, 3, 4, 5, 678_000)  # naive UTC, as moto passes it
    assert moto_main.unix_time(moment) == utils.unix_time(moment)


def test_a_patched_queue_still_tells_visible_and_in_flight_messages_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keep_patches_to_this_test(monkeypatch)
    assert moto_main.patch_moto()
    queue = sqs_models.Queue("q", region="us-east-1", account_id="123456789012")
    waiting, taken = (sqs_models.Message(str(n), "body") for n in range(2))
    for message in (waiting, taken):
        message.mark_sent()
        queue.add_message(message)
    taken.change_visibility(30)
    attributes = queue.attributes
    assert attributes["ApproximateNumberOfMessages"] == 1
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == 1
    assert attributes["VisibilityTimeout"] == 30
    assert "ContentBasedDeduplication" not in attributes


def test_the_broker_writes_no_line_per_request(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import moto.server

    monkeypatch.setattr(moto.server, "MotoRequestHandler", moto.server.MotoRequestHandler)
    assert moto_main.silence_access_log()
    handler = moto.server.MotoRequestHandler.__new__(moto.server.MotoRequestHandler)
    handler.requestline, handler.command, handler.path = "GET / HTTP/1.1", "GET", "/"
    handler.request_version, handler.client_address = "HTTP/1.1", ("127.0.0.1", 1)
    with caplog.at_level("INFO", logger="werkzeug"):
        handler.log_request(200, 10)
        assert not caplog.records
        handler.log_error("boom %s", "x")  # errors still reach the log
    assert [r.getMessage() for r in caplog.records][-1].endswith("boom x")


def test_receipt_handles_look_like_motos_and_never_repeat() -> None:
    handles = {moto_main.receipt_handle() for _ in range(10_000)}
    assert len(handles) == 10_000
    assert all(len(h) == 185 and h.isascii() and h.islower() and h.isalpha() for h in handles)
    # every letter is drawn: the handles are not one letter repeated
    assert set("".join(handles)) == set(string.ascii_lowercase)


def test_what_moto_answers_from_memory_is_what_it_would_work_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import moto.backends as backends
    import moto.core.responses as responses
    from moto.sqs.responses import SQSResponse

    keep_patches_to_this_test(monkeypatch)
    modules = list(backends.list_of_moto_modules())
    methods = responses.method_names_from_class(SQSResponse)
    assert moto_main.patch_moto()
    assert list(backends.list_of_moto_modules()) == modules
    assert "sqs" in modules and "sns" in modules
    assert responses.method_names_from_class(SQSResponse) == methods
    assert responses.method_names_from_class(SQSResponse) is responses.method_names_from_class(
        SQSResponse
    )
