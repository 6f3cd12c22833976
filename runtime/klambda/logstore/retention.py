"""Retention: a function's records older than its `logRetentionInDays` are archived, then
deleted, as CloudWatch expires a log group's events (and as its users export them to S3
first): a gzipped JSON Lines file per run in ARCHIVE/<function>/, named by the first and
last record's times, with CloudWatch's export fields (timestamp, logStream, requestId,
message). A function without retention keeps its records; one no longer deployed keeps
them too, as a log group outlives its function.

Runs on the ingester's thread: at start, then every `KLAMBDA_LOG_RETENTION_CHECK_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from klambda.logstore.store import Archived, LogStore

log = logging.getLogger("klambda.logstore")

UTC = dt.UTC


def cutoff(now: dt.datetime, days: int) -> dt.datetime:
    """Records before this are expired (CloudWatch counts whole days back from now)."""
    return now - dt.timedelta(days=days)


class Retention:
    def __init__(
        self,
        store: LogStore,
        archive: Path,
        retention_of: Callable[[str], int | None],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
    ) -> None:
        self.store = store
        self.archive = archive
        self.retention_of = retention_of
        self.clock = clock

    def run(self) -> list[Archived]:
        done = []
        now = self.clock()
        for function in self.store.functions():
            days = self.retention_of(function)
            if days is None:
                continue
            archived = self.store.expire(function, cutoff(now, days), self.archive)
            if archived is not None:
                log.info(
                    "%s: %d log records older than %d days archived to %s",
                    function,
                    archived.records,
                    days,
                    archived.path,
                )
                done.append(archived)
        if done:
            self.store.checkpoint()
        return done
