"""The local broker's patch of moto: it still applies, and it still expires messages."""

from __future__ import annotations

import string
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import moto.sqs.models as sqs_models
import pytest
from moto.sqs.models import SQSBackend

from ec_recommend.runtime import moto_main


def keep_patches_to_this_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``patch_moto`` replaces, put back after the test."""
    import moto.backends as backends
    import moto.core.responses as responses
    from moto.core import serialize
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    for name in moto_main.PATCHED_NAMES:
        monkeypatch.setattr(sqs_models, name, getattr(sqs_models, name))
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)
    monkeypatch.setattr(
        DomainDispatcherApplication,
        "get_backend_for_host",
        DomainDispatcherApplication.get_backend_for_host,
    )
    enrich = vars(responses.BaseResponse)["_enrich_response"]
    for picker in (serialize.AttributePicker, serialize.XFormedAttributePicker):
        monkeypatch.setattr(picker, "get_possible_keys", vars(picker)["get_possible_keys"])
    monkeypatch.setattr(responses.BaseResponse, "_enrich_response", enrich)


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
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.responses import SQSResponse

    keep_patches_to_this_test(monkeypatch)
    modules = list(backends.list_of_moto_modules())
    methods = responses.method_names_from_class(SQSResponse)
    hosts = ("sqs.ap-northeast-1.amazonaws.com", "sns.us-east-1.amazonaws.com", "moto_api")
    dispatcher = DomainDispatcherApplication(lambda service: None)  # type: ignore[arg-type,return-value]
    serving = [dispatcher.get_backend_for_host(host) for host in hosts]
    assert moto_main.patch_moto()
    assert list(backends.list_of_moto_modules()) == modules
    assert "sqs" in modules and "sns" in modules
    assert responses.method_names_from_class(SQSResponse) == methods
    assert responses.method_names_from_class(SQSResponse) is responses.method_names_from_class(
        SQSResponse
    )
    assert serving == ["sqs", "sns", "moto_api"]
    assert [dispatcher.get_backend_for_host(host) for host in hosts] == serving
    dispatcher.backend_url_patterns = []  # a walk made again would find nothing
    assert [dispatcher.get_backend_for_host(host) for host in hosts] == serving


def test_a_received_message_is_filtered_on_its_copy_and_the_queue_keeps_it_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keep_patches_to_this_test(monkeypatch)
    assert moto_main.patch_moto()
    backend = SQSBackend("us-east-1", "123456789012")
    backend.create_queue("q")
    attributes = {
        name: {"data_type": "String", "string_value": name} for name in ("type", "traceparent")
    }
    backend.send_message("q", "body", message_attributes=attributes)
    (first,) = backend.receive_message("q", 10, 0, visibility_timeout=0)
    (again,) = backend.receive_message("q", 10, 0, 30, message_attribute_names=["type"])
    assert first.message_attributes == {}  # asked for none
    assert again.message_attributes == {"type": attributes["type"]}
    (kept,) = backend.queues["q"]._messages
    assert kept.message_attributes == attributes
    assert kept.approximate_receive_count == again.approximate_receive_count == 2
    assert again is not kept and again.receipt_handle == kept.receipt_handle


def test_what_sqs_copies_besides_a_message_is_still_copied_deeply() -> None:
    groups = {"group": {"a"}}
    copied = moto_main.copy_for_receive(groups)
    assert copied == groups and copied["group"] is not groups["group"]


def test_the_brokers_flask_apps_are_out_of_debug_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.server

    monkeypatch.setattr(moto.server, "create_backend_app", moto.server.create_backend_app)
    assert moto.server.create_backend_app("sqs").debug  # moto's own choice
    assert moto_main.serve_without_flask_debug()
    assert not moto.server.create_backend_app("sqs").debug


def test_the_request_id_still_reaches_every_answer_and_only_xml_is_scanned_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import re

    import moto.core.responses as responses
    from moto.core.responses import BaseResponse

    keep_patches_to_this_test(monkeypatch)
    assert moto_main.patch_moto()
    scanned: list[str] = []

    def sub(pattern: str, replacement: str, text: str) -> str:
        if text:
            scanned.append(text)
        return re.sub(pattern, replacement, text)

    monkeypatch.setattr(responses, "re", SimpleNamespace(sub=sub))
    json_body = '{"Messages": [{"Body": "an envelope"}]}'
    headers, body = BaseResponse._enrich_response({"status": 200}, json_body)  # type: ignore[arg-type]
    assert body == json_body and len(headers["x-amzn-requestid"]) == 52
    assert headers["status"] == "200"
    xml = "<R><ResponseMetadata><RequestId>old</RequestId></ResponseMetadata></R>"
    headers, body = BaseResponse._enrich_response({}, xml)
    assert body == xml.replace("old", headers["x-amzn-requestid"])
    assert scanned == [xml]


def serialized(results: list[tuple[str, str, Any]]) -> list[str]:
    """What moto's serializer makes of each (service, operation, result), twice,
    the same way moto's responses call it."""
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    answers = []
    for service, operation, result in results:
        model = get_service_model(service).operation_model(operation)
        serializer_class = get_serializer_class(service, model.service_model.protocol)
        for _ in range(2):  # the second time from what the first remembered
            serializer = serializer_class(
                operation_model=model, value_picker=XFormedAttributePicker()
            )
            answers.append(str(serializer.serialize(result)["body"]))
    return answers


def test_remembered_field_names_serialize_answers_as_moto_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.sns.models import sns_backends

    keep_patches_to_this_test(monkeypatch)
    sns = sns_backends["123456789012"]["us-east-1"]  # moto's, in memory: a subscribe finds it
    topic = sns.create_topic("orders")
    sns.subscribe(topic.arn, "https://example.com/hook", "https")
    received = {
        "Messages": [
            {
                "MessageId": str(n),
                "ReceiptHandle": f"handle-{n}",
                "MD5OfBody": "0" * 32,
                "Body": f"envelope {n}",
                "MessageAttributes": {"type": {"DataType": "String", "StringValue": "order.paid"}},
                "Attributes": {"SentTimestamp": "1"},
            }
            for n in range(3)
        ]
    }
    # model objects (SNS, XML) and dicts (SQS, JSON). A subscription has a
    # TopicArn of its own, a topic's is its arn: the same key, other names.
    results = [
        ("sns", "ListSubscriptions", {"Subscriptions": sns.list_subscriptions()[0]}),
        ("sns", "ListTopics", {"Topics": [topic], "NextToken": None}),
        ("sqs", "ReceiveMessage", received),
    ]
    try:
        as_shipped = serialized(results)
        assert moto_main.patch_moto()
        assert serialized(results) == as_shipped
    finally:
        sns.delete_topic(topic.arn)
    topic_arn = "<TopicArn>arn:aws:sns:us-east-1:123456789012:orders</TopicArn>"
    assert topic_arn in as_shipped[0] and topic_arn in as_shipped[2]
    assert "handle-2" in as_shipped[-1] and "order.paid" in as_shipped[-1]


def test_remembered_answers_are_bounded_and_still_right_after_forgetting() -> None:
    worked_out: list[int] = []

    def square(_: object, n: int) -> int | None:
        worked_out.append(n)
        return None if n == 0 else n * n  # None is an answer too

    remembered = moto_main._remembering(square, lambda _, n: n, kept=2)
    assert [remembered(None, n) for n in (0, 3, 0, 3)] == [None, 9, None, 9]
    assert worked_out == [0, 3]
    assert remembered(None, 4) == 16  # a third: the first two are forgotten
    assert remembered(None, 3) == 9
    assert worked_out == [0, 3, 4, 3]
