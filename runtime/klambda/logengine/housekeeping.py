"""Metric filters and retention over the cluster's log engine, run by the router.

Metric filters: every `period` seconds the router reads, for each function that has
filters, the messages the engine received in the window since its last read (up to `lag`
seconds ago, so that records still in a pod's batch are not passed over) and counts them
with the local mode's `MetricFilters`: the same counters, the same values. Records that
reach the engine later than `lag` (an engine away for longer) are not counted. Each router
replica counts every record: alert on `max without (instance, pod)` when there are several.

Retention: a function's `logRetentionInDays` is per function, the engine's
`-retentionPeriod` for all of them (the chart's logs.engine.retentionPeriod, the longest
any function may keep). So every `KLAMBDA_LOG_RETENTION_CHECK_SECONDS` the records of a
function older than its retention are exported, oldest first, to a gzipped JSON Lines file
with CloudWatch's export fields (as in local mode: ARCHIVE/<function>/<function>-<first>-
<last>.jsonl.gz), and only once the file is complete deleted from the engine with a delete
task (VictoriaLogs' `/delete/run_task`, which needs its `-delete.enable` flag).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from klambda.logengine.client import LogEngine, LogEngineError
from klambda.logengine.logsql import quote, timestamp
from klambda.logstore.metricfilters import MetricFilters
from klambda.logstore.retention import cutoff

log = logging.getLogger("klambda.logengine")

UTC = dt.UTC
Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


class EngineMetricFilters:
    def __init__(
        self,
        engine: LogEngine,
        filters: MetricFilters,
        functions: Callable[[], Iterable[str]],
        *,
        period: float = 10.0,
        lag: float = 5.0,
        clock: Clock = _now,
    ) -> None:
        self.engine = engine
        self.filters = filters
        self.functions = functions
        self.period = period
        self.lag = dt.timedelta(seconds=lag)
        self.clock = clock
        self._since: dict[str, dt.datetime] = {}
        self._started = clock()

    async def once(self) -> int:
        """Count the new records of every function with filters; how many were read."""
        end = self.clock() - self.lag
        read = 0
        for function in self.functions():
            if not any(True for _ in self.filters.filters_of(function)):
                continue
            self.filters.declare(function)
            start = self._since.get(function, self._started - self.lag)
            if end <= start:
                continue
            messages = await self.engine.window_messages(function, start, end)
            self.filters.messages(function, messages)
            self._since[function] = end
            read += len(messages)
        return read

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except LogEngineError as err:
                log.warning("metric filters: the log engine did not answer: %s", err)
            except Exception:  # one bad pass must not end the counting for good
                log.exception("metric filters over the log engine failed")
            await asyncio.sleep(self.period)


@dataclass(frozen=True)
class EngineArchived:
    function: str
    records: int
    path: Path


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S") + f"{t.microsecond // 1000:03d}Z"


class EngineRetention:
    def __init__(
        self,
        engine: LogEngine,
        archive: Path,
        functions: Callable[[], Iterable[str]],
        retention_of: Callable[[str], int | None],
        clock: Clock = _now,
    ) -> None:
        self.engine = engine
        self.archive = archive
        self.functions = functions
        self.retention_of = retention_of
        self.clock = clock

    async def run(self) -> list[EngineArchived]:
        done = []
        now = self.clock()
        for function in self.functions():
            days = self.retention_of(function)
            if days is None:
                continue
            archived = await self.expire(function, cutoff(now, days))
            if archived is not None:
                log.info(
                    "%s: %d log records older than %d days archived to %s",
                    function,
                    archived.records,
                    days,
                    archived.path,
                )
                done.append(archived)
        return done

    async def expire(self, function: str, before: dt.datetime) -> EngineArchived | None:
        """Archive `function`'s records older than `before`, then delete them from the
        engine. The file is complete before the delete task is asked for; a run cut short
        leaves the records in the engine, to be archived again next time."""
        selection = f"function:={quote(function)} _time:<{timestamp(before)}"
        rows = await self.engine.select(
            f'{selection} | sort by (_time) | fields _time, _msg, "@logStream", "@requestId"'
        )
        if not rows:
            return None
        times = [dt.datetime.fromisoformat(r["_time"].replace("Z", "+00:00")) for r in rows]
        folder = self.archive / function
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        name = f"{function}-{_stamp(times[0])}-{_stamp(times[-1])}.jsonl.gz"
        partial = folder / f".{name}.partial"

        def write() -> None:
            with gzip.open(partial, "wt", encoding="utf-8") as out:
                for row, t in zip(rows, times, strict=True):
                    record = {
                        "timestamp": int(t.timestamp() * 1000),
                        "logStream": row.get("@logStream", ""),
                        "requestId": row.get("@requestId") or None,
                        "message": row.get("_msg", ""),
                    }
                    out.write(json.dumps(record, separators=(",", ":")) + "\n")
            os.replace(partial, folder / name)

        try:
            await asyncio.to_thread(write)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        await self.engine.delete(selection)
        return EngineArchived(function, len(rows), folder / name)
