"""Lambda's REST API on aiohttp, so boto3 and the AWS CLI work with `--endpoint-url`.

Invoke, the read side of the control API (ListFunctions, GetFunction, versions, aliases),
`/metrics`, `/healthz`, and `/klambda/v1/logs/{function}` for `klambda logs`. Handlers
parse, call the router's core, and shape Lambda's response; nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from klambda.api import limits
from klambda.errors import InvalidParameterValue, KlambdaError, RequestTooLarge
from klambda.router.invoke import Invoker
from klambda.router.registry import Target

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


class HttpApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

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
        qualifier = request.query.get("Qualifier")
        if qualifier and not qualifier.isdigit() and qualifier != limits.LATEST:
            raise InvalidParameterValue("Qualifier must be a version number or $LATEST here")
        target = entry.targets.get(qualifier or "", entry.latest)
        return target, entry.function.spec.description

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
        if entry.function.spec.reserved_concurrency is not None:
            body["Concurrency"] = {
                "ReservedConcurrentExecutions": entry.function.spec.reserved_concurrency
            }
        return web.json_response(body)

    async def metrics(self, request: web.Request) -> web.Response:
        data = generate_latest(self.invoker.metrics.registry)
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
