"""Local mode's work queues in SQLite (see workqueue.py for the semantics).

One table; a message's row carries its visibility time, receive count and the token of its
current receipt, so a receipt whose timeout ran out (and whose message another poller now
holds) deletes nothing. Each operation is one transaction on one connection guarded by a
lock, run in a thread: the queue's throughput is far above what a batch of invocations
needs, so no write batching here (the async queue's sqlite.py has it).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from klambda.queue.workqueue import Redrive
from klambda.triggers.sqs import Message

SCHEMA = """
CREATE TABLE IF NOT EXISTS work_messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS work_messages_visible ON work_messages (queue, visible_at, id);
"""


class SqliteWorkQueues:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

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

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the work queues are not open")
        return self._db

    async def send(self, queue: str, body: str, attributes: Mapping[str, str]) -> str:
        message_id = str(uuid.uuid4())
        now = time.time()

        def run() -> None:
            with self._lock:
                self._conn().execute(
                    "INSERT INTO work_messages (queue, message_id, body, attributes, sent_at, "
                    "visible_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (queue, message_id, body, json.dumps(dict(attributes)), now, now),
                )

        await asyncio.to_thread(run)
        return message_id

    async def receive(
        self, queue: str, max_messages: int, visibility_timeout: float, redrive: Redrive | None
    ) -> Sequence[Message]:
        def run() -> list[Message]:
            now = time.time()
            out: list[Message] = []
            with self._lock:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    while len(out) < max_messages:
                        rows = db.execute(
                            "SELECT id, message_id, body, attributes, sent_at, receive_count, "
                            "first_received_at FROM work_messages WHERE queue = ? AND "
                            "visible_at <= ? ORDER BY id LIMIT ?",
                            (queue, now, max_messages - len(out)),
                        ).fetchall()
                        if not rows:
                            break
                        for rid, mid, body, attrs, sent, count, first in rows:
                            if redrive is not None and count >= redrive.max_receive_count:
                                # SQS: past maxReceiveCount the message moves to the DLQ
                                db.execute(
                                    "UPDATE work_messages SET queue = ?, receive_count = 0, "
                                    "first_received_at = NULL, receipt = NULL, visible_at = ? "
                                    "WHERE id = ?",
                                    (redrive.dead_letter_queue, now, rid),
                                )
                                continue
                            token = uuid.uuid4().hex
                            first = first or now
                            db.execute(
                                "UPDATE work_messages SET receive_count = receive_count + 1, "
                                "visible_at = ?, first_received_at = ?, receipt = ? WHERE id = ?",
                                (now + visibility_timeout, first, token, rid),
                            )
                            out.append(
                                Message(
                                    message_id=mid,
                                    receipt_handle=f"{rid}:{token}",
                                    body=body,
                                    attributes=json.loads(attrs),
                                    sent_at=sent,
                                    first_received_at=first,
                                    receive_count=count + 1,
                                )
                            )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            return out

        return await asyncio.to_thread(run)

    async def delete(self, queue: str, receipt_handles: Sequence[str]) -> int:
        pairs = []
        for handle in receipt_handles:
            rid, _, token = handle.partition(":")
            if rid.isdigit() and token:
                pairs.append((int(rid), token, queue))

        def run() -> int:
            with self._lock:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                n = 0
                for p in pairs:
                    n += db.execute(
                        "DELETE FROM work_messages WHERE id = ? AND receipt = ? AND queue = ?", p
                    ).rowcount
                db.execute("COMMIT")
                return n

        return await asyncio.to_thread(run)

    async def depth(self, queue: str) -> int:
        def run() -> int:
            with self._lock:
                row = (
                    self._conn()
                    .execute("SELECT COUNT(*) FROM work_messages WHERE queue = ?", (queue,))
                    .fetchone()
                )
            return int(row[0])

        return await asyncio.to_thread(run)

    async def peek(self, queue: str, limit: int = 100) -> Sequence[Message]:
        def run() -> list[Message]:
            with self._lock:
                rows = (
                    self._conn()
                    .execute(
                        "SELECT id, message_id, body, attributes, sent_at, receive_count, "
                        "first_received_at FROM work_messages WHERE queue = ? ORDER BY id LIMIT ?",
                        (queue, limit),
                    )
                    .fetchall()
                )
            return [
                Message(mid, "", body, json.loads(attrs), sent, first or 0.0, count)
                for _rid, mid, body, attrs, sent, count, first in rows
            ]

        return await asyncio.to_thread(run)
