"""Stream stores (Kinesis's role): records appended to shards, read in order from a
position, and the positions (checkpoints) of the mappings that read them.

A record's sequence number grows within its shard; a mapping's checkpoint is the sequence
of the last record it is done with (0: none yet), kept in the store so that a restarted
router, or another replica, goes on from there. `StreamStore` is the interface;
`SqliteStreamStore` (local mode) and `JetStreamStreamStore` (a JetStream stream per
Stream, checkpoints in a key-value bucket) implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from klambda.triggers.kinesis import StreamRecord


class StreamStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def declare(self, stream: str, shards: int, retention_hours: int) -> None:
        """Make the stream ready to take records (idempotent)."""

    async def put(self, stream: str, shards: int, partition_key: str, data: bytes) -> StreamRecord:
        """Append a record to its partition key's shard; durable when this returns."""

    async def read(self, stream: str, shard: int, after: int, limit: int) -> Sequence[StreamRecord]:
        """Up to `limit` records of the shard with sequence > `after`, in order."""

    async def last_sequence(self, stream: str, shard: int) -> int:
        """The newest record's sequence in the shard (0 when empty): LATEST's position."""

    async def sequence_before(self, stream: str, shard: int, timestamp: float) -> int:
        """The position just before the first record that arrived at or after `timestamp`."""

    async def checkpoint(self, mapping: str, shard: int) -> int | None:
        """A mapping's position in a shard, None before its first checkpoint."""

    async def set_checkpoint(self, mapping: str, shard: int, sequence: int) -> None: ...
