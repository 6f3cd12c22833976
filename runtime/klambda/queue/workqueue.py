"""Work queues (SQS's role): messages that producers send and event source mappings drain.

Not the async invocation queue (`Queue` in backend.py, which holds invocations): a work
queue holds the user's messages, each with SQS's life: `receive` makes it invisible for the
queue's visibility timeout and counts the receive; `delete` (by the receipt handle of that
receive) removes it; a message not deleted comes back when the timeout runs out; one
received `maxReceiveCount` times and still not deleted moves to the queue's dead-letter
queue instead of being received again (SQS's redrive policy).

`WorkQueues` is the interface; `SqliteWorkQueues` (workqueue_sqlite.py) is local mode's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from klambda.triggers.sqs import Message


@dataclass(frozen=True)
class Redrive:
    dead_letter_queue: str
    max_receive_count: int


class WorkQueues(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, queue: str, body: str, attributes: Mapping[str, str]) -> str:
        """Append a message; durable when this returns. Returns its message id."""

    async def receive(
        self, queue: str, max_messages: int, visibility_timeout: float, redrive: Redrive | None
    ) -> Sequence[Message]:
        """Up to `max_messages` visible messages, each now invisible for the timeout."""

    async def delete(self, queue: str, receipt_handles: Sequence[str]) -> int:
        """Remove the messages these receipts (still current) name; returns how many."""

    async def depth(self, queue: str) -> int:
        """Messages in the queue, visible or in flight."""

    async def peek(self, queue: str, limit: int = 100) -> Sequence[Message]:
        """The oldest `limit` messages, without receiving them."""
