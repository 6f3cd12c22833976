"""klambda's own reports: usage and estimated cost by function, version and alias (for
`klambda cost report`). A function's log lines are in `logs`."""

from __future__ import annotations

import time

from aiohttp import web

from klambda.errors import InvalidParameterValue
from klambda.pricing import usage_cost
from klambda.router.invoke import Invoker
from klambda.router.routing import parse_function


class ReportApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/klambda/v1/usage", self.usage)

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
