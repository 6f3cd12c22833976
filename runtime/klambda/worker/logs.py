"""Log streams: where an environment's START/END/REPORT and handler lines go.

Each environment writes one stream (Lambda's `log_stream_name`) in its function's group.
The hub keeps the recent records of each function in memory for `klambda logs`, hands
them to followers as they come, appends them to a file per function when given a folder
(JSON Lines, klambda.logs.lines; sealed and a new one started past `rotate_bytes`, for
the log store to ingest off the invoke path), hands them to a shipper to the cluster's log
engine when given one, and echoes them to the console in local mode.

A function's files cannot fill the disk: they hold at most `max_bytes` together
(KLAMBDA_LOG_MAX_MB, default 256 MB). The live file is sealed past a quarter of that (or
`rotate_bytes`, the lesser) even in the middle of an invocation, and sealed files not yet
ingested beyond the cap are removed, oldest first, with a warning: a function printing
faster than the store ingests loses its oldest lines, not the disk.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from klambda.logs import lines

# how long a log line may wait in a buffer before it reaches its file or the console
FLUSH_S = 0.2
# a function's live file is sealed past this size (checked when it is flushed)
ROTATE_BYTES = 64 * 1024 * 1024
# a function's files (live and sealed, not yet ingested) at most
MAX_BYTES = 4 * ROTATE_BYTES

log = logging.getLogger("klambda.logs")


@dataclass(frozen=True, slots=True)
class LogRecord:
    time: float
    function: str
    stream: str
    text: str
    request_id: str = ""


class LogHub:
    def __init__(
        self,
        directory: Path | None = None,
        echo: TextIO | None = None,
        keep: int = 10_000,
        rotate_bytes: int = ROTATE_BYTES,
        ship: Callable[[LogRecord], None] | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._dir = directory
        self._ship = ship  # a cluster worker's shipper to the log engine (worker/logship.py)
        self._echo = echo
        self._keep = keep
        self._max_bytes = max_bytes
        self._rotate_bytes = max(1, min(rotate_bytes, max_bytes // 4))
        self._sizes: dict[str, int] = {}  # bytes written to each function's live file
        self._recent: dict[str, collections.deque[LogRecord]] = {}
        self._followers: dict[str, set[asyncio.Queue[LogRecord]]] = {}
        self._files: dict[str, IO[str]] = {}
        self._flusher: asyncio.TimerHandle | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def write(self, function: str, stream: str, text: str, request_id: str = "") -> LogRecord:
        rec = LogRecord(time.time(), function, stream, text, request_id)
        recent = self._recent.get(function)
        if recent is None:
            recent = self._recent[function] = collections.deque(maxlen=self._keep)
        recent.append(rec)
        for q in self._followers.get(function, ()):
            q.put_nowait(rec)
        if self._ship is not None:
            self._ship(rec)
        if self._dir is not None:
            f = self._files.get(function)
            if f is None:
                f = self._files[function] = open(  # noqa: SIM115 - kept open, closed in close()
                    self._dir / lines.live_name(function), "a", encoding="utf-8"
                )
                self._sizes[function] = f.tell()
            line = lines.encode(rec.time, stream, request_id, text)
            f.write(line)
            self._sizes[function] += len(line) if line.isascii() else len(line.encode())
            if self._sizes[function] >= self._rotate_bytes:  # however long the invocation
                self._seal(function, f)
        if self._echo is not None:
            self._echo.write(f"[{function}] {text}\n")
        return rec

    def dirty(self) -> None:
        """Lines were written: flush them soon (within FLUSH_S), not one syscall per line."""
        if self._flusher is None:
            try:
                self._flusher = asyncio.get_running_loop().call_later(FLUSH_S, self._flush_now)
            except RuntimeError:  # no event loop: flush at once
                self.flush()

    def _flush_now(self) -> None:
        self._flusher = None
        self.flush()

    def flush(self, function: str | None = None) -> None:
        """Flush one function's log file (after each invocation), or all of them."""
        names = list(self._files) if function is None else [function]
        for name in names:
            f = self._files.get(name)
            if f is None:
                continue
            f.flush()
            if f.tell() >= self._rotate_bytes:
                self._seal(name, f)
        if self._echo is not None:
            self._echo.flush()

    def _seal(self, function: str, f: IO[str]) -> None:
        """Rename the live file for the store to finish; the next record starts a new one."""
        assert self._dir is not None
        f.close()
        del self._files[function]
        millis = int(time.time() * 1000)
        while (self._dir / lines.sealed_name(function, millis)).exists():
            millis += 1  # never over an earlier sealed file not yet ingested
        os.rename(
            self._dir / lines.live_name(function), self._dir / lines.sealed_name(function, millis)
        )
        self._sizes.pop(function, None)
        self._trim(function)

    def _trim(self, function: str) -> None:
        """Remove the oldest sealed files of `function` beyond its cap."""
        assert self._dir is not None
        sealed = []
        for path in self._dir.glob(f"{function}.*{lines.LIVE_SUFFIX}"):
            millis = path.name[len(function) + 1 : -len(lines.LIVE_SUFFIX)]
            if millis.isdigit():
                try:
                    sealed.append((int(millis), path, path.stat().st_size))
                except FileNotFoundError:  # ingested meanwhile
                    continue
        total = sum(size for _m, _p, size in sealed)
        dropped = 0
        for _millis, path, size in sorted(sealed):
            if total <= self._max_bytes - self._rotate_bytes:  # room for the live file
                break
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            total -= size
            dropped += size
        if dropped:
            log.warning(
                "%s: %d bytes of its oldest log lines removed, over its cap of %d bytes",
                function,
                dropped,
                self._max_bytes,
            )

    def recent(self, function: str, limit: int | None = None) -> list[LogRecord]:
        records = list(self._recent.get(function, ()))
        return records[-limit:] if limit else records

    def follow(self, function: str) -> asyncio.Queue[LogRecord]:
        q: asyncio.Queue[LogRecord] = asyncio.Queue(maxsize=100_000)
        self._followers.setdefault(function, set()).add(q)
        return q

    def unfollow(self, function: str, q: asyncio.Queue[LogRecord]) -> None:
        self._followers.get(function, set()).discard(q)

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        for f in self._files.values():
            f.close()
        self._files.clear()


def console() -> TextIO:
    return sys.stdout
