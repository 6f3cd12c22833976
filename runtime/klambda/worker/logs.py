"""Log streams: where an environment's START/END/REPORT and handler lines go.

Each environment writes one stream (Lambda's `log_stream_name`) in its function's group.
The hub keeps the recent records of each function in memory for `klambda logs`, hands
them to followers as they come, appends them to a file per function when given a folder,
and echoes them to the console in local mode.

A function's file cannot fill the disk: past a quarter of `max_bytes` it is rotated
(`f.log` -> `f.log.1` -> ... -> `f.log.3`, the oldest removed), so a function's files never
hold much more than `max_bytes` (KLAMBDA_LOG_MAX_MB, default 64 MB) however much it prints.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

# how long a log line may wait in a buffer before it reaches its file or the console
FLUSH_S = 0.2
# a function's log files at most (its live file and ROTATED older ones), in bytes
MAX_BYTES = 64 * 1024 * 1024
ROTATED = 3


@dataclass(frozen=True, slots=True)
class LogRecord:
    time: float
    function: str
    stream: str
    text: str


class LogHub:
    def __init__(
        self,
        directory: Path | None = None,
        echo: TextIO | None = None,
        keep: int = 10_000,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._dir = directory
        self._echo = echo
        self._keep = keep
        self._rotate_at = max(1, max_bytes // (ROTATED + 1))
        self._sizes: dict[str, int] = {}  # bytes in each function's live file
        self._recent: dict[str, collections.deque[LogRecord]] = {}
        self._followers: dict[str, set[asyncio.Queue[LogRecord]]] = {}
        self._files: dict[str, IO[str]] = {}
        self._flusher: asyncio.TimerHandle | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def write(self, function: str, stream: str, text: str) -> LogRecord:
        rec = LogRecord(time.time(), function, stream, text)
        recent = self._recent.get(function)
        if recent is None:
            recent = self._recent[function] = collections.deque(maxlen=self._keep)
        recent.append(rec)
        for q in self._followers.get(function, ()):
            q.put_nowait(rec)
        if self._dir is not None:
            f = self._files.get(function)
            if f is None:
                f = self._files[function] = open(  # noqa: SIM115 - kept open, closed in close()
                    self._dir / f"{function}.log", "a", encoding="utf-8"
                )
                self._sizes[function] = f.tell()
            line = f"{stream}\t{text}\n"
            f.write(line)
            size = self._sizes[function] = self._sizes[function] + len(line.encode())
            if size >= self._rotate_at:
                self._rotate(function, f)
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
        files = (
            self._files.values()
            if function is None
            else ([self._files[function]] if function in self._files else [])
        )
        for f in files:
            f.flush()
        if self._echo is not None:
            self._echo.flush()

    def _rotate(self, function: str, f: IO[str]) -> None:
        """f.log -> f.log.1 -> ... -> f.log.ROTATED; the oldest is removed."""
        assert self._dir is not None
        f.close()
        del self._files[function]
        live = self._dir / f"{function}.log"
        for i in range(ROTATED - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{live}.{i}", f"{live}.{i + 1}")
        os.replace(live, f"{live}.1")

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
