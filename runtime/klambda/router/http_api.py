"""Lambda's REST API on aiohttp, so boto3 and the AWS CLI work with `--endpoint-url`.

Invoke, the read side of the control API (ListFunctions, GetFunction, versions, aliases),
`/metrics`, `/healthz`, and `/klambda/v1/logs/{function}` for `klambda logs`. Handlers
parse, call the router's core, and shape Lambda's response; nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from klambda.api import Alias, limits
from klambda.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    KlambdaError,
    RequestTooLarge,
    ResourceConflict,
    ResourceNotFound,
)
from klambda.pricing import usage_cost
from klambda.queue import Dispatcher
from klambda.router.control import LocalControl
from klambda.router.invoke import Invoker
from klambda.router.registry import FunctionEntry, Target

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API = "/2015-03-31/functions"


def error_response(err: KlambdaError) -> web.Response:
    return web.json_response(
        err.body(), status=err.http_status, headers={"x-amzn-ErrorType": err.code}
    )


@web.middleware
async def lambda_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except KlambdaError as err:
        return error_response(err)
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            RequestTooLarge(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                "InvokeFunction operation"
            )
        )


def configuration(target: Target, description: str = "") -> dict[str, Any]:
    """Lambda's FunctionConfiguration of one version."""
    cfg = target.config
    arn = cfg.arn if cfg.version == limits.LATEST else f"{cfg.arn}:{cfg.version}"
    return {
        "FunctionName": cfg.function,
        "FunctionArn": arn,
        "Runtime": cfg.runtime,
        "Role": f"arn:aws:iam::{cfg.account}:role/klambda",
        "Handler": cfg.handler,
        "Description": description,
        "Timeout": cfg.timeout_s,
        "MemorySize": cfg.memory_mb,
        "CodeSha256": cfg.code_sha256,
        "Version": cfg.version,
        "Environment": {"Variables": dict(cfg.environment)},
        "State": target.state,
        "StateReason": target.state_reason or "",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
    }


def alias_configuration(entry: FunctionEntry, alias: Alias) -> dict[str, Any]:
    """Lambda's AliasConfiguration."""
    spec = alias.spec
    out: dict[str, Any] = {
        "AliasArn": f"{entry.latest.config.arn}:{alias.alias_name}",
        "Name": alias.alias_name,
        "FunctionVersion": spec.version,
        "Description": spec.description,
    }
    if spec.routing is not None:
        out["RoutingConfig"] = {
            "AdditionalVersionWeights": {spec.routing.additional_version: spec.routing.weight}
        }
    return out


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as err:
        raise InvalidRequestContent(f"Could not parse request body into json: {err}") from None
    if not isinstance(body, dict):
        raise InvalidRequestContent("the request body must be a JSON object")
    return body


def int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameterValue(f"{name}: must be an integer, got {value!r}")
    return value


