"""What operators poll: Prometheus metrics and a liveness check."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from klambda.router.invoke import Invoker


class HealthApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/metrics", self.metrics)
        router.add_get("/healthz", self.healthz)

    async def metrics(self, request: web.Request) -> web.Response:
        # rendering 1,000 series takes milliseconds: not on the event loop
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, generate_latest, self.invoker.metrics.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")
