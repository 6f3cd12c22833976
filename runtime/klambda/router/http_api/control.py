"""Lambda's control API: functions, versions, aliases, reserved and provisioned concurrency,
account settings; and klambda's own temporary copies of `$LATEST` for power tuning.

The read side is always served; the write side only where this router manages its own
state (local mode), as `control` says.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from klambda import shapes
from klambda.api import limits
from klambda.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from klambda.router.control import LocalControl
from klambda.router.functions import LocalFunctions
from klambda.router.http_api.params import (
    API,
    function_of,
    int_field,
    json_body,
    target_of,
    version_field,
)
from klambda.router.http_api.shapes import alias_configuration, configuration
from klambda.router.invoke import Invoker
from klambda.router.registry import FunctionEntry, Target


class ControlApi:
    def __init__(
        self,
        invoker: Invoker,
        control: LocalControl | None = None,
        functions: LocalFunctions | None = None,
    ) -> None:
        self.invoker = invoker
        self.control = control
        self.functions = functions  # DeleteFunction of a whole function

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(API, self.list_functions)
        router.add_get(API + "/", self.list_functions)
        router.add_get(API + "/{name}", self.get_function)
        router.add_get(API + "/{name}/configuration", self.get_configuration)
        if self.control is not None:
            router.add_post(API + "/{name}/versions", self.publish_version)
            router.add_delete(API + "/{name}", self.delete_function)
            router.add_post(API + "/{name}/aliases", self.create_alias)
            router.add_put(API + "/{name}/aliases/{alias}", self.update_alias)
            router.add_delete(API + "/{name}/aliases/{alias}", self.delete_alias)
            router.add_put("/2017-10-31/functions/{name}/concurrency", self.put_concurrency)
            router.add_delete("/2017-10-31/functions/{name}/concurrency", self.delete_concurrency)
            router.add_post("/klambda/v1/functions/{name}/tuning", self.start_tuning)
            router.add_delete("/klambda/v1/functions/{name}/tuning/{qualifier}", self.stop_tuning)
            provisioned = "/2019-09-30/functions/{name}/provisioned-concurrency"
            router.add_put(provisioned, self.put_provisioned)
            router.add_get(provisioned, self.get_provisioned)
            router.add_delete(provisioned, self.delete_provisioned)
        router.add_get(API + "/{name}/versions", self.list_versions)
        router.add_get(API + "/{name}/aliases", self.list_aliases)
        router.add_get(API + "/{name}/aliases/{alias}", self.get_alias)
        router.add_get("/2019-09-30/functions/{name}/concurrency", self.get_concurrency)
        router.add_get("/2016-08-19/account-settings", self.account_settings)
        router.add_get("/2016-08-19/account-settings/", self.account_settings)

    async def list_functions(self, request: web.Request) -> web.Response:
        registry = self.invoker.registry
        out = [
            configuration(e.latest, e.function.spec.description)
            for e in sorted(registry.functions.values(), key=lambda e: e.function.name)
        ]
        return web.json_response({"Functions": out})

    def _target(self, request: web.Request) -> tuple[Target, str]:
        function, qualifier = target_of(request)
        entry = self.invoker.registry.get(function)
        if qualifier in entry.aliases:
            qualifier = entry.aliases[qualifier].spec.version
        if qualifier and qualifier != limits.LATEST:
            if qualifier not in entry.targets:
                raise ResourceNotFound(f"Function not found: {entry.function.name}:{qualifier}")
            return entry.targets[qualifier], entry.versions[qualifier].spec.description
        return entry.latest, entry.function.spec.description

    async def get_configuration(self, request: web.Request) -> web.Response:
        target, description = self._target(request)
        return web.json_response(configuration(target, description))

    async def get_function(self, request: web.Request) -> web.Response:
        target, description = self._target(request)
        entry = self.invoker.registry.get(target.config.function)
        body: dict[str, Any] = {
            "Configuration": configuration(target, description),
            "Code": {"RepositoryType": "S3", "Location": f"file://{target.config.code_root}"},
        }
        reserved = self.invoker.pools.reserved.get(entry.function.name)
        if reserved is not None:
            body["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        if entry.function.spec.tags:
            body["Tags"] = dict(entry.function.spec.tags)
        triggers = shapes.triggers(entry.function.spec)
        if triggers is not None:
            body["Triggers"] = triggers
        return web.json_response(body)

    # versions and aliases

    def _entry(self, request: web.Request) -> FunctionEntry:
        return self.invoker.registry.get(function_of(request))

    def _control(self) -> LocalControl:
        assert self.control is not None
        return self.control

    async def publish_version(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        function = function_of(request)
        target = self._control().publish_version(function, str(body.get("Description", "")))
        entry = self.invoker.registry.get(function)
        v = entry.versions[target.config.version]
        return web.json_response(configuration(target, v.spec.description), status=201)

    async def list_versions(self, request: web.Request) -> web.Response:
        entry = self._entry(request)
        out = [configuration(entry.latest, entry.function.spec.description)]
        for number in sorted(entry.targets, key=int):
            out.append(
                configuration(entry.targets[number], entry.versions[number].spec.description)
            )
        return web.json_response({"Versions": out})

    async def delete_function(self, request: web.Request) -> web.Response:
        function, qualifier = target_of(request)
        if not qualifier and self.functions is not None:
            self.functions.delete(function)
            return web.Response(status=204)
        if not qualifier or not qualifier.isdigit():
            raise InvalidParameterValue(
                "Qualifier: give the version number to delete (an alias is deleted with "
                "DeleteAlias)"
            )
        self._control().delete_version(function, qualifier)
        return web.Response(status=204)

    @staticmethod
    def _routing(body: dict[str, Any]) -> dict[str, float] | None:
        if "RoutingConfig" not in body:
            return None
        weights = (body.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if not isinstance(weights, dict):
            raise InvalidParameterValue("RoutingConfig.AdditionalVersionWeights: must be a map")
        return {str(k): v for k, v in weights.items()}

    @staticmethod
    def _triggers(body: dict[str, Any]) -> Any:
        """klambda's `Triggers` of CreateAlias or UpdateAlias, as on CreateFunction (null
        clears them); None when the request has none."""
        if "Triggers" not in body:
            return None
        return body["Triggers"] or {}

    async def create_alias(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        name = str(body.get("Name", ""))
        entry = self._entry(request)
        if name in entry.aliases:
            raise ResourceConflict(f"Alias already exists: {entry.function.name}:{name}")
        alias = self._control().put_alias(
            entry.function.name,
            name,
            version_field(body) or "",
            self._routing(body) or {},
            str(body.get("Description", "")),
            self._triggers(body),
        )
        return web.json_response(alias_configuration(entry, alias), status=201)

    async def update_alias(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        entry = self._entry(request)
        if request.match_info["alias"] not in entry.aliases:  # Lambda's UpdateAlias
            raise ResourceNotFound(
                f"Alias not found: {entry.function.name}:{request.match_info['alias']}"
            )
        version = version_field(body)
        alias = self._control().put_alias(
            entry.function.name,
            request.match_info["alias"],
            None if version is None else str(version),
            self._routing(body),
            None if "Description" not in body else str(body["Description"]),
            self._triggers(body),
        )
        return web.json_response(alias_configuration(entry, alias))

    async def delete_alias(self, request: web.Request) -> web.Response:
        self._control().delete_alias(function_of(request), request.match_info["alias"])
        return web.Response(status=204)

    async def list_aliases(self, request: web.Request) -> web.Response:
        entry = self._entry(request)
        return web.json_response(
            {"Aliases": [alias_configuration(entry, a) for _, a in sorted(entry.aliases.items())]}
        )

    async def get_alias(self, request: web.Request) -> web.Response:
        entry = self._entry(request)
        alias = entry.aliases.get(request.match_info["alias"])
        if alias is None:
            raise ResourceNotFound(
                f"Alias not found: {entry.function.name}:{request.match_info['alias']}"
            )
        return web.json_response(alias_configuration(entry, alias))

    # concurrency

    async def put_concurrency(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        reserved = int_field(body, "ReservedConcurrentExecutions")
        self._control().put_reserved(function_of(request), reserved)
        return web.json_response({"ReservedConcurrentExecutions": reserved})

    async def delete_concurrency(self, request: web.Request) -> web.Response:
        self._control().put_reserved(function_of(request), None)
        return web.Response(status=204)

    async def get_concurrency(self, request: web.Request) -> web.Response:
        entry = self._entry(request)
        reserved = self.invoker.pools.reserved.get(entry.function.name)
        return web.json_response(
            {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
        )

    def _qualifier(self, request: web.Request) -> str:
        q = request.query.get("Qualifier")
        if not q:
            raise InvalidParameterValue("Qualifier: a version number or an alias is required")
        return q

    async def put_provisioned(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        count = int_field(body, "ProvisionedConcurrentExecutions")
        name, q = function_of(request), self._qualifier(request)
        control = self._control()
        control.put_provisioned(name, q, count)
        return web.json_response(control.provisioned_config(name, q), status=202)

    async def get_provisioned(self, request: web.Request) -> web.Response:
        control = self.control
        if control is None:
            raise InvalidParameterValue("provisioned concurrency is not managed by this router")
        if request.query.get("List") == "ALL":  # ListProvisionedConcurrencyConfigs
            configs = control.provisioned_configs(function_of(request))
            return web.json_response({"ProvisionedConcurrencyConfigs": configs})
        name, q = function_of(request), self._qualifier(request)
        return web.json_response(control.provisioned_config(name, q))

    async def delete_provisioned(self, request: web.Request) -> web.Response:
        self._control().put_provisioned(function_of(request), self._qualifier(request), 0)
        return web.Response(status=204)

    async def start_tuning(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        q = self._control().start_tuning(function_of(request), int_field(body, "MemorySize"))
        return web.json_response({"Qualifier": q}, status=201)

    async def stop_tuning(self, request: web.Request) -> web.Response:
        await self._control().stop_tuning(function_of(request), request.match_info["qualifier"])
        return web.Response(status=204)

    async def account_settings(self, request: web.Request) -> web.Response:
        pools = self.invoker.pools
        return web.json_response(
            {
                "AccountLimit": {
                    "ConcurrentExecutions": pools.account_limit,
                    "UnreservedConcurrentExecutions": pools.unreserved_limit,
                },
                "AccountUsage": {"FunctionCount": len(self.invoker.registry.functions)},
            }
        )
