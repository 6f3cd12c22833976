"""The `Queue` interface that both backends (SQLite, NATS JetStream) implement.

A queue holds three kinds of things:

- events waiting to be invoked. `receive` leases some for a visibility timeout: a leased
  event is invisible to other receivers until the holder acknowledges it (`ack`), writes it
  back for a later retry (`retry`), moves it to the DLQ (`dead_letter`) or releases it. If
  the holder dies, the lease runs out and the event is delivered again: nothing is removed
  before it is done or dead-lettered (at-least-once).
- dead letters, per function: failed events with their error, listed and redriven by
  `klambda dlq list|redrive`.
- named queues: destinations (`onSuccess`, `onFailure`, `deadLetter` of kind `queue`)
  whose messages are kept and listed.

`enqueue` returns only once the event is durable. It does not check the payload limit:
the dispatcher's `submit` does, for events that come from clients.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from klambda.errors import InvalidParameterValue
from klambda.queue import records
from klambda.queue.event import AsyncEvent, from_header, header, pack, unpack

QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
# Function names become NATS subject tokens and SQLite keys; the API's own pattern is
# stricter, this one only keeps out what would break the backends.
FUNCTION_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


def check_queue_name(name: str) -> str:
    if not re.match(QUEUE_NAME_PATTERN, name):
        raise InvalidParameterValue(f"queue name {name!r} must be 1-80 letters, digits, '-' or '_'")
    return name


_FUNCTION_TOKEN = re.compile(FUNCTION_TOKEN_PATTERN)


def check_function_name(name: str) -> str:
    if not _FUNCTION_TOKEN.match(name):
        raise InvalidParameterValue(f"function name {name!r} is not a valid function name")
    return name


@dataclass(frozen=True)
class DeadLetter:
    """A failed event in the DLQ, with why it failed."""

    event: AsyncEvent
    condition: str
    """`RetriesExhausted` or `EventAgeExceeded`."""
    dead_at: float
    function_arn: str

    @property
    def request_id(self) -> str:
        return self.event.request_id

    @property
    def function(self) -> str:
        return self.event.function

    @property
    def attempts(self) -> int:
        return self.event.attempts

    @property
    def error_type(self) -> str | None:
        return self.event.last_error_type

    @property
    def error(self) -> str | None:
        return self.event.last_error

    def record(self) -> dict[str, Any]:
        """Lambda's destination record for this failure."""
        return records.destination_record(
            self.event, self.condition, self.dead_at, self.function_arn
        )

    def summary(self) -> dict[str, Any]:
        """What `klambda dlq list` shows."""
        return {
            "requestId": self.request_id,
            "function": self.function,
            "qualifier": self.event.qualifier,
            "condition": self.condition,
            "errorType": self.error_type,
            "errorMessage": self.error,
            "attempts": self.attempts,
            "throttles": self.event.throttles,
            "receivedAt": self.event.received_at,
            "deadAt": self.dead_at,
            "redrives": self.event.redrives,
        }


def encode_dead_letter(dead: DeadLetter) -> bytes:
    head = {
        "event": header(dead.event),
        "condition": dead.condition,
        "deadAt": dead.dead_at,
        "functionArn": dead.function_arn,
    }
    return pack(head, dead.event.payload)


def decode_dead_letter(data: bytes) -> DeadLetter:
    head, payload = unpack(data)
    return DeadLetter(
        from_header(head["event"], payload),
        head["condition"],
        float(head["deadAt"]),
        head["functionArn"],
    )


@dataclass(frozen=True)
class QueueMessage:
    """A message in a named queue (a destination)."""

    id: int
    queue: str
    body: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    sent_at: float = 0.0


class Delivery(Protocol):
    """A leased event. Exactly one of ack, retry, dead_letter or release ends the lease."""

    @property
    def event(self) -> AsyncEvent: ...

    async def ack(self) -> None:
        """The event is done: remove it."""

    async def retry(self, event: AsyncEvent) -> None:
        """Write `event` (the new counts, `not_before` set) back in place of this one."""

    async def dead_letter(self, dead: DeadLetter) -> None:
        """Move the event to the DLQ and remove it from the queue."""

    async def extend(self) -> None:
        """Still working on it: restart the visibility timeout."""

    async def release(self) -> None:
        """Give the event back for immediate redelivery (shutting down)."""


class Queue(Protocol):
    visibility_timeout: float

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, event: AsyncEvent) -> None:
        """Store `event`; durable when this returns."""

    async def receive(self, max_events: int, wait: float) -> Sequence[Delivery]:
        """Lease up to `max_events` events that are due, waiting up to `wait` seconds for
        the first. Returns an empty sequence when none came."""

    async def depth(self) -> int:
        """Events in the queue, waiting or leased."""

    async def dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead letters, of one function or of all."""

    async def dlq_depths(self) -> dict[str, int]:
        """Dead letters per function (functions with none are left out)."""

    async def redrive(self, function: str | None = None, request_id: str | None = None) -> int:
        """Send dead letters back to the queue (all of a function, one request id, or
        everything), with their attempt counts and age reset and the same request ids.
        Returns how many."""

    async def send(self, queue: str, body: bytes, attributes: Mapping[str, str]) -> None:
        """Append a message to the named queue `queue`; durable when this returns."""

    async def messages(self, queue: str, limit: int = 100) -> list[QueueMessage]:
        """The oldest `limit` messages of the named queue `queue`."""


def redriven(event: AsyncEvent, now: float) -> AsyncEvent:
    """A dead letter sent through again: same request id, a fresh age and retry budget."""
    return AsyncEvent(
        request_id=event.request_id,
        function=event.function,
        payload=event.payload,
        qualifier=event.qualifier,
        received_at=now,
        redrives=event.redrives + 1,
    )
