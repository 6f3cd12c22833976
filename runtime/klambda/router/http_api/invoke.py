"""Lambda's Invoke: `POST /2015-03-31/functions/{name}/invocations`, every invocation type."""

from __future__ import annotations

import base64

from aiohttp import web

from klambda import lineage
from klambda.api import limits
from klambda.errors import RequestTooLarge
from klambda.router.http_api.params import API
from klambda.router.invoke import Invoker


class InvokeApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(API + "/{name}/invocations", self.invoke)

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
            trace=request.headers.get(lineage.HEADER),
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
