"""Feeding the store from the router's log files, in a thread of its own, in batches.

Every `period` seconds the ingester looks at STATE/logs: for each function, its sealed
files (oldest first) and then its live file, it hands the engine the complete lines
written since the last pass and records how far it got in the same transaction, so a
record is stored once even if the router is killed in between. A sealed file read to its
end is deleted. The live file's new lines are copied to a scratch file first (the engine
reads whole files); a sealed file is read where it lies.

Nothing here runs on the event loop: the invoke path only appends lines to files, which it
did before the store existed. `after` hooks (metric filters) see each batch's records.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from klambda.logs import lines
from klambda.logstore.store import FileKey, LogStore, lower_priority

log = logging.getLogger("klambda.logstore")

HEAD_BYTES = 256
SCRATCH = ".ingest.jsonl"

# (function, a file holding the batch's JSON lines) -> None
AfterBatch = Callable[[str, Path], None]


@dataclass(frozen=True, slots=True)
class LogFile:
    function: str
    sealed: int | None  # milliseconds of the seal, None for the live file
    path: Path


# the folders of the other router processes of `klambda up --processes N`, each writing
# its own files (appends from several processes to one file would interleave)
PROCESS_FOLDERS = "router-"


def log_files(directory: Path) -> list[LogFile]:
    """The log files of a folder (and of its router processes' folders), each function's
    sealed ones first, oldest first."""
    found: list[LogFile] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        parsed = lines.parse_name(name)
        if parsed is not None:
            found.append(LogFile(parsed[0], parsed[1], directory / name))
        elif name.startswith(PROCESS_FOLDERS) and (directory / name).is_dir():
            found.extend(log_files(directory / name))
    return sorted(found, key=lambda f: (f.function, f.sealed is None, f.sealed or 0, f.path))


class Ingester:
    def __init__(
        self,
        store: LogStore,
        directory: Path,
        *,
        period: float = 1.0,
        after: list[AfterBatch] | None = None,
        every: list[tuple[float, Callable[[], object]]] | None = None,
        nice: int = 0,
    ) -> None:
        self.store = store
        self.directory = directory
        self.period = period
        self.after = list(after or [])
        # other housekeeping run from the same thread: (interval seconds, job)
        self._every = [(interval, job, [-float("inf")]) for interval, job in every or []]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ingested = 0  # records, since the start
        self.nice = nice  # the thread's priority below the invoke path's

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after a last pass, so that what was written before the stop is stored."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        if self.nice:
            lower_priority(self.nice)
        while True:
            stopping = self._stop.is_set()
            try:
                self.ingest_once()
                self._housekeeping()
            except Exception:  # a bad pass must not end ingestion for good
                log.exception("log ingestion failed; trying again in %.1fs", self.period)
            if stopping:
                return
            self._stop.wait(self.period)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        for interval, job, last in self._every:
            if now - last[0] >= interval:
                last[0] = now
                job()

    def ingest_once(self) -> int:
        """One pass over every file; the number of records added."""
        added = 0
        for f in log_files(self.directory):
            added += self._ingest_file(f)
        self.ingested += added
        return added

    def _ingest_file(self, f: LogFile) -> int:
        try:
            st = f.path.stat()
            with open(f.path, "rb") as fh:
                head = fh.readline(HEAD_BYTES).decode("utf-8", "replace")
                key = FileKey(st.st_dev, st.st_ino, head)
                offset = self.store.offset(key)
                fh.seek(offset)
                data = fh.read(max(0, st.st_size - offset))
        except FileNotFoundError:  # sealed and removed meanwhile
            return 0
        end = data.rfind(b"\n") + 1  # whole lines only: the rest is still being written
        added = 0
        if end:
            if f.sealed is not None and offset == 0 and end == len(data):
                chunk = f.path  # a sealed file read in one go, where it lies
            else:
                chunk = self.directory / SCRATCH
                chunk.write_bytes(data[:end])
            added = self.store.ingest(f.function, chunk, key, f.path.name, offset + end)
            for hook in self.after:
                try:
                    hook(f.function, chunk)
                except Exception:
                    log.exception("a log hook failed on %s", f.path.name)
        if f.sealed is not None and offset + end >= st.st_size:
            f.path.unlink(missing_ok=True)
            self.store.forget(key)
        return added
