"""Provisioned concurrency autoscaling over HTTP (klambda's own routes; Application Auto
Scaling is another AWS service): set, read and remove an alias's or a version's policy.
The body is the policy as a manifest writes it (`minCapacity`, `maxCapacity`,
`targetUtilization`, `scaleInCooldownSeconds`, `scheduledActions`)."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from klambda.api.autoscaling import ProvisionedAutoscaling
from klambda.api.manifest import describe_errors
from klambda.errors import InvalidParameterValue, ResourceNotFound
from klambda.router.autoscaler import Autoscaler, policies
from klambda.router.control import LocalControl
from klambda.router.http_api.params import function_of, json_body

PATH = "/klambda/v1/functions/{name}/provisioned-autoscaling"


class AutoscalingApi:
    def __init__(self, autoscaler: Autoscaler, control: LocalControl | None) -> None:
        self.autoscaler = autoscaler
        self.control = control

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(PATH, self.get)
        if self.control is not None:
            router.add_put(PATH, self.put)
            router.add_delete(PATH, self.delete)

    @staticmethod
    def _qualifier(request: web.Request) -> str:
        q = request.query.get("Qualifier")
        if not q:
            raise InvalidParameterValue("Qualifier: an alias or a version number is required")
        return q

    async def put(self, request: web.Request) -> web.Response:
        assert self.control is not None
        body = await json_body(request)
        try:
            policy = ProvisionedAutoscaling.model_validate(body)
        except ValidationError as err:
            raise InvalidParameterValue("; ".join(describe_errors(err))) from None
        name, q = function_of(request), self._qualifier(request)
        self.control.put_autoscaling(name, q, policy)
        entry = self.autoscaler.invoker.registry.get(name)
        return web.json_response(self.autoscaler.status(entry, q))

    async def get(self, request: web.Request) -> web.Response:
        name = function_of(request)
        entry = self.autoscaler.invoker.registry.get(name)
        q = request.query.get("Qualifier")
        if q is None:
            return web.json_response(
                {p[0]: self.autoscaler.status(entry, p[0]) for p in policies(entry)}
            )
        status = self.autoscaler.status(entry, q)
        if not status:
            raise ResourceNotFound(f"No provisioned autoscaling for {name}:{q}")
        return web.json_response(status)

    async def delete(self, request: web.Request) -> web.Response:
        assert self.control is not None
        self.control.put_autoscaling(function_of(request), self._qualifier(request), None)
        return web.Response(status=204)
