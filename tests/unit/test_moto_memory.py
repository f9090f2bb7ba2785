"""The local broker's bounded history: moto forgets what it delivered and sent."""

from __future__ import annotations

import pytest
from moto.ses import models as ses
from moto.sns import models as sns
from moto.sqs import models as sqs

from ec_recommend.runtime import moto_memory
from ec_recommend.runtime.moto_memory import RecentHandles

ACCOUNT = "123456789012"
REGION = "ap-northeast-1"


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto patched as the broker's child patches it, undone after the test."""
    monkeypatch.setattr(moto_memory, "KEEP", 3)
    monkeypatch.setattr(sqs.Message, "instances_tracked", [])
    for mail in (ses.Message, ses.RawMessage, ses.TemplateMessage, ses.BulkTemplateMessage):
        monkeypatch.setattr(mail, "instances_tracked", [])
    for cls in (ses.SESBackend, sns.Topic, sqs.Queue):
        monkeypatch.setattr(cls, "__init__", cls.__init__)
    moto_memory.bound_history()


@pytest.mark.usefixtures("bounded")
def test_delivered_messages_are_not_kept_once_the_queue_lets_them_go() -> None:
    backend = sqs.SQSBackend(REGION, ACCOUNT)
    backend.create_queue("orders")
    backend.send_message("orders", "an event")
    [message] = backend.receive_message("orders", 1, 0, 30)
    backend.delete_message("orders", message.receipt_handle)
    backend.delete_message("orders", message.receipt_handle)  # again: still harmless
    assert list(sqs.Message.instances_tracked) == []


@pytest.mark.usefixtures("bounded")
def test_topics_keep_only_their_latest_notifications() -> None:
    backend = sns.sns_backends[ACCOUNT][REGION]  # a topic publishes through the registry
    topic = backend.create_topic("order-events")
    try:
        for n in range(5):
            topic.publish(f"event {n}")
        assert [note[1] for note in topic.sent_notifications] == ["event 2", "event 3", "event 4"]
    finally:
        backend.delete_topic(topic.arn)


@pytest.mark.usefixtures("bounded")
def test_sent_mails_keep_only_the_latest() -> None:
    backend = ses.SESBackend(REGION, ACCOUNT)
    for n in range(5):
        backend.sent_messages.append(
            ses.Message(f"id-{n}", "from@example.com", "subject", "body", {})
        )
    assert [mail.id for mail in backend.sent_messages] == ["id-2", "id-3", "id-4"]
    assert [mail.id for mail in ses.Message.instances_tracked] == ["id-2", "id-3", "id-4"]
    backend.sent_messages.clear()
    assert list(backend.sent_messages) == []


def _bulk_send(backend: ses.SESBackend, *recipients: str) -> None:
    backend.send_bulk_templated_email(
        "shop@example.com",
        "passthrough",
        "{}",
        [
            {"Destination": {"ToAddresses": [to]}, "ReplacementTemplateData": "{}"}
            for to in recipients
        ],
    )


def _recipients(mails: object) -> list[list[str]]:
    return [
        [d["Destination"]["ToAddresses"][0] for d in mail.destinations]  # type: ignore[attr-defined]
        for mail in mails  # type: ignore[attr-defined]
    ]


@pytest.mark.usefixtures("bounded")
def test_a_bulk_send_counts_as_its_mails_not_as_one() -> None:
    backend = ses.SESBackend(REGION, ACCOUNT)
    backend.verify_email_identity("shop@example.com")
    backend.add_template(
        {"template_name": "passthrough", "subject_part": "s", "text_part": "t", "html_part": ""}
    )
    _bulk_send(backend, "a@example.com", "b@example.com")
    _bulk_send(backend, "c@example.com")
    assert _recipients(backend.sent_messages) == [
        ["a@example.com", "b@example.com"],
        ["c@example.com"],
    ]
    _bulk_send(backend, "d@example.com")  # four mails: the oldest send goes
    assert _recipients(backend.sent_messages) == [["c@example.com"], ["d@example.com"]]
    assert _recipients(ses.BulkTemplateMessage.instances_tracked) == [
        ["c@example.com"],
        ["d@example.com"],
    ]
    many = [f"{n}@example.com" for n in range(5)]
    _bulk_send(backend, *many)  # the newest send is held whole, whatever its size
    assert _recipients(backend.sent_messages) == [["c@example.com"], ["d@example.com"], many]
    _bulk_send(backend, "e@example.com")  # the five count now: only the newest is left
    assert _recipients(backend.sent_messages) == [["e@example.com"]]
    assert backend.sent_message_count == 10  # SES's own statistics count every mail


def test_recent_handles_forget_the_oldest_first() -> None:
    handles = RecentHandles(keep=2)
    handles.update(["a", "b", None])
    handles.add("c")
    assert "a" not in handles
    assert ("b" in handles, "c" in handles, len(handles)) == (True, True, 2)
    handles.add("b")  # seen again: now the newest
    handles.add("d")
    assert ("b" in handles, "c" in handles, "d" in handles) == (True, False, True)
    assert None not in handles and 42 not in handles
