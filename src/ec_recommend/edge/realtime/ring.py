"""A bounded, short-lived record of what one topic pushed, for resume and dedupe."""

from __future__ import annotations

from collections import deque


class ReplayRing:
    """The last ``size`` frames of a topic, each kept at most ``window`` seconds.

    ``since(event_id)`` gives what followed ``event_id``; None when it is no
    longer (or never was) here, so the client knows it missed something and
    must reload. The ids double as the topic's duplicate filter: SQS delivers
    at least once, a client must see an event once.
    """

    def __init__(self, size: int, window: float) -> None:
        self.size = size
        self.window = window
        self._entries: deque[tuple[float, str, bytes]] = deque()
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def append(self, now: float, event_id: str, frame: bytes) -> None:
        self.expire(now)
        if len(self._entries) >= self.size:
            self._ids.discard(self._entries.popleft()[1])
        self._entries.append((now, event_id, frame))
        self._ids.add(event_id)

    def expire(self, now: float) -> None:
        entries = self._entries
        while entries and entries[0][0] < now - self.window:
            self._ids.discard(entries.popleft()[1])

    def since(self, event_id: str, now: float) -> list[bytes] | None:
        self.expire(now)
        if event_id not in self._ids:
            return None
        frames: list[bytes] = []
        for _, entry_id, frame in reversed(self._entries):
            if entry_id == event_id:
                break
            frames.append(frame)
        frames.reverse()
        return frames

    @property
    def newest(self) -> float | None:
        return self._entries[-1][0] if self._entries else None
