"""Lambda's API for a function's lifecycle: CreateFunction, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction; Put/Update/Get/Delete/ListFunctionEventInvoke-
Config; TagResource, UntagResource, ListTags.

Served where the router keeps its own state (local mode); the work is done by
klambda.router.functions, the rules are klambda.api.changes'.
"""

from __future__ import annotations

import time

from aiohttp import web

from klambda import shapes
from klambda.api import changes
from klambda.errors import InvalidParameterValue
from klambda.router.functions import LocalFunctions
from klambda.router.http_api.params import API, json_body
from klambda.router.http_api.shapes import configuration
from klambda.router.invoke import Invoker
from klambda.router.routing import parse_function, parse_function_name

EVENT_INVOKE = "/2019-09-25/functions/{name}/event-invoke-config"
TAGS = "/2017-03-31/tags/{arn}"


class FunctionsApi:
    def __init__(self, invoker: Invoker, functions: LocalFunctions) -> None:
        self.invoker = invoker
        self.functions = functions

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(API, self.create)
        router.add_post(API + "/", self.create)
        router.add_put(API + "/{name}/code", self.update_code)
        router.add_put(API + "/{name}/configuration", self.update_configuration)
        router.add_put(EVENT_INVOKE, self.put_event_invoke_config)
        router.add_post(EVENT_INVOKE, self.update_event_invoke_config)
        router.add_get(EVENT_INVOKE, self.get_event_invoke_config)
        router.add_delete(EVENT_INVOKE, self.delete_event_invoke_config)
        router.add_get(EVENT_INVOKE + "/list", self.list_event_invoke_configs)
        router.add_post(TAGS, self.tag)
        router.add_delete(TAGS, self.untag)
        router.add_get(TAGS, self.list_tags)

    async def create(self, request: web.Request) -> web.Response:
        target = await self.functions.create(await json_body(request))
        entry = self.invoker.registry.get(target.config.function)
        return web.json_response(configuration(target, entry.function.spec.description), status=201)

    async def update_code(self, request: web.Request) -> web.Response:
        target = await self.functions.update_code(
            request.match_info["name"], await json_body(request)
        )
        entry = self.invoker.registry.get(target.config.function)
        return web.json_response(configuration(target, entry.function.spec.description))

    async def update_configuration(self, request: web.Request) -> web.Response:
        target = await self.functions.update_configuration(
            request.match_info["name"], await json_body(request)
        )
        entry = self.invoker.registry.get(target.config.function)
        return web.json_response(configuration(target, entry.function.spec.description))

    # -- asynchronous invocation

    def _event_invoke(self, request: web.Request) -> tuple[str, str | None]:
        return parse_function_name(request.match_info["name"], request.query.get("Qualifier"))

    def _shape(self, function: str) -> web.Response:
        entry = self.invoker.registry.get(function)
        return web.json_response(
            shapes.event_invoke_config(entry.latest.config, entry.function.spec, time.time())
        )

    async def put_event_invoke_config(self, request: web.Request) -> web.Response:
        function, qualifier = self._event_invoke(request)
        body = await json_body(request)
        self.functions.put_event_invoke_config(function, qualifier, body, replace=True)
        return self._shape(function)

    async def update_event_invoke_config(self, request: web.Request) -> web.Response:
        function, qualifier = self._event_invoke(request)
        body = await json_body(request)
        self.functions.put_event_invoke_config(function, qualifier, body, replace=False)
        return self._shape(function)

    async def get_event_invoke_config(self, request: web.Request) -> web.Response:
        function, qualifier = self._event_invoke(request)
        self.functions.event_invoke_config(function, qualifier)
        return self._shape(function)

    async def delete_event_invoke_config(self, request: web.Request) -> web.Response:
        function, qualifier = self._event_invoke(request)
        self.functions.delete_event_invoke_config(function, qualifier)
        return web.Response(status=204)

    async def list_event_invoke_configs(self, request: web.Request) -> web.Response:
        function = parse_function(request.match_info["name"])
        entry = self.invoker.registry.get(function)
        configs = []
        if changes.has_event_invoke_config(entry.function.spec):
            configs.append(
                shapes.event_invoke_config(entry.latest.config, entry.function.spec, time.time())
            )
        return web.json_response({"FunctionEventInvokeConfigs": configs})

    # -- tags

    @staticmethod
    def _resource(request: web.Request) -> str:
        function, qualifier = parse_function_name(request.match_info["arn"], None, "Resource")
        if qualifier is not None:
            raise InvalidParameterValue(
                "Resource: tags belong to the function: give its ARN without a qualifier"
            )
        return function

    async def tag(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        tags = body.get("Tags")
        if not isinstance(tags, dict):
            raise InvalidParameterValue("Tags: must be a map of key to value")
        self.functions.tag(self._resource(request), tags)
        return web.Response(status=204)

    async def untag(self, request: web.Request) -> web.Response:
        keys = request.query.getall("tagKeys", [])
        if not keys:
            raise InvalidParameterValue("TagKeys: give at least one key")
        self.functions.untag(self._resource(request), list(keys))
        return web.Response(status=204)

    async def list_tags(self, request: web.Request) -> web.Response:
        return web.json_response({"Tags": self.functions.tags(self._resource(request))})
