"""The SNS/SQS topology (``settings/topology.yaml``): loading and validation.

Topics say which event types they carry and which subscribers listen; each
subscriber has one queue (with a DLQ, visibility timeout and redrive
threshold) subscribed to its topics with a filter policy on ``type``.
Resource names get ``EventsConfig.name_prefix`` in front when provisioned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ec_recommend.platform.events.envelope import EVENT_TYPES

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_VISIBILITY_TIMEOUT = 43200  # 12 hours, the SQS limit


class TopologyError(ValueError):
    """A topology that cannot be provisioned; the message names the entry."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    events: tuple[str, ...]
    subscribers: tuple[str, ...]


@dataclass(frozen=True)
class QueueSpec:
    name: str
    dlq: str
    visibility_timeout: int
    max_receive_count: int
    subscriber: str
    events: tuple[str, ...]
    direct: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """One SNS subscription: ``topic`` delivers ``events`` to ``queue``."""

    topic: str
    queue: str
    events: tuple[str, ...]

    @property
    def filter_policy(self) -> dict[str, list[str]]:
        return {"type": sorted(self.events)}


@dataclass(frozen=True)
class Topology:
    topics: tuple[TopicSpec, ...]
    queues: tuple[QueueSpec, ...]

    def topic_for(self, event_type: str) -> TopicSpec | None:
        return next((t for t in self.topics if event_type in t.events), None)

    def direct_queues(self, event_type: str) -> tuple[str, ...]:
        """The queues that receive ``event_type`` straight from its producer."""
        return tuple(q.name for q in self.queues if event_type in q.direct)

    def queue(self, name: str) -> QueueSpec:
        """The queue named ``name`` (or whose DLQ is named ``name``)."""
        for queue in self.queues:
            if name in (queue.name, queue.dlq):
                return queue
        known = ", ".join(q.name for q in self.queues)
        raise TopologyError(f"unknown queue {name!r}; known: {known}")

    def routes(self) -> list[Route]:
        routes = []
        for queue in self.queues:
            for topic in self.topics:
                if queue.subscriber not in topic.subscribers:
                    continue
                events = tuple(e for e in queue.events if e in topic.events)
                if events:
                    routes.append(Route(topic.name, queue.name, events))
        return routes

    def with_queue_settings(
        self, *, visibility_timeout: int | None = None, max_receive_count: int | None = None
    ) -> Topology:
        """The same topology with every queue's timing replaced (tests, benches)."""
        queues = tuple(
            replace(
                q,
                visibility_timeout=q.visibility_timeout
                if visibility_timeout is None
                else visibility_timeout,
                max_receive_count=q.max_receive_count
                if max_receive_count is None
                else max_receive_count,
            )
            for q in self.queues
        )
        return replace(self, queues=queues)


def load_topology(path: Path | None = None) -> Topology:
    """Read and validate ``path``, or the packaged ``settings/topology.yaml``."""
    try:
        if path is None:
            text = (
                resources.files("ec_recommend")
                .joinpath("settings/topology.yaml")
                .read_text(encoding="utf-8")
            )
        else:
            text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"{path or 'settings/topology.yaml'}: {exc}") from exc
    if not isinstance(raw, dict):
        raise TopologyError("topology: expected a mapping with topics and queues")
    return parse_topology(raw)


def parse_topology(raw: Mapping[str, Any]) -> Topology:
    topics = tuple(_topic(item, i) for i, item in enumerate(_list(raw, "topics", "topology")))
    queues = tuple(_queue(item, i) for i, item in enumerate(_list(raw, "queues", "topology")))
    topology = Topology(topics, queues)
    _check(topology)
    return topology


def _check(topology: Topology) -> None:
    names = [t.name for t in topology.topics] + [
        n for q in topology.queues for n in (q.name, q.dlq)
    ]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TopologyError(f"duplicate names: {', '.join(duplicates)}")
    carried: dict[str, str] = {}
    for topic in topology.topics:
        for event in topic.events:
            if event in carried:
                raise TopologyError(f"{event} is carried by both {carried[event]} and {topic.name}")
            carried[event] = topic.name
    subscribers = {q.subscriber: q.name for q in topology.queues}
    for topic in topology.topics:
        for subscriber in topic.subscribers:
            if subscriber not in subscribers:
                raise TopologyError(f"topics.{topic.name}: {subscriber} has no queue")
    for queue in topology.queues:
        if list(subscribers.values()).count(queue.name) != 1 or (
            subscribers[queue.subscriber] != queue.name
        ):
            raise TopologyError(f"queues.{queue.name}: {queue.subscriber} has several queues")
        listened = {
            e for t in topology.topics if queue.subscriber in t.subscribers for e in t.events
        }
        for event in queue.events:
            if event not in listened:
                raise TopologyError(
                    f"queues.{queue.name}: {event} is on no topic {queue.subscriber} listens to"
                )


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise TopologyError(f"{where}.{key}: expected a non-empty list")
    return value


def _name(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not _NAME.match(value):
        raise TopologyError(f"{where}.{key}: expected a name of [A-Za-z0-9_-], got {value!r}")
    return value


def _events(
    raw: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> tuple[str, ...]:
    value = raw.get(key, [] if not required else None)
    if not isinstance(value, list) or (required and not value):
        raise TopologyError(f"{where}.{key}: expected a list of event types")
    unknown = [e for e in value if e not in EVENT_TYPES]
    if unknown:
        raise TopologyError(f"{where}.{key}: unknown event types {unknown}")
    return tuple(value)


def _int(raw: Mapping[str, Any], key: str, where: str, low: int, high: int, default: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise TopologyError(f"{where}.{key}: expected an integer in [{low}, {high}], got {value!r}")
    return value


def _topic(raw: object, index: int) -> TopicSpec:
    if not isinstance(raw, dict):
        raise TopologyError(f"topics[{index}]: expected a mapping")
    name = _name(raw, "name", f"topics[{index}]")
    where = f"topics.{name}"
    subscribers = raw.get("subscribers")
    if not isinstance(subscribers, list) or not all(
        isinstance(s, str) and _NAME.match(s) for s in subscribers
    ):
        raise TopologyError(f"{where}.subscribers: expected a list of names")
    return TopicSpec(name, _events(raw, "events", where), tuple(subscribers))


def _queue(raw: object, index: int) -> QueueSpec:
    if not isinstance(raw, dict):
        raise TopologyError(f"queues[{index}]: expected a mapping")
    name = _name(raw, "name", f"queues[{index}]")
    where = f"queues.{name}"
    return QueueSpec(
        name=name,
        dlq=_name(raw, "dlq", where),
        visibility_timeout=_int(raw, "visibility_timeout", where, 0, MAX_VISIBILITY_TIMEOUT, 30),
        max_receive_count=_int(raw, "max_receive_count", where, 1, 1000, 5),
        subscriber=_name(raw, "subscriber", where),
        events=_events(raw, "events", where),
        direct=_events(raw, "direct", where, required=False),
    )
