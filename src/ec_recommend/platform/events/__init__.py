"""Events over SNS/SQS: envelope codec, transactional outbox, consumer runtime.

Producers write events into an outbox table in the same transaction as the
state change (``outbox.record_event``); a relay publishes them to SNS. Each
subscriber's queue is consumed by ``consumer.ConsumerRuntime``, which applies
every event once per consumer (inbox table) and leaves failures for
redelivery, so the queue's redrive policy dead-letters poison messages.
"""

from ec_recommend.platform.events.envelope import (
    EVENT_TYPES,
    Event,
    EventError,
    MalformedEvent,
    UnknownEventType,
    decode,
    encode,
    new_encoded_event,
    new_event,
)

__all__ = [
    "EVENT_TYPES",
    "Event",
    "EventError",
    "MalformedEvent",
    "UnknownEventType",
    "decode",
    "encode",
    "new_encoded_event",
    "new_event",
]
