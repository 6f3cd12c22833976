"""The DuckDB database behind `klambda logs`: ingest a file's new records, read them back,
expire and archive them.

One database file per router (STATE/logs.duckdb). DuckDB allows one writer process and
connections from many threads: the ingester writes through a connection of its own, each
query reads through a fresh cursor, and DuckDB's MVCC keeps a query's view consistent while
records arrive. Every method here blocks: callers on an event loop run them in a thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from klambda.logstore import schema

UTC = dt.UTC
# DuckDB's buffer pool grows with the database up to its memory limit (its own default is
# 80% of the machine's): a router ingesting for hours would hold hundreds of MB of blocks.
# Past the limit DuckDB evicts blocks and spills a large query's work to `<db>.tmp`.
MEMORY_MB = 128
THREADS = 2


@dataclass(frozen=True, slots=True)
class FileKey:
    """A log file as the store remembers it: its inode, and its first line in case the
    inode is reused by a later file."""

    device: int
    inode: int
    head: str


@dataclass(frozen=True, slots=True)
class Record:
    time: dt.datetime
    function: str
    stream: str
    request_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Archived:
    function: str
    records: int
    path: Path


class LogStore:
    def __init__(
        self,
        path: Path,
        *,
        threads: int = THREADS,
        memory_mb: int = MEMORY_MB,
        read_only: bool = False,
        nice: int = 0,
    ) -> None:
        if memory_mb < 1 or threads < 1:
            raise ValueError(f"log store: memory {memory_mb} MB, {threads} threads: at least 1")
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            "threads": threads,
            "memory_limit": f"{memory_mb}MiB",
        }
        opened: list[duckdb.DuckDBPyConnection | BaseException] = []

        def connect() -> None:
            # DuckDB's worker threads are started here and inherit this thread's priority:
            # with `nice`, the store's work yields to the invoke path on a busy machine
            try:
                if nice:
                    lower_priority(nice)
                opened.append(duckdb.connect(str(path), read_only=read_only, config=config))
            except BaseException as err:
                opened.append(err)

        opener = threading.Thread(target=connect, name="log-store-open")
        opener.start()
        opener.join()
        if isinstance(opened[0], BaseException):
            raise opened[0]
        self._con = opened[0]
        self._cursors = threading.Lock()  # creating cursors is serialised; using them is not
        self._write = threading.Lock()  # one ingest or expiry at a time
        if not read_only:
            for ddl in schema.DDL:
                self._con.execute(ddl)
        self._writer = self.cursor()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._cursors:
            return self._con.cursor()

    def close(self) -> None:
        with self._write:
            self._writer.close()
            self._con.close()

    # -- ingest -------------------------------------------------------------------------

    def offset(self, key: FileKey) -> int:
        """How far a file has been ingested (0 for a file never seen)."""
        with self._write:
            row = self._writer.execute(
                'SELECT head, "offset" FROM ingested WHERE device = ? AND inode = ?',
                [key.device, key.inode],
            ).fetchone()
        if row is None or row[0] != key.head:
            return 0
        return int(row[1])

    def ingest(self, function: str, chunk: Path, key: FileKey, file: str, offset: int) -> int:
        """Add the records of `chunk` (whole JSON lines) and remember that `file` is read up
        to `offset`, in one transaction; the number of records added."""
        with self._write:
            cur = self._writer
            cur.execute("BEGIN TRANSACTION")
            try:
                before = self._count(cur)
                cur.execute(schema.INGEST, {"path": str(chunk), "function": function})
                added = self._count(cur) - before
                cur.execute(
                    "INSERT OR REPLACE INTO ingested VALUES (?, ?, ?, ?, ?)",
                    [key.device, key.inode, key.head, file, offset],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return added

    @staticmethod
    def _count(cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def forget(self, key: FileKey) -> None:
        """A sealed file was read to its end and removed."""
        with self._write:
            self._writer.execute(
                "DELETE FROM ingested WHERE device = ? AND inode = ?", [key.device, key.inode]
            )

    # -- reading ------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Run one read-only statement on a fresh cursor: (column names, rows)."""
        cur = self.cursor()
        try:
            rel = cur.execute(sql, params)
            columns = [d[0] for d in rel.description or []]
            return columns, rel.fetchall()
        finally:
            cur.close()

    def records(
        self,
        functions: Sequence[str],
        start: dt.datetime,
        end: dt.datetime,
        limit: int | None = None,
        containing: Sequence[str] = (),
    ) -> list[Record]:
        """Records of `functions` (all when empty) in [start, end) whose message contains
        every one of `containing`, oldest first; with a limit, the last `limit` of them."""
        where, params = time_range(functions, start, end)
        for text in containing:
            where += " AND contains(message, ?)"
            params.append(text)
        sql = f"SELECT ts, function, stream, request_id, message FROM events WHERE {where}"
        if limit:
            sql = f"SELECT * FROM ({sql} ORDER BY ts DESC LIMIT {int(limit)}) ORDER BY ts"
        else:
            sql += " ORDER BY ts"
        _, rows = self.execute(sql, params)
        return [Record(*row) for row in rows]

    def count(self) -> int:
        _, rows = self.execute("SELECT count(*) FROM events")
        return int(rows[0][0])

    # -- retention ----------------------------------------------------------------------

    def expire(self, function: str, cutoff: dt.datetime, archive: Path) -> Archived | None:
        """Move `function`'s records older than `cutoff` into a gzipped JSON Lines file in
        `archive/<function>/` (CloudWatch's export fields: timestamp in milliseconds,
        logStream, message), then delete them. The file is complete before any record is
        deleted; a run cut short leaves the records in place to be archived again."""
        with self._write:
            cur = self._writer
            row = cur.execute(
                "SELECT count(*), min(ts), max(ts) FROM events WHERE function = ? AND ts < ?",
                [function, cutoff],
            ).fetchone()
            if row is None or not row[0]:
                return None
            count, first, last = int(row[0]), row[1], row[2]
            folder = archive / function
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{function}-{stamp(first)}-{stamp(last)}.jsonl.gz"
            partial = folder / f".{name}.partial"
            cur.execute(
                f"""COPY (
                    SELECT epoch_ms(ts) AS timestamp, stream AS logStream,
                           request_id AS requestId, message
                    FROM events WHERE function = ? AND ts < ? ORDER BY ts
                ) TO '{sql_path(partial)}' (FORMAT json, COMPRESSION gzip)""",
                [function, cutoff],
            )
            os.replace(partial, folder / name)
            cur.execute("DELETE FROM events WHERE function = ? AND ts < ?", [function, cutoff])
            return Archived(function, count, folder / name)

    def functions(self) -> list[str]:
        _, rows = self.execute("SELECT DISTINCT function FROM events ORDER BY 1")
        return [r[0] for r in rows]

    def checkpoint(self) -> None:
        with self._write, contextlib.suppress(duckdb.Error):
            self._writer.execute("CHECKPOINT")


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value (Linux schedules threads one by one)."""
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))


def time_range(
    functions: Sequence[str], start: dt.datetime, end: dt.datetime
) -> tuple[str, list[Any]]:
    """The WHERE clause selecting `functions` (all when empty) in [start, end)."""
    params: list[Any] = [naive_utc(start), naive_utc(end)]
    where = "ts >= ? AND ts < ?"
    if functions:
        where += f" AND function IN ({', '.join('?' for _ in functions)})"
        params += list(functions)
    return where, params


def naive_utc(t: dt.datetime) -> dt.datetime:
    """The store's timestamps are UTC without a zone."""
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S%fZ")


def sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
