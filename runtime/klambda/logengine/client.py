"""VictoriaLogs' HTTP API: records in (`/insert/jsonline`), Insights queries out.

Records go in as JSON Lines (klambda.logengine.records), with the stream fields and the
time and message fields named in the request, so one POST carries a batch of any number of
functions and environments. A query is compiled to LogsQL (klambda.logengine.logsql) and
sent to `/select/logsql/query`, which answers one JSON object a row; the answer is given in
Insights' shape by the same `QueryResult` as the local store's, with the statistics asked
of the engine by two counting queries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import aiohttp

from klambda.logengine import records
from klambda.logengine.logsql import CompiledLogsQL, LogsQLCompiler, quote, timestamp
from klambda.logs import insights
from klambda.logs.insights import QueryError
from klambda.logstore.query import QueryResult

TIMEOUT = aiohttp.ClientTimeout(total=30)


class LogEngineError(RuntimeError):
    """The engine could not be reached, or refused a batch."""


def _naive(value: str) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(dt.UTC).replace(tzinfo=None)


def typed(value: str | None, kind: str) -> Any:
    """A value of the engine's row (always a string) as the local store would give it."""
    if value is None or value == "" or value == "NaN":
        return None
    if kind == "time":
        return _naive(value) or value
    if kind == "num":
        try:
            return float(value)
        except ValueError:
            return value
    return value


class LogEngine:
    def __init__(self, url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.url = url.rstrip("/")
        self._session = session
        self._own = session is None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def insert(self, batch: Iterable[dict[str, str]]) -> int:
        """Send records (klambda.logengine.records' shape); how many were sent."""
        lines = [json.dumps(r, separators=(",", ":")) for r in batch]
        if not lines:
            return 0
        params = {
            "_stream_fields": ",".join(records.STREAM_FIELDS),
            "_time_field": records.TIME_FIELD,
            "_msg_field": records.MESSAGE_FIELD,
        }
        http = await self._http()
        try:
            async with http.post(
                f"{self.url}/insert/jsonline",
                params=params,
                data=("\n".join(lines) + "\n").encode(),
                headers={"Content-Type": "application/stream+json"},
            ) as resp:
                if resp.status >= 300:
                    raise LogEngineError(f"{self.url} refused a batch: {await resp.text()}")
        except aiohttp.ClientError as err:
            raise LogEngineError(f"{self.url}: {err}") from None
        return len(lines)

    async def flush(self) -> None:
        """Make what was inserted visible to queries now (VictoriaLogs' /internal/force_flush)."""
        http = await self._http()
        async with http.get(f"{self.url}/internal/force_flush") as resp:
            resp.raise_for_status()

    async def select(self, query: str) -> list[dict[str, str]]:
        """The rows of a LogsQL query; QueryError with the engine's words when it refuses."""
        http = await self._http()
        try:
            async with http.post(f"{self.url}/select/logsql/query", data={"query": query}) as resp:
                body = await resp.text()
                if resp.status == 400:
                    raise QueryError(body.strip().splitlines()[-1] if body.strip() else "refused")
                if resp.status >= 300:
                    raise LogEngineError(f"{self.url} answered {resp.status}: {body.strip()}")
        except aiohttp.ClientError as err:
            raise LogEngineError(f"{self.url}: {err}") from None
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    async def run_query(
        self,
        query: str,
        functions: Sequence[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> QueryResult:
        """Parse, compile and run an Insights query; QueryError names a mistake's position."""
        started = time.perf_counter()
        compiled = LogsQLCompiler().compile(insights.parse(query), functions, start, end)
        rows = await self.select(compiled.query)
        scanned = await self._count(compiled.count_query)
        matched = scanned
        if compiled.matched_query is not None:
            matched = await self._count(compiled.matched_query)
        return QueryResult(
            compiled.columns,
            [_row(compiled, row) for row in rows],
            scanned,
            matched,
            time.perf_counter() - started,
        )

    async def messages(
        self, functions: Sequence[str], start: dt.datetime, end: dt.datetime, limit: int | None
    ) -> list[str]:
        """The messages of a time window, oldest first (the newest `limit` when given)."""
        query = f"_time:[{timestamp(start)}, {timestamp(end)})"
        if functions:
            query += f" function:in({', '.join(quote(f) for f in functions)})"
        query += " | sort by (_time desc)" + (f" | limit {limit}" if limit else "")
        rows = await self.select(query + " | fields _time, _msg")
        return [row.get("_msg", "") for row in reversed(rows)]

    async def tail(self, function: str) -> AsyncIterator[str]:
        """The function's messages as they arrive (VictoriaLogs' live tailing, a second
        behind, so that records still in flight are not passed over), until closed."""
        http = await self._http()
        try:
            async with http.post(
                f"{self.url}/select/logsql/tail",
                params={"offset": "1s", "refresh_interval": "500ms"},
                data={"query": f"function:={quote(function)}"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            ) as resp:
                if resp.status >= 300:
                    raise LogEngineError(f"{self.url} answered {resp.status}: {await resp.text()}")
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line).get("_msg", "")
        except aiohttp.ClientError as err:
            raise LogEngineError(f"{self.url}: {err}") from None

    async def window_messages(
        self, function: str, start: dt.datetime, end: dt.datetime
    ) -> list[str]:
        """Every message of `function` in [start, end), in no particular order."""
        rows = await self.select(
            f"_time:[{timestamp(start)}, {timestamp(end)}) function:={quote(function)} "
            "| fields _msg"
        )
        return [row.get("_msg", "") for row in rows]

    async def delete(self, selection: str, wait: float = 60.0) -> None:
        """Delete the records a LogsQL filter selects (a delete task; the engine needs its
        -delete.enable flag) and wait until the task is done."""
        http = await self._http()
        try:
            async with http.post(f"{self.url}/delete/run_task", data={"filter": selection}) as resp:
                body = await resp.text()
                if resp.status >= 300:
                    raise LogEngineError(f"{self.url} refused to delete: {body.strip()}")
                task = json.loads(body)["task_id"]
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                async with http.get(f"{self.url}/delete/active_tasks") as resp:
                    active = json.loads(await resp.text()) or []
                if not any(t.get("task_id") == task for t in active):
                    return
                await asyncio.sleep(0.2)
        except aiohttp.ClientError as err:
            raise LogEngineError(f"{self.url}: {err}") from None
        raise LogEngineError(f"{self.url}: the delete task {task} is still running")

    async def _count(self, query: str) -> int:
        rows = await self.select(query)
        return int(rows[0]["n"]) if rows else 0


def _row(compiled: CompiledLogsQL, row: dict[str, str]) -> tuple[Any, ...]:
    return tuple(
        typed(row.get(eng), kind)
        for eng, kind in zip(compiled.engine_columns, compiled.kinds, strict=True)
    )
