"""Bounded history in moto's server (the local broker), so a long ``up`` does not grow.

moto keeps every model instance it ever made for its dashboard
(``/moto-api/data.json``): every SQS message delivered to every queue, body
and attributes, stays in memory long after it was deleted. It also keeps
every notification published to a topic, every SES mail sent and the
receipt handles of every deleted message. A 60 s checkout through ``up``
grew the broker by ~50 MB, most of it delivered messages.

Here SQS messages are not tracked (each queue still holds its live ones);
SES keeps its most recent ``KEEP`` mails (tests read them from data.json),
topics their last ``KEEP`` notifications, and each queue the handles of its
last ``KEEP_HANDLES`` deleted messages: a repeated delete of a recent receipt
stays harmless, one older than that is refused as AWS refuses a stale handle.

Mails are counted as mails, not as calls: a bulk send keeps each of its up
to fifty destinations with its rendered subject and body. Kept by the call,
a thousand of the consumers' bulk sends (~14 mails each) held ~25 MB more
than a thousand mails do, so the broker's size after a minute of checkout
followed how many orders the machine's speed let that minute hold.
``/moto-api/reset`` would undo the untracking; nothing of ours calls it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

KEEP = 1000
KEEP_HANDLES = 10_000


class _Untracked(list[Any]):
    """An instance registry that registers nothing."""

    def append(self, item: Any) -> None:
        pass


class RecentMails:
    """SES's sent mails: the newest send, and before it the most recent
    sends that come to fewer than ``keep`` mails (what moto asks of
    ``sent_messages`` and of a mail class's ``instances_tracked``:
    ``append``, iteration, ``clear``).

    A bulk send counts its destinations. A mail class registers an instance
    before its ``__init__`` sets them, so a send is counted once the next
    one arrives; until then it is the newest, kept whole.
    """

    def __init__(self, keep: int, mails: Iterable[Any] = ()) -> None:
        self._keep = keep
        self._counted = 0  # the mails of every send but the newest
        self._mails: deque[Any] = deque()
        for mail in mails:
            self.append(mail)

    def append(self, mail: Any) -> None:
        if self._mails:
            self._counted += _mail_count(self._mails[-1])  # initialised by now
        self._mails.append(mail)
        while self._counted >= self._keep and len(self._mails) > 1:
            self._counted -= _mail_count(self._mails.popleft())

    def clear(self) -> None:
        self._mails.clear()
        self._counted = 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mails)

    def __len__(self) -> int:
        return len(self._mails)


def _mail_count(mail: Any) -> int:
    """The mails one sent message stands for: a bulk send's destinations,
    each a dict (a single send's ``Destination`` is one dict, a raw mail's
    recipients are addresses: one mail)."""
    destinations = getattr(mail, "destinations", None)
    if isinstance(destinations, list) and destinations and isinstance(destinations[0], dict):
        return len(destinations)
    return 1


class RecentHandles:
    """The receipt handles of recently deleted messages, the oldest forgotten first
    (what moto's queue asks of its ``deleted_messages`` set: ``in`` and ``update``).

    A handle is kept as its hash, not its 185 characters: ~0.1 KB a handle
    instead of ~0.3, ~2 MB less per busy queue. Two handles with one hash
    would only make a stale handle's delete harmless, as a recent one's is.
    """

    def __init__(self, keep: int = KEEP_HANDLES) -> None:
        self._keep = keep
        self._hashes: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, handle: object) -> bool:
        return isinstance(handle, str) and hash(handle) in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, handle: str) -> None:
        key = hash(handle)
        self._hashes[key] = None
        self._hashes.move_to_end(key)
        if len(self._hashes) > self._keep:
            self._hashes.popitem(last=False)

    def update(self, handles: Iterable[str | None]) -> None:
        for handle in handles:
            if handle is not None:
                self.add(handle)


def _after_init(cls: type[Any], fix: Callable[[Any], None]) -> None:
    original = cls.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fix(self)

    cls.__init__ = init


def bound_history() -> None:
    """Patch moto's classes before its server makes any instance."""
    from moto.ses import models as ses
    from moto.sns import models as sns
    from moto.sqs import models as sqs

    sqs.Message.instances_tracked = _Untracked()  # type: ignore[attr-defined]
    for mail in (ses.Message, ses.RawMessage, ses.TemplateMessage, ses.BulkTemplateMessage):
        mail.instances_tracked = RecentMails(KEEP)  # type: ignore[union-attr]
    _after_init(ses.SESBackend, _bound_sent_mails)
    _after_init(sns.Topic, _bound_notifications)
    _after_init(sqs.Queue, _bound_deleted_handles)


def _bound_sent_mails(backend: Any) -> None:
    backend.sent_messages = RecentMails(KEEP, backend.sent_messages)


def _bound_notifications(topic: Any) -> None:
    topic.sent_notifications = deque(topic.sent_notifications, maxlen=KEEP)


def _bound_deleted_handles(queue: Any) -> None:
    handles = RecentHandles()
    handles.update(queue.deleted_messages)
    queue.deleted_messages = handles
