"""Asynchronous invocation's side of the API: dead letters (list, redrive) and the
messages of a destination queue, read from the router's durable queue."""

from __future__ import annotations

from aiohttp import web

from klambda.errors import InvalidParameterValue, ResourceNotFound
from klambda.queue import Dispatcher
from klambda.router.http_api.params import function_of, json_body
from klambda.router.invoke import Invoker


class QueueApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/klambda/v1/functions/{name}/dlq", self.dlq_list)
        router.add_post("/klambda/v1/functions/{name}/dlq/redrive", self.dlq_redrive)
        router.add_get("/klambda/v1/queues/{queue}", self.queue_messages)

    def _dispatcher(self) -> Dispatcher:
        d = self.invoker.dispatcher
        if d is None:
            raise InvalidParameterValue("this router has no queue for asynchronous invocation")
        return d

    async def dlq_list(self, request: web.Request) -> web.Response:
        name = function_of(request)
        self.invoker.registry.get(name)
        limit = int(request.query.get("limit", "100") or 100)
        letters = await self._dispatcher().dead_letters(name, limit)
        depths = await self._dispatcher().queue.dlq_depths()
        return web.json_response(
            {
                "DeadLetters": [d.summary() for d in letters],
                "Depth": depths.get(name, 0),
            }
        )

    async def dlq_redrive(self, request: web.Request) -> web.Response:
        name = function_of(request)
        self.invoker.registry.get(name)
        body = await json_body(request)
        rid = body.get("RequestId")
        n = await self._dispatcher().redrive(name, str(rid) if rid else None)
        if rid and n == 0:
            raise ResourceNotFound(f"no dead letter {rid} for {name}")
        return web.json_response({"Redriven": n})

    async def queue_messages(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100") or 100)
        msgs = await self._dispatcher().queue.messages(request.match_info["queue"], limit)
        return web.json_response(
            {
                "Messages": [
                    {
                        "id": m.id,
                        "body": m.body.decode("utf-8", "replace"),
                        "attributes": dict(m.attributes),
                        "sentAt": m.sent_at,
                    }
                    for m in msgs
                ]
            }
        )
