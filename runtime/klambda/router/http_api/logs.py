"""Function logs over HTTP: recent lines from memory and followed as they come, or any time
range from the log store (`klambda logs`); Logs Insights queries and filter patterns over
the store are added beside them.

The store's calls block (DuckDB), so they run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from klambda.errors import InvalidParameterValue, MalformedQuery, ResourceNotFound
from klambda.logs import timerange
from klambda.logs.filterpattern import FilterPattern, PatternError, compile_pattern
from klambda.logs.insights import QueryError
from klambda.logstore import LogStore
from klambda.logstore.query import run_query
from klambda.router.http_api.params import function_of, json_body
from klambda.router.invoke import Invoker

UTC = dt.UTC


def _duration(text: str) -> str:
    """A bare number of seconds, or a duration with its unit."""
    return f"{text}s" if text.replace(".", "", 1).isdigit() else text


def range_of(request: web.Request, default_since: str = "1h") -> tuple[dt.datetime, dt.datetime]:
    q = request.query
    since = q.get("since")
    try:
        return timerange.time_range(
            dt.datetime.now(UTC),
            _duration(since) if since else None,
            q.get("start"),
            q.get("end"),
            default_since,
        )
    except ValueError as err:
        raise InvalidParameterValue(str(err)) from None


def pattern_of(request: web.Request) -> FilterPattern | None:
    text = request.query.get("filterPattern")
    if text is None:
        return None
    try:
        return compile_pattern(text)
    except PatternError as err:
        raise MalformedQuery(str(err)) from None


def limit_of(request: web.Request, default: int | None = None, most: int = 10_000) -> int | None:
    raw = request.query.get("limit", "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise InvalidParameterValue(f"limit: {raw!r} is not a number from 1 to {most}")
    return int(raw)


class LogsApi:
    def __init__(self, invoker: Invoker, store: LogStore | None) -> None:
        self.invoker = invoker
        self.store = store

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/klambda/v1/logs/query", self.query)
        router.add_get("/klambda/v1/logs/{name}", self.logs)

    def _store(self) -> LogStore:
        if self.store is None:
            raise InvalidParameterValue(
                "this router keeps no log store (cluster mode, or KLAMBDA_LOG_STORE=0)"
            )
        return self.store

    async def _known(self, name: str) -> None:
        """A function of the registry, or one whose records the store still has."""
        if name in self.invoker.registry.functions:
            return
        if self.store is not None and name in await asyncio.to_thread(self.store.functions):
            return
        self.invoker.registry.get(name)  # raises Lambda's ResourceNotFoundException
        raise ResourceNotFound(f"Function not found: {name}")

    async def logs(self, request: web.Request) -> web.StreamResponse:
        name = function_of(request)
        await self._known(name)
        q = request.query
        pattern = pattern_of(request)
        if any(k in q for k in ("since", "start", "end")):
            return await self._history(request, name, pattern)
        limit = limit_of(request, None, 1_000_000)
        follow = q.get("follow", "") in ("1", "true")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        hub = self.invoker.logs
        queue = hub.follow(name) if follow else None
        try:
            lines = [r.text for r in hub.recent(name, None if pattern else limit)]
            if pattern is not None:
                lines = [line for line in lines if pattern.match(line)]
                lines = lines[-limit:] if limit else lines
            if lines:
                await resp.write(("\n".join(lines) + "\n").encode())
            while queue is not None:
                rec = await queue.get()
                if pattern is None or pattern.match(rec.text):
                    await resp.write((rec.text + "\n").encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if queue is not None:
                hub.unfollow(name, queue)
        await resp.write_eof()
        return resp

    async def _history(
        self, request: web.Request, name: str, pattern: FilterPattern | None
    ) -> web.Response:
        """Records of a time window, like FilterLogEvents when given a filter pattern."""
        store = self._store()
        start, end = range_of(request)
        limit = limit_of(request, None, 1_000_000)
        if pattern is None:
            records = await asyncio.to_thread(store.records, [name], start, end, limit)
            messages = [r.message for r in records]
        else:
            records = await asyncio.to_thread(
                store.records, [name], start, end, None, pattern.required
            )
            messages = [r.message for r in records if pattern.match(r.message)]
            messages = messages[-limit:] if limit else messages
        text = "".join(m + "\n" for m in messages)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def query(self, request: web.Request) -> web.Response:
        """A Logs Insights query: {"queryString", "functions" (default all), "since" or
        "startTime"/"endTime" (epoch seconds or ISO 8601)}; Insights' results."""
        store = self._store()
        body = await json_body(request)
        text = body.get("queryString")
        if not isinstance(text, str):
            raise InvalidParameterValue("queryString: the query, a string, is required")
        functions = body.get("functions") or []
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            raise InvalidParameterValue("functions: a list of function names")
        for name in functions:
            await self._known(name)
        try:
            start, end = timerange.time_range(
                dt.datetime.now(UTC),
                _duration(str(body["since"])) if body.get("since") is not None else None,
                str(body["startTime"]) if body.get("startTime") is not None else None,
                str(body["endTime"]) if body.get("endTime") is not None else None,
            )
        except ValueError as err:
            raise InvalidParameterValue(str(err)) from None
        account = self.invoker.settings.account_id
        try:
            result = await asyncio.to_thread(run_query, store, text, functions, start, end, account)
        except QueryError as err:
            raise MalformedQuery(str(err)) from None
        out = result.insights()
        out["startTime"], out["endTime"] = start.timestamp(), end.timestamp()
        return web.json_response(out)
