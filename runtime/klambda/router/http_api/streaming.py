"""Streamed responses: InvokeWithResponseStream on Lambda's REST API, and function URLs in
RESPONSE_STREAM mode. Both pass a `StreamSink` down the one invoke path; the environment's
chunks reach the client as the handler produces them.

    POST /2021-11-15/functions/{name}/response-streaming-invocations
        200, `Content-Type` the stream's content type, `X-Amz-Executed-Version`, and an
        event stream (klambda.eventstream): a PayloadChunk per chunk, then InvokeComplete
        (with ErrorCode and ErrorDetails when the function failed, LogResult with Tail).
        A handler that does not stream answers with one PayloadChunk, as on Lambda.

    a RESPONSE_STREAM function URL
        the status, headers and cookies of the metadata the handler sent first (Lambda's
        `application/vnd.awslambda.http-integration-response` prelude), else 200 with the
        stream's content type; then the bytes as they come. A handler that does not stream
        is answered as a BUFFERED URL would be.

A client that goes away mid-stream does not stop the invocation: the rest of the chunks
are dropped and the environment finishes as usual.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from klambda import eventstream
from klambda.api import limits
from klambda.errors import InvalidParameterValue, KlambdaError, RequestTooLarge, TooManyRequests
from klambda.router.invoke import Invoker
from klambda.router.triggers import UrlConfig
from klambda.triggers import httpapi

if TYPE_CHECKING:
    from klambda.router.http_api.gateway import Gateway

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\0" * 8
STREAM_PATH = "/2021-11-15/functions/{name}/response-streaming-invocations"


class _ResponseSink:
    """Writes what the handler streams to an HTTP response, started on the first bytes."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self.content_type = ""
        self.version = ""
        self.gone = False

    async def start(self, content_type: str, version: str) -> None:
        self.content_type, self.version = content_type, version

    async def write(self, data: bytes) -> None:
        if self.gone:
            return
        try:
            await self._write(data)
        except (ConnectionError, RuntimeError):
            self.gone = True  # the client left: drain the rest, never stop the environment

    async def _write(self, data: bytes) -> None:
        raise NotImplementedError


class _EventStreamSink(_ResponseSink):
    def __init__(self, request: web.Request, request_id: str) -> None:
        super().__init__(request)
        self.request_id = request_id

    async def prepare(self, content_type: str, version: str) -> web.StreamResponse:
        if self.response is None:
            self.response = web.StreamResponse(
                status=200,
                headers={
                    "Content-Type": content_type or "application/octet-stream",
                    "X-Amz-Executed-Version": version,
                    "x-amzn-RequestId": self.request_id,
                },
            )
            await self.response.prepare(self.request)
        return self.response

    async def _write(self, data: bytes) -> None:
        resp = await self.prepare(self.content_type, self.version)
        await resp.write(eventstream.payload_chunk(data))


class StreamingApi:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(STREAM_PATH, self.invoke_with_response_stream)

    async def invoke_with_response_stream(self, request: web.Request) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > limits.SYNC_PAYLOAD_MAX_BYTES:
            raise RequestTooLarge(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                f"InvokeWithResponseStream operation (got {length} bytes)"
            )
        payload = await request.read()
        itype = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if itype == "Event":
            raise InvalidParameterValue("InvocationType: Event cannot stream its response")
        rid = str(uuid.uuid4())
        sink = _EventStreamSink(request, rid)
        tail = request.headers.get("X-Amz-Log-Type") == "Tail"
        res = await self.invoker.invoke(
            request.match_info["name"],
            payload,
            qualifier=request.query.get("Qualifier"),
            invocation_type=itype,
            log_tail=tail,
            request_id=rid,
            stream=sink,
        )
        if res.status_code == 204:  # DryRun
            return web.Response(
                status=204, headers={"X-Amz-Executed-Version": res.executed_version}
            )
        resp = sink.response
        if resp is None:  # nothing streamed: the result is one chunk, as Lambda sends it
            resp = await sink.prepare("application/json", res.executed_version)
            if res.function_error is None and res.payload:
                await resp.write(eventstream.payload_chunk(res.payload))
        code = details = None
        if res.function_error is not None:
            code, details = _error_of(res.payload, res.function_error)
        log = base64.b64encode(res.log_result().encode()).decode() if tail else None
        if not sink.gone:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await resp.write(eventstream.invoke_complete(code, details, log))
                await resp.write_eof()
        return resp


