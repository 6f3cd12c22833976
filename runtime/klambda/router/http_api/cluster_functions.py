"""Lambda's function requests on a cluster-mode router (`KLAMBDA_CONTROL_API`): the routes
of `FunctionsApi` and DeleteFunction, answered from the objects written
(klambda.router.cluster_functions), since the registry sees them only through its watch."""

from __future__ import annotations

from aiohttp import web

from klambda.errors import InvalidParameterValue
from klambda.router.cluster_functions import ClusterFunctions
from klambda.router.http_api.functions import EVENT_INVOKE, TAGS
from klambda.router.http_api.params import API, json_body
from klambda.router.routing import parse_function, parse_function_name


class ClusterFunctionsApi:
    def __init__(self, functions: ClusterFunctions) -> None:
        self.functions = functions

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(API, self.create)
        router.add_post(API + "/", self.create)
        router.add_delete(API + "/{name}", self.delete)
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

    @staticmethod
    def _name(request: web.Request) -> str:
        return parse_function(request.match_info["name"])

    @staticmethod
    def _latest(request: web.Request) -> str:
        function, qualifier = parse_function_name(
            request.match_info["name"], request.query.get("Qualifier")
        )
        if qualifier not in (None, "", "$LATEST"):
            raise InvalidParameterValue(
                f"Qualifier: {qualifier!r}: klambda keeps the asynchronous invocation "
                "configuration on the function ($LATEST)"
            )
        return function

    async def create(self, request: web.Request) -> web.Response:
        out = await self.functions.create(await json_body(request))
        return web.json_response(out, status=201)

    async def delete(self, request: web.Request) -> web.Response:
        if request.query.get("Qualifier"):
            raise InvalidParameterValue(
                "Qualifier: delete a version with kubectl delete version NAME.N in cluster mode"
            )
        await self.functions.delete(self._name(request))
        return web.Response(status=204)

    async def update_code(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        return web.json_response(await self.functions.update_code(self._name(request), body))

    async def update_configuration(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        out = await self.functions.update_configuration(self._name(request), body)
        return web.json_response(out)

    async def put_event_invoke_config(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        out = await self.functions.put_event_invoke_config(self._latest(request), body, True)
        return web.json_response(out)

    async def update_event_invoke_config(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        out = await self.functions.put_event_invoke_config(self._latest(request), body, False)
        return web.json_response(out)

    async def get_event_invoke_config(self, request: web.Request) -> web.Response:
        return web.json_response(await self.functions.event_invoke_config(self._latest(request)))

    async def delete_event_invoke_config(self, request: web.Request) -> web.Response:
        await self.functions.delete_event_invoke_config(self._latest(request))
        return web.Response(status=204)

    async def list_event_invoke_configs(self, request: web.Request) -> web.Response:
        configs = await self.functions.event_invoke_configs(self._name(request))
        return web.json_response({"FunctionEventInvokeConfigs": configs})

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
        await self.functions.tag(self._resource(request), tags)
        return web.Response(status=204)

    async def untag(self, request: web.Request) -> web.Response:
        keys = request.query.getall("tagKeys", [])
        if not keys:
            raise InvalidParameterValue("TagKeys: give at least one key")
        await self.functions.untag(self._resource(request), list(keys))
        return web.Response(status=204)

    async def list_tags(self, request: web.Request) -> web.Response:
        return web.json_response({"Tags": await self.functions.tags(self._resource(request))})