class HttpApi:
    def __init__(self, invoker: Invoker, control: LocalControl | None = None) -> None:
        self.invoker = invoker
        self.control = control

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[lambda_errors],
            client_max_size=limits.SYNC_PAYLOAD_MAX_BYTES + 64 * 1024,
        )
        app.router.add_post(API + "/{name}/invocations", self.invoke)
        app.router.add_get(API, self.list_functions)
        app.router.add_get(API + "/", self.list_functions)
        app.router.add_get(API + "/{name}", self.get_function)
        app.router.add_get(API + "/{name}/configuration", self.get_configuration)
        if self.control is not None:
            app.router.add_post(API + "/{name}/versions", self.publish_version)
            app.router.add_delete(API + "/{name}", self.delete_function)
            app.router.add_post(API + "/{name}/aliases", self.create_alias)
            app.router.add_put(API + "/{name}/aliases/{alias}", self.update_alias)
            app.router.add_delete(API + "/{name}/aliases/{alias}", self.delete_alias)
            app.router.add_put("/2017-10-31/functions/{name}/concurrency", self.put_concurrency)
            app.router.add_delete(
                "/2017-10-31/functions/{name}/concurrency", self.delete_concurrency
            )
            app.router.add_post("/klambda/v1/functions/{name}/tuning", self.start_tuning)
            app.router.add_delete(
                "/klambda/v1/functions/{name}/tuning/{qualifier}", self.stop_tuning
            )
            provisioned = "/2019-09-30/functions/{name}/provisioned-concurrency"
            app.router.add_put(provisioned, self.put_provisioned)
            app.router.add_get(provisioned, self.get_provisioned)
            app.router.add_delete(provisioned, self.delete_provisioned)
        app.router.add_get(API + "/{name}/versions", self.list_versions)
        app.router.add_get(API + "/{name}/aliases", self.list_aliases)
        app.router.add_get(API + "/{name}/aliases/{alias}", self.get_alias)
        app.router.add_get("/2019-09-30/functions/{name}/concurrency", self.get_concurrency)
        app.router.add_get("/2016-08-19/account-settings", self.account_settings)
        app.router.add_get("/2016-08-19/account-settings/", self.account_settings)
        app.router.add_get("/klambda/v1/usage", self.usage)
        app.router.add_get("/klambda/v1/functions/{name}/dlq", self.dlq_list)
        app.router.add_post("/klambda/v1/functions/{name}/dlq/redrive", self.dlq_redrive)
        app.router.add_get("/klambda/v1/queues/{queue}", self.queue_messages)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/klambda/v1/logs/{name}", self.logs)
        return app

    async def invoke(self, request: web.Request) -> web.Response:
        length = request.content_length
        if length is not None and length > limits.SYNC_PAYLOAD_MAX_BYTES:
            raise RequestTooLarge(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                f"InvokeFunction operation (got {length} bytes)"
            )
        payload = await request.read()
        res = await self.invoker.invoke(
            request.match_info["name"],
            payload,
            qualifier=request.query.get("Qualifier"),
            invocation_type=request.headers.get("X-Amz-Invocation-Type", "RequestResponse"),
            log_tail=request.headers.get("X-Amz-Log-Type") == "Tail",
        )
        headers = {
            "x-amzn-RequestId": res.request_id,
            "X-Amz-Executed-Version": res.executed_version,
        }
        if res.function_error:
            headers["X-Amz-Function-Error"] = res.function_error
        if res.log_tail is not None:
            headers["X-Amz-Log-Result"] = base64.b64encode(res.log_result().encode()).decode()
        return web.Response(
            body=res.payload,
            status=res.status_code,
            headers=headers,
            content_type="application/json",
        )

    async def list_functions(self, request: web.Request) -> web.Response:
        registry = self.invoker.registry
        out = [
            configuration(e.latest, e.function.spec.description)
            for e in sorted(registry.functions.values(), key=lambda e: e.function.name)
        ]
        return web.json_response({"Functions": out})

    def _target(self, request: web.Request) -> tuple[Target, str]:
        name = request.match_info["name"]
        entry = self.invoker.registry.get(name.split(":")[0])
        qualifier = request.query.get("Qualifier") or name.partition(":")[2]
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
        return web.json_response(body)

    # versions and aliases

    def _entry(self, request: web.Request) -> FunctionEntry:
        return self.invoker.registry.get(request.match_info["name"])

    def _control(self) -> LocalControl:
        assert self.control is not None
        return self.control

    async def publish_version(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        target = self._control().publish_version(
            request.match_info["name"], str(body.get("Description", ""))
        )
        entry = self._entry(request)
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
        qualifier = request.query.get("Qualifier")
        if not qualifier or not qualifier.isdigit():
            raise InvalidParameterValue(
                "Qualifier: give the version number to delete; functions themselves are "
                "removed by deleting their manifest"
            )
        self._control().delete_version(request.match_info["name"], qualifier)
        return web.Response(status=204)

    @staticmethod
    def _routing(body: dict[str, Any]) -> dict[str, float] | None:
        if "RoutingConfig" not in body:
            return None
        weights = (body.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if not isinstance(weights, dict):
            raise InvalidParameterValue("RoutingConfig.AdditionalVersionWeights: must be a map")
        return {str(k): v for k, v in weights.items()}

    async def create_alias(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        name = str(body.get("Name", ""))
        entry = self._entry(request)
        if name in entry.aliases:
            raise ResourceConflict(f"Alias already exists: {entry.function.name}:{name}")
        alias = self._control().put_alias(
            entry.function.name,
            name,
            str(body.get("FunctionVersion", "")),
            self._routing(body) or {},
            str(body.get("Description", "")),
        )
        return web.json_response(alias_configuration(entry, alias), status=201)

    async def update_alias(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        entry = self._entry(request)
        version = body.get("FunctionVersion")
        alias = self._control().put_alias(
            entry.function.name,
            request.match_info["alias"],
            None if version is None else str(version),
            self._routing(body),
            None if "Description" not in body else str(body["Description"]),
        )
        return web.json_response(alias_configuration(entry, alias))

    async def delete_alias(self, request: web.Request) -> web.Response:
        self._control().delete_alias(request.match_info["name"], request.match_info["alias"])
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
        self._control().put_reserved(request.match_info["name"], reserved)
        return web.json_response({"ReservedConcurrentExecutions": reserved})

    async def delete_concurrency(self, request: web.Request) -> web.Response:
        self._control().put_reserved(request.match_info["name"], None)
        return web.Response(status=204)

    async def get_concurrency(self, request: web.Request) -> web.Response:
        self._entry(request)
        reserved = self.invoker.pools.reserved.get(request.match_info["name"])
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
        name, q = request.match_info["name"], self._qualifier(request)
        control = self._control()
        control.put_provisioned(name, q, count)
        return web.json_response(control.provisioned_config(name, q), status=202)

    async def get_provisioned(self, request: web.Request) -> web.Response:
        name, q = request.match_info["name"], self._qualifier(request)
        control = self.control
        if control is None:
            raise InvalidParameterValue("provisioned concurrency is not managed by this router")
        return web.json_response(control.provisioned_config(name, q))

    async def delete_provisioned(self, request: web.Request) -> web.Response:
        self._control().put_provisioned(request.match_info["name"], self._qualifier(request), 0)
        return web.Response(status=204)

    async def start_tuning(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        q = self._control().start_tuning(request.match_info["name"], int_field(body, "MemorySize"))
        return web.json_response({"Qualifier": q}, status=201)

    async def stop_tuning(self, request: web.Request) -> web.Response:
        await self._control().stop_tuning(
            request.match_info["name"], request.match_info["qualifier"]
        )
        return web.Response(status=204)

    def _dispatcher(self) -> Dispatcher:
        d = self.invoker.dispatcher
        if d is None:
            raise InvalidParameterValue("this router has no queue for asynchronous invocation")
        return d

    async def dlq_list(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
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
        name = request.match_info["name"]
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

    async def usage(self, request: web.Request) -> web.Response:
        try:
            since = float(request.query.get("since", "3600"))
        except ValueError:
            raise InvalidParameterValue("since: a number of seconds") from None
        only = request.query.get("function")
        if only:
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

    async def metrics(self, request: web.Request) -> web.Response:
        # rendering 1,000 series takes milliseconds: not on the event loop
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, generate_latest, self.invoker.metrics.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def logs(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
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


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
