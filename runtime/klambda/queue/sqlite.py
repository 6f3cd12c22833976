"""The SQLite queue: embedded and durable, for local mode (`klambda up`).

Durability. The database is in WAL mode with `synchronous=FULL` by default: a commit
returns after the WAL is fsynced, so an event acknowledged to a client (202) survives a
kill -9 of the process and a power cut. `synchronous=NORMAL` skips that fsync; it still
survives a kill -9 (the WAL write has reached the OS), not a power cut. An fsync costs about
0.2 ms on the machines we measure on, which would cap one-commit-per-event at ~4,700
events/s, so commits are grouped: every operation (enqueue, lease, ack, retry, dead letter)
goes to one writer thread, and all the operations that arrived while the previous commit
was running (at least all those of one event-loop tick) share the next transaction, and
the batch's new events go in one INSERT. Under load the batch grows and the fsync is paid
once per batch.

Visibility. Each event row has `visible_at`: a new event is visible at once (or at its
`not_before`), a leased one at `now + visibility_timeout`, a retried one at its backoff
time. `receive` leases rows with `visible_at <= now` in one UPDATE ... RETURNING and bumps a
`receipt` counter; `ack`, `retry`, `dead_letter` and `extend` only act when the receipt is
still theirs, so a holder whose lease ran out cannot remove an event another holder now
owns. A process killed while holding leases leaves rows that become visible again when
their lease runs out: they are delivered again, never lost. Moving an event to the DLQ
(delete + insert) and redriving it back are single transactions.

Several processes may share the file (WAL). Each batch's transaction is taken under an
exclusive `flock` of `queue.db.lock`: a writer of another process then waits in the kernel
and starts the moment the commit before it ends, where SQLite's own busy handler would
sleep and retry (1, 2, 5, 10 … ms: a 202's p99 in tens of milliseconds with two processes
writing); `busy_timeout` still covers a writer that does not take the lock.

A process that receives listens on a FIFO beside the database (`queue.db.wake`); a process
that enqueues but does not receive writes a byte to it after its commit (at most one per
loop iteration), so the receiver leases another process's events at once. Without a
listener (or if a byte is lost: the FIFO full) the receiver still sees them within
`poll_interval`. A FIFO rather than a socket or a library: it is one file beside the
database, needs no address, and a missing listener costs one failed `open`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from klambda.queue.backend import (
    DeadLetter,
    QueueMessage,
    check_function_name,
    check_queue_name,
    decode_dead_letter,
    encode_dead_letter,
    redriven,
)
from klambda.queue.event import AsyncEvent, decode, encode

log = logging.getLogger("klambda.queue")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Row = tuple[str, str, float, bytes]  # a new event: request_id, function, visible_at, body
INSERT = "INSERT INTO events (request_id, function, visible_at, body) VALUES "
INSERT_ROWS = 200  # new events per INSERT statement: 800 parameters, far under SQLite's limit

SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    function TEXT NOT NULL,
    visible_at REAL NOT NULL,
    receipt INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_visible ON events (visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    function TEXT NOT NULL,
    dead_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_function ON dead_letters (function, id);
CREATE INDEX IF NOT EXISTS dead_letters_request ON dead_letters (request_id);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    sent_at REAL NOT NULL,
    attributes TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (queue, id);
"""


