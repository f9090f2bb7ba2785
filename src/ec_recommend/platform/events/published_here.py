"""Events this process's outbox relays published, heard in the same process.

A gateway hosted with the services that produce what it pushes (``ec-recommend
up`` hosts every service in its own process) hears those events here instead
of through a queue of its own on the broker: a receive and a delete per ten
events, and decoding what this very process encoded, were about 1 ms of
``up``'s CPU per order and a tenth of the broker's calls.

A gateway hosted with only some of them (``ec-recommend serve gateway order
...``) still needs its queue, for what other processes publish, but not for
what it hears here: these relays then put ``origin`` (``ORIGIN``) on what
they publish, and that queue's subscriptions leave this origin out.

A listener hears a batch once SNS accepted it, so it hears what the topics'
subscribers will, with the same promises: at least once (rows a relay
publishes again, after a crash before marking them sent or a replay to a
restarted broker, are heard again) and in no order across batches. A
listener runs on the relay's task and must not block; one that raises is
logged and never stops the relay.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

log = logging.getLogger(__name__)

# (event type, message body) of each published event of one batch
Published = Sequence[tuple[str, str]]
Listener = Callable[[Published], None]
ORIGIN = "origin"  # the message attribute naming the process whose relay published


class PublishedHere:
    """Listeners to what this process's relays publish.

    ``complete``: these relays are the only ones publishing what a gateway
    pushes (``up``), so a gateway here needs no queue. Otherwise they mark
    what they publish with ``origin``, unique to this process.
    """

    def __init__(self, *, complete: bool = True) -> None:
        self.origin: str | None = None if complete else uuid.uuid4().hex
        self._listeners: list[Listener] = []

    @property
    def complete(self) -> bool:
        return self.origin is None

    @contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        """``listener`` hears every batch published while the block runs."""
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def published(self, events: Published) -> None:
        """A relay's batch that SNS accepted."""
        for listener in tuple(self._listeners):
            try:
                listener(events)
            except Exception:
                log.exception("a listener to published events failed")
