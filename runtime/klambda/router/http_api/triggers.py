"""Triggers' state: `GET /klambda/v1/triggers[?function=NAME]` (what `klambda get triggers`
shows): every declared trigger, Active, Disabled or Failed with the reason, its route,
topic or schedule, and a schedule's next and last firing; and the function URLs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from klambda.router import triggers
from klambda.router.routing import parse_function
from klambda.router.scheduler import Scheduler
from klambda.router.triggers import Triggers
from klambda.triggers.eventbridge import iso_time


class TriggerApi:
    def __init__(self, triggers: Triggers, scheduler: Scheduler | None) -> None:
        self.triggers = triggers
        self.scheduler = scheduler

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/klambda/v1/triggers", self.list_triggers)

    async def list_triggers(self, request: web.Request) -> web.Response:
        only = request.query.get("function")
        if only:
            only = parse_function(only, "function")
        table = self.triggers.table
        out: list[dict[str, Any]] = []
        for d in table.declared:
            if only and d.function != only:
                continue
            next_fire = last_fire = failure = None
            s = self.scheduler.schedules.get(d.key) if self.scheduler else None
            if s is not None:
                next_fire = iso_time(s.next) if s.next else None
                last_fire = iso_time(s.last) if s.last else None
                failure = s.error if s.next is None else None
            elif d.type == "Schedule" and self.scheduler is None:
                failure = "this router has no queue for asynchronous invocation"
            st = triggers.status(
                table, d, next_fire=next_fire, last_fire=last_fire, failure=failure
            )
            out.append({"function": d.function, "alias": d.alias, **st.wire()})
        urls = [
            {
                "function": u.function,
                "alias": u.alias,
                "url": f"{request.scheme}://{request.host}/url/{u.path_name}/",
                "authType": u.config.auth_type,
                "invokeMode": u.config.invoke_mode,
            }
            for u in table.urls.values()
            if not only or u.function == only
        ]
        return web.json_response({"Triggers": out, "FunctionUrls": urls})