class SqliteQueue:
    def __init__(
        self,
        path: str | Path,
        *,
        visibility_timeout: float = 30.0,
        synchronous: str = "FULL",
        poll_interval: float = 1.0,
        busy_timeout: float = 5.0,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = Path(path)
        self.visibility_timeout = visibility_timeout
        self.synchronous = synchronous.upper()
        self.poll_interval = poll_interval
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Op | Row, bool, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._arrived = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._busy = False
        self._idle = asyncio.Event()
        self.wake_path = self.path.with_name(self.path.name + ".wake")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock: int | None = None  # flock'd around each transaction, see _apply
        self._listening: int | None = None  # the FIFO's fd, once this process receives
        self._bell: int | None = None  # the FIFO's fd to ring another process's receiver
        self._ringing = False
        self._wakeable = False  # the FIFO is there (open)
        self.commits = 0
        """Transactions committed (each holds one batch of operations)."""

    async def __aenter__(self) -> SqliteQueue:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the writer: one thread, one connection, one transaction per batch --------------

    async def open(self) -> None:
        if self._flusher is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="klambda-sqlite")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._connect)
        self._wakeable = self._wake_fifo()
        self._flusher = asyncio.create_task(self._flush_loop(), name="klambda-sqlite-writer")

    def _connect(self) -> None:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout,
            cached_statements=INSERT_ROWS + 64,  # an INSERT per batch size, and the rest
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.executescript(SCHEMA)
        self._conn = conn
        self._lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    async def close(self) -> None:
        if self._flusher is None:
            return
        if self._ringing:  # an enqueue of a moment ago still wakes the receiver
            self._ring()
        while self._pending or self._busy:
            self._idle.clear()
            await self._idle.wait()
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        self._flusher = None
        if self._listening is not None:
            asyncio.get_running_loop().remove_reader(self._listening)
            os.close(self._listening)
            self._listening = None
        if self._bell is not None:
            os.close(self._bell)
            self._bell = None
        executor = self._executor
        assert executor is not None
        conn = self._conn
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        self._conn = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        executor.shutdown(wait=True)
        self._executor = None

    async def _run(self, op: Callable[[sqlite3.Connection], T], atomic: bool = False) -> T:
        """Run `op` in the next batch's transaction; `atomic` wraps it in a savepoint (for
        operations of several statements that must all happen or none)."""
        if self._flusher is None:
            raise RuntimeError("the SQLite queue is not open")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, atomic, fut))
        self._wake.set()
        return cast(T, await fut)

    async def _insert(self, row: Row) -> None:
        """Insert a new event in the next batch's transaction, in one statement with the
        batch's other new events."""
        if self._flusher is None:
            raise RuntimeError("the SQLite queue is not open")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((row, False, fut))
        self._wake.set()
        await fut

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            self._busy = True
            try:
                results = await loop.run_in_executor(
                    self._executor, self._apply, [(op, atomic) for op, atomic, _ in batch]
                )
            except Exception as err:  # the thread itself failed: fail every caller
                results = [(False, err)] * len(batch)
            finally:
                self._busy = False
                if not self._pending:
                    self._idle.set()
            for (_, _, fut), (ok, value) in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    def _apply(self, ops: list[tuple[Op | Row, bool]]) -> list[tuple[bool, Any]]:
        assert self._lock is not None
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            return self._transaction(ops)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _transaction(self, ops: list[tuple[Op | Row, bool]]) -> list[tuple[bool, Any]]:
        """One transaction for the batch. Consecutive new events go in one INSERT: each
        statement lets the GIL go and takes it back, and while this process holds the
        queue's lock every wait for the GIL holds up the other processes' writers too."""
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            return [(False, err)] * len(ops)
        out: list[tuple[bool, Any]] = []
        rows: list[Row] = []

        def insert() -> None:
            for start in range(0, len(rows), INSERT_ROWS):
                chunk = rows[start : start + INSERT_ROWS]
                try:
                    conn.execute(
                        INSERT + ", ".join(["(?, ?, ?, ?)"] * len(chunk)),
                        [value for row in chunk for value in row],
                    )
                    out.extend([(True, None)] * len(chunk))
                except sqlite3.Error as err:
                    out.extend([(False, err)] * len(chunk))
            rows.clear()

        for op, atomic in ops:
            if isinstance(op, tuple):
                rows.append(op)
                continue
            insert()
            try:
                if atomic:
                    conn.execute("SAVEPOINT op")
                    try:
                        value = op(conn)
                    except BaseException:
                        conn.execute("ROLLBACK TO op")
                        raise
                    finally:
                        conn.execute("RELEASE op")
                else:
                    value = op(conn)
                out.append((True, value))
            except Exception as err:
                out.append((False, err))
        insert()
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, err)] * len(ops)
        self.commits += 1
        return out

    # -- events --------------------------------------------------------------------------

    async def enqueue(self, event: AsyncEvent) -> None:
        check_function_name(event.function)
        body = encode(event)
        visible = max(time.time(), event.not_before)
        await self._insert((event.request_id, event.function, visible, body))
        self._arrived.set()
        if self._listening is None and not self._ringing:
            self._ringing = True
            asyncio.get_running_loop().call_soon(self._ring)

    # -- waking a receiver in another process ---------------------------------------------

    def _wake_fifo(self) -> bool:
        """The FIFO beside the database, made if missing; without one (a file system that
        has none, a file in its place) another process's events wait for the poll."""
        try:
            with contextlib.suppress(FileExistsError):
                os.mkfifo(self.wake_path, 0o600)
            if stat.S_ISFIFO(os.stat(self.wake_path).st_mode):
                return True
            log.warning("SQLite queue: %s is not a FIFO: no wake-ups", self.wake_path)
        except OSError as err:
            log.warning("SQLite queue: no wake-up FIFO at %s: %s", self.wake_path, err)
        return False

    def _listen(self) -> None:
        """Wake this process's receiver when another process rings. Opened read-write: a
        FIFO read end with no writer left would report hang-up on every poll."""
        fd = os.open(self.wake_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._listening = fd

        def rung() -> None:
            with contextlib.suppress(BlockingIOError):
                while os.read(fd, 4096):
                    pass
            self._arrived.set()

        asyncio.get_running_loop().add_reader(fd, rung)

    def _ring(self) -> None:
        self._ringing = False
        if self._listening is not None or self._flusher is None or not self._wakeable:
            return
        try:
            if self._bell is None:
                self._bell = os.open(self.wake_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.write(self._bell, b"!")
        except OSError as err:
            # ENXIO: no process listens (yet); EAGAIN: the FIFO is full of unread bytes,
            # it will wake anyway; EPIPE: the listener went away, open again next time
            if err.errno == errno.EPIPE and self._bell is not None:
                os.close(self._bell)
                self._bell = None
            elif err.errno not in (errno.ENXIO, errno.EAGAIN):
                log.warning("could not wake the queue's receiver: %s", err)

    async def receive(self, max_events: int, wait: float) -> list[SqliteDelivery]:
        deadline = time.monotonic() + wait
        vis = self.visibility_timeout
        if self._listening is None and self._flusher is not None and self._wakeable:
            self._listen()

        def lease(conn: sqlite3.Connection) -> tuple[list[Any], float | None]:
            now = time.time()
            rows = conn.execute(
                "UPDATE events SET visible_at = ?, receipt = receipt + 1 WHERE id IN "
                "(SELECT id FROM events WHERE visible_at <= ? ORDER BY visible_at LIMIT ?) "
                "RETURNING id, receipt, body",
                (now + vis, now, max_events),
            ).fetchall()
            if rows:
                return rows, None
            nxt = conn.execute("SELECT min(visible_at) FROM events").fetchone()[0]
            return rows, nxt

        while True:
            self._arrived.clear()
            rows, next_visible = await self._run(lease)
            if rows:
                rows.sort(key=lambda r: r[0])
                return [SqliteDelivery(self, r[0], r[1], decode(r[2])) for r in rows]
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            nap = min(left, self.poll_interval)
            if next_visible is not None:
                nap = min(nap, max(0.0, next_visible - time.time()) + 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), nap)

    async def depth(self) -> int:
        return int(
            await self._run(lambda c: c.execute("SELECT count(*) FROM events").fetchone()[0])
        )

    # -- one leased event ----------------------------------------------------------------

    async def _ack(self, rowid: int, receipt: int) -> None:
        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM events WHERE id = ? AND receipt = ?", (rowid, receipt))
            return cur.rowcount

        if not await self._run(op):
            log.warning("event row %d: lease lost before ack (it was delivered again)", rowid)

    async def _retry(self, rowid: int, receipt: int, event: AsyncEvent) -> None:
        body = encode(event)
        visible = max(time.time(), event.not_before)

        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE events SET body = ?, visible_at = ? WHERE id = ? AND receipt = ?",
                (body, visible, rowid, receipt),
            )
            return cur.rowcount

        if not await self._run(op):
            log.warning("event row %d: lease lost before retry", rowid)
        self._arrived.set()

    async def _dead_letter(self, rowid: int, receipt: int, dead: DeadLetter) -> None:
        body = encode_dead_letter(dead)

        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM events WHERE id = ? AND receipt = ?", (rowid, receipt))
            if cur.rowcount:
                conn.execute(
                    "INSERT INTO dead_letters (request_id, function, dead_at, body) "
                    "VALUES (?, ?, ?, ?)",
                    (dead.request_id, dead.function, dead.dead_at, body),
                )
            return cur.rowcount

        if not await self._run(op, atomic=True):
            log.warning("event row %d: lease lost before dead-lettering", rowid)

    async def _set_visible(self, rowid: int, receipt: int, at: float) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE events SET visible_at = ? WHERE id = ? AND receipt = ?",
                (at, rowid, receipt),
            )
        )

    # -- dead letters --------------------------------------------------------------------

    async def dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        def op(conn: sqlite3.Connection) -> list[Any]:
            if function is None:
                return conn.execute(
                    "SELECT body FROM dead_letters ORDER BY id LIMIT ?", (limit,)
                ).fetchall()
            return conn.execute(
                "SELECT body FROM dead_letters WHERE function = ? ORDER BY id LIMIT ?",
                (function, limit),
            ).fetchall()

        return [decode_dead_letter(r[0]) for r in await self._run(op)]

    async def dlq_depths(self) -> dict[str, int]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT function, count(*) FROM dead_letters GROUP BY function"
            ).fetchall()
        )
        return {str(fn): int(n) for fn, n in rows}

    async def redrive(self, function: str | None = None, request_id: str | None = None) -> int:
        where, args = [], []
        if function is not None:
            where.append("function = ?")
            args.append(function)
        if request_id is not None:
            where.append("request_id = ?")
            args.append(request_id)
        cond = (" WHERE " + " AND ".join(where)) if where else ""

        def op(conn: sqlite3.Connection) -> int:
            now = time.time()
            rows = conn.execute(f"SELECT id, body FROM dead_letters{cond}", args).fetchall()
            for rowid, body in rows:
                event = redriven(decode_dead_letter(body).event, now)
                conn.execute(
                    "INSERT INTO events (request_id, function, visible_at, body) "
                    "VALUES (?, ?, ?, ?)",
                    (event.request_id, event.function, now, encode(event)),
                )
                conn.execute("DELETE FROM dead_letters WHERE id = ?", (rowid,))
            return len(rows)

        n = await self._run(op, atomic=True)
        if n:
            self._arrived.set()
        return n

    # -- named queues (destinations) ------------------------------------------------------

    async def send(self, queue: str, body: bytes, attributes: Mapping[str, str]) -> None:
        check_queue_name(queue)
        attrs = json.dumps(dict(attributes))
        await self._run(
            lambda c: c.execute(
                "INSERT INTO messages (queue, sent_at, attributes, body) VALUES (?, ?, ?, ?)",
                (queue, time.time(), attrs, body),
            )
        )

    async def messages(self, queue: str, limit: int = 100) -> list[QueueMessage]:
        check_queue_name(queue)
        rows = await self._run(
            lambda c: c.execute(
                "SELECT id, sent_at, attributes, body FROM messages WHERE queue = ? "
                "ORDER BY id LIMIT ?",
                (queue, limit),
            ).fetchall()
        )
        return [QueueMessage(r[0], queue, r[3], json.loads(r[2]), r[1]) for r in rows]


class SqliteDelivery:
    def __init__(self, queue: SqliteQueue, rowid: int, receipt: int, event: AsyncEvent) -> None:
        self._queue = queue
        self._rowid = rowid
        self._receipt = receipt
        self._event = event

    @property
    def event(self) -> AsyncEvent:
        return self._event

    async def ack(self) -> None:
        await self._queue._ack(self._rowid, self._receipt)

    async def retry(self, event: AsyncEvent) -> None:
        await self._queue._retry(self._rowid, self._receipt, event)

    async def dead_letter(self, dead: DeadLetter) -> None:
        await self._queue._dead_letter(self._rowid, self._receipt, dead)

    async def extend(self) -> None:
        await self._queue._set_visible(
            self._rowid, self._receipt, time.time() + self._queue.visibility_timeout
        )

    async def release(self) -> None:
        await self._queue._set_visible(self._rowid, self._receipt, time.time())
        self._queue._arrived.set()
