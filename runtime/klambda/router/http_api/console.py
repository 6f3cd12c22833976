"""The console (`/console`): the functions and each one's page, from the router's registry
and its sampled history (`router/history.py`); the pages are built by `klambda.console`."""

from __future__ import annotations

import time

from aiohttp import web

from klambda.console.pages import AliasRow, FunctionView, VersionRow, function_page, index
from klambda.router.autoscaler import Autoscaler, policies
from klambda.router.history import Sampler
from klambda.router.http_api.shapes import configuration
from klambda.router.invoke import Invoker
from klambda.router.registry import FunctionEntry, provisioned_by_version

LOG_LINES = 50


class ConsoleApi:
    def __init__(
        self, invoker: Invoker, sampler: Sampler, autoscaler: Autoscaler | None = None
    ) -> None:
        self.invoker = invoker
        self.sampler = sampler
        self.autoscaler = autoscaler

    def _autoscaling(self, entry: FunctionEntry) -> list[str]:
        if self.autoscaler is None:
            return []
        lines = []
        for qualifier, policy, current, _ in policies(entry):
            st = self.autoscaler.status(entry, qualifier)
            line = (
                f"{qualifier}: {current} provisioned, {st.get('minCapacity')}-"
                f"{st.get('maxCapacity')}, target utilization {policy.target_utilization:g}, "
                f"now {st.get('utilization')}"
            )
            last = st.get("lastScaling")
            if isinstance(last, dict):
                line += f"; last: {last['provisionedConcurrency']} ({last['reason']})"
            lines.append(line)
        return lines

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/console", self.index)
        router.add_get("/console/", self.index)
        router.add_get("/console/functions/{name}", self.function)

    def _view(self, entry: FunctionEntry, logs: bool) -> FunctionView:
        name = entry.function.name
        history = self.sampler.history
        provisioned = provisioned_by_version(entry)
        versions = [
            VersionRow(
                version=n,
                description=entry.versions[n].spec.description,
                memory_mb=t.config.memory_mb,
                timeout_s=t.config.timeout_s,
                code_sha256=t.config.code_sha256,
                state=t.state,
                provisioned=provisioned.get(n, 0),
            )
            for n, t in sorted(entry.targets.items(), key=lambda kv: int(kv[0]))
        ]
        aliases = [
            AliasRow(
                name=a,
                version=alias.spec.version,
                weights=(
                    {alias.spec.routing.additional_version: alias.spec.routing.weight}
                    if alias.spec.routing is not None
                    else {}
                ),
                description=alias.spec.description,
                provisioned=alias.spec.provisioned_concurrency,
            )
            for a, alias in sorted(entry.aliases.items())
        ]
        return FunctionView(
            name=name,
            configuration=configuration(entry.latest, entry.function.spec.description),
            reserved=self.invoker.pools.reserved.get(name),
            versions=versions,
            aliases=aliases,
            points=history.points(name),
            window=history.window(name),
            latest=history.latest(name),
            logs=[r.text for r in self.invoker.logs.recent(name, LOG_LINES)] if logs else [],
            provisioned_autoscaling=self._autoscaling(entry),
        )

    def _refresh(self) -> int:
        return max(1, round(self.sampler.period_s))

    async def index(self, request: web.Request) -> web.Response:
        registry = self.invoker.registry
        views = [self._view(registry.functions[n], logs=False) for n in sorted(registry.functions)]
        html = index(views, self.sampler.span_s, self._refresh())
        return web.Response(text=html, content_type="text/html")

    async def function(self, request: web.Request) -> web.Response:
        entry = self.invoker.registry.get(request.match_info["name"])
        view = self._view(entry, logs=True)
        html = function_page(view, time.time(), self.sampler.span_s, self._refresh())
        return web.Response(text=html, content_type="text/html")
