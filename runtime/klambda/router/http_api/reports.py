"""klambda's own reports: usage and estimated cost by function, version and alias (for
`klambda cost report`), and a function's log lines, recent or followed (`klambda logs`)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from klambda.errors import InvalidParameterValue
from klambda.pricing import usage_cost
from klambda.router.http_api.params import function_of
from klambda.router.invoke import Invoker
from klambda.router.routing import parse_function


class ReportApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/klambda/v1/usage", self.usage)
        router.add_get("/klambda/v1/logs/{name}", self.logs)

    async def usage(self, request: web.Request) -> web.Response:
        try:
            since = float(request.query.get("since", "3600"))
        except ValueError:
            raise InvalidParameterValue("since: a number of seconds") from None
        only = request.query.get("function")
        if only:
            only = parse_function(only, "function")
            self.invoker.registry.get(only)
        prices = self.invoker.metrics.prices
        rows = []
        for (fn, version, alias), u in sorted(
            self.invoker.usage.totals(time.time(), since).items()
        ):
            if (only and fn != only) or alias.startswith("$TUNE"):
                continue
            rows.append(
                {
                    "function": fn,
                    "version": version,
                    "alias": alias,
                    "requests": u.requests,
                    "errors": u.errors,
                    "gbSeconds": u.gb_seconds,
                    "cost": usage_cost(u.requests, u.gb_seconds, prices),
                }
            )
        return web.json_response(
            {
                "since": since,
                "prices": {
                    "perMillionRequests": prices.per_million_requests,
                    "perGbSecond": prices.per_gb_second,
                },
                "usage": rows,
            }
        )

    async def logs(self, request: web.Request) -> web.StreamResponse:
        name = function_of(request)
        self.invoker.registry.get(name)
        limit = int(request.query.get("limit", "0") or 0) or None
        follow = request.query.get("follow", "") in ("1", "true")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        hub = self.invoker.logs
        queue = hub.follow(name) if follow else None
        try:
            lines = [r.text for r in hub.recent(name, limit)]
            if lines:
                await resp.write(("\n".join(lines) + "\n").encode())
            while queue is not None:
                rec = await queue.get()
                await resp.write((rec.text + "\n").encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if queue is not None:
                hub.unfollow(name, queue)
        await resp.write_eof()
        return resp
