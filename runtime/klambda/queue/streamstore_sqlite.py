"""Local mode's stream store in SQLite (see streamstore.py): one table of records, one of
checkpoints; records older than their stream's retention are removed as records arrive."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from klambda.triggers.kinesis import StreamRecord, shard_of

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    shard INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    arrived_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS stream_records_shard ON stream_records (stream, shard, seq);
CREATE TABLE IF NOT EXISTS stream_checkpoints (
    mapping TEXT NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (mapping, shard)
);
"""


class SqliteStreamStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._retention: dict[str, float] = {}

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
            return db

        self._db = await asyncio.to_thread(connect)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            if self._db is None:
                raise RuntimeError("the stream store is not open")
            with self._lock:
                return fn(self._db)

        return await asyncio.to_thread(run)

    async def declare(self, stream: str, shards: int, retention_hours: int) -> None:
        self._retention[stream] = retention_hours * 3600.0

    async def put(self, stream: str, shards: int, partition_key: str, data: bytes) -> StreamRecord:
        shard = shard_of(partition_key, shards)
        now = time.time()
        keep = self._retention.get(stream)

        def run(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO stream_records (stream, shard, partition_key, data, arrived_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (stream, shard, partition_key, data, now),
            )
            if keep is not None:
                db.execute(
                    "DELETE FROM stream_records WHERE stream = ? AND arrived_at < ?",
                    (stream, now - keep),
                )
            return int(cur.lastrowid or 0)

        seq = await self._run(run)
        return StreamRecord(shard, seq, partition_key, data, now)

    async def read(self, stream: str, shard: int, after: int, limit: int) -> Sequence[StreamRecord]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT seq, partition_key, data, arrived_at FROM stream_records WHERE "
                "stream = ? AND shard = ? AND seq > ? ORDER BY seq LIMIT ?",
                (stream, shard, after, limit),
            ).fetchall()
        )
        return [StreamRecord(shard, seq, key, bytes(data), at) for seq, key, data, at in rows]

    async def last_sequence(self, stream: str, shard: int) -> int:
        row = await self._run(
            lambda db: db.execute(
                "SELECT MAX(seq) FROM stream_records WHERE stream = ? AND shard = ?",
                (stream, shard),
            ).fetchone()
        )
        return int(row[0] or 0)

    async def sequence_before(self, stream: str, shard: int, timestamp: float) -> int:
        row = await self._run(
            lambda db: db.execute(
                "SELECT MAX(seq) FROM stream_records WHERE stream = ? AND shard = ? AND "
                "arrived_at < ?",
                (stream, shard, timestamp),
            ).fetchone()
        )
        return int(row[0] or 0)

    async def checkpoint(self, mapping: str, shard: int) -> int | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT seq FROM stream_checkpoints WHERE mapping = ? AND shard = ?",
                (mapping, shard),
            ).fetchone()
        )
        return None if row is None else int(row[0])

    async def set_checkpoint(self, mapping: str, shard: int, sequence: int) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO stream_checkpoints (mapping, shard, seq) VALUES (?, ?, ?) "
                "ON CONFLICT (mapping, shard) DO UPDATE SET seq = excluded.seq",
                (mapping, shard, sequence),
            )
        )