def _error_of(payload: bytes, function_error: str) -> tuple[str, str]:
    try:
        body = json.loads(payload)
    except ValueError:
        return function_error, payload.decode("utf-8", "replace")
    if isinstance(body, dict):
        return str(body.get("errorType") or function_error), str(body.get("errorMessage", ""))
    return function_error, payload.decode("utf-8", "replace")


# -- function URLs ----------------------------------------------------------------------


class _UrlSink(_ResponseSink):
    """Lambda's HTTP integration framing: JSON metadata, 8 NULs, then the body."""

    def __init__(self, request: web.Request) -> None:
        super().__init__(request)
        self.pending = b""
        self.status = 0

    async def _write(self, data: bytes) -> None:
        if self.response is not None:
            await self.response.write(data)
            return
        if self.content_type == HTTP_INTEGRATION:
            self.pending += data
            head, sep, rest = self.pending.partition(DELIMITER)
            if not sep:
                return  # the metadata is not complete yet
            try:
                meta = json.loads(head)
            except ValueError:
                meta = {}
            await self._prepare(meta if isinstance(meta, dict) else {})
        else:
            rest = data
            ctype = self.content_type or "application/octet-stream"
            await self._prepare({"headers": {"Content-Type": ctype}})
        if rest:
            assert self.response is not None
            await self.response.write(rest)

    async def _prepare(self, meta: dict[str, Any]) -> None:
        status = meta.get("statusCode", 200)
        self.status = status if isinstance(status, int) and 100 <= status <= 599 else 200
        resp = web.StreamResponse(status=self.status)
        for k, v in (meta.get("headers") or {}).items():
            resp.headers.add(str(k), str(v))
        for cookie in meta.get("cookies") or []:
            resp.headers.add("Set-Cookie", str(cookie))
        self.response = resp
        await resp.prepare(self.request)


def _framed(payload: bytes) -> httpapi.Response:
    head, sep, rest = payload.partition(DELIMITER)
    try:
        meta = json.loads(head) if sep else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        return httpapi.Response(200, [("content-type", "application/octet-stream")], payload)
    headers = [(str(k), str(v)) for k, v in (meta.get("headers") or {}).items()]
    headers += [("set-cookie", str(c)) for c in meta.get("cookies") or []]
    status = meta.get("statusCode", 200)
    return httpapi.Response(status if isinstance(status, int) else 200, headers, rest)


async def stream_url(
    gateway: Gateway,
    request: web.Request,
    url: UrlConfig,
    event: dict[str, Any],
    labels: tuple[str, str, str],
    started: float,
) -> web.StreamResponse:
    sink = _UrlSink(request)
    rid = event["requestContext"]["requestId"]
    try:
        res = await gateway.invoker.invoke(
            url.function, json.dumps(event).encode(), qualifier=url.alias, stream=sink
        )
    except TooManyRequests:
        return gateway._answer(
            httpapi.message(429, "Too Many Requests"), labels, "FunctionUrl", started, rid,
            "Throttled",
        )  # fmt: skip
    except KlambdaError as err:
        return gateway._answer(
            httpapi.internal_error(), labels, "FunctionUrl", started, rid, err.code
        )
    if sink.response is None:  # the handler did not stream: a buffered answer
        if res.function_error is not None:
            resp, reason = httpapi.message(502, "Internal Server Error"), "FunctionError"
        else:
            try:
                resp, reason = httpapi.response_v2(res.payload), None
            except httpapi.BadResponse:
                # a stream that arrived whole (from a worker pod): its framing, then bytes
                resp, reason = _framed(res.payload), None
        return gateway._answer(resp, labels, "FunctionUrl", started, rid, reason)
    m = gateway.metrics
    m.http_responses.labels(*labels, httpapi.status_class(sink.status)).inc()
    m.http_duration.labels(*labels).observe(time.perf_counter() - started)
    if res.function_error is not None:
        m.failures.labels(*labels, "FunctionUrl", "FunctionError").inc()
    if not sink.gone:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sink.response.write_eof()
    return sink.response
