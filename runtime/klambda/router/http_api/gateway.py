"""The HTTP API (API Gateway's role) and function URLs, served on the router's HTTP port.

    /http/<path>                  the HTTP API: the routes the `HttpApi` triggers declare
    /url/<function>[:<alias>]/…   a function URL (`functionUrl` on a Function or Alias)

Both prefixes keep these paths apart from Lambda's REST API (`/2015-03-31/…`), klambda's
(`/klambda/v1/…`), `/metrics` and `/healthz`; the function sees the path after the prefix
(`rawPath` `/items/1` for `/http/items/1`), as behind a custom domain's API mapping.

A request becomes the event of its route's payload format (klambda.triggers.httpapi),
goes through the one invoke path (`Invoker.invoke`, synchronous), and the function's
result becomes the HTTP response with API Gateway's rules. What API Gateway answers itself,
so does this: 404 `{"message":"Not Found"}` for no route, 429 when the function is
throttled, 413 over the payload limit, 503 when the integration times out (the route's
`timeoutInMillis`, 29 s by default; the invocation itself runs on to its own timeout, as
Lambda's does), 500 for a function error or a result that cannot be mapped.

A function URL in `RESPONSE_STREAM` mode streams: the handler's chunks reach the client as
they are produced (klambda.router.http_api.streaming). A URL with `authType: AWS_IAM` serves
only SigV4-signed requests of identities allowed to call it (klambda.router.url_access),
and answers any other with Lambda's 403 `{"Message": "Forbidden"}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from klambda.api.triggers import HttpApiEvent
from klambda.errors import KlambdaError, RequestTooLarge, TooManyRequests
from klambda.router import url_access
from klambda.router.access import Access
from klambda.router.access import Request as AccessRequest
from klambda.router.http_api.streaming import stream_url
from klambda.router.invoke import Invoker, InvokeResult
from klambda.router.triggers import Declared, Triggers, UrlConfig, cors_of
from klambda.trigger_metrics import TriggerMetrics
from klambda.triggers import cors, httpapi
from klambda.triggers.httpapi import Api, BadResponse, IamCaller, Request, Response, Route

log = logging.getLogger("klambda.router.gateway")

HTTP_PREFIX = "/http"
URL_PREFIX = "/url"
API_ID = "klambda"
# API Gateway takes 10 MB; the function, 6 MB of event (the invoke path refuses more)
BODY_MAX_BYTES = 10 * 1024 * 1024


def request_of(request: web.Request, body: bytes, raw_path: str) -> Request:
    version = request.version
    return Request(
        method=request.method,
        raw_path=raw_path or "/",
        raw_query=request.raw_path.partition("?")[2],
        headers=list(request.headers.items()),
        body=body,
        source_ip=request.remote or "",
        request_id=str(uuid.uuid4()),
        host=request.host,
        protocol=f"HTTP/{version.major}.{version.minor}",
    )


def to_web(resp: Response, request_id: str) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict(resp.headers)
    headers["apigw-requestid"] = request_id
    return web.Response(status=resp.status, headers=headers, body=resp.body)


def forbidden(message: str = url_access.FORBIDDEN) -> Response:
    """A function URL's refusal, as Lambda words it."""
    body = json.dumps({"Message": message}).encode()
    return Response(403, [("content-type", "application/json")], body)


class Gateway:
    def __init__(
        self,
        invoker: Invoker,
        triggers: Triggers,
        metrics: TriggerMetrics,
        account: str,
        access: Access | None = None,
    ) -> None:
        self.invoker = invoker
        self.triggers = triggers
        self.metrics = metrics
        self.account = account
        # who may call AWS_IAM function URLs; None: no access control, so nobody
        self.access = access
        self._running: set[asyncio.Future[InvokeResult]] = set()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", HTTP_PREFIX, self.http_api)
        router.add_route("*", HTTP_PREFIX + "/{tail:.*}", self.http_api)
        router.add_route("*", URL_PREFIX + "/{target}", self.function_url)
        router.add_route("*", URL_PREFIX + "/{target}/{tail:.*}", self.function_url)

    # -- the HTTP API --------------------------------------------------------------------

    async def http_api(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.partition("?")[0][len(HTTP_PREFIX) :] or "/"
        table = self.triggers.table
        if cors.is_preflight(request.method, request.headers):
            # API Gateway answers a preflight itself when the route asked for has CORS
            asked = request.headers["Access-Control-Request-Method"].upper()
            wanted = table.routes.match(asked, raw_path)
            settings = self._cors(table.by_key[wanted[0].target]) if wanted else None
            if settings is not None:
                return web.Response(status=204, headers=cors.preflight(settings, request.headers))
        found = table.routes.match(request.method, raw_path)
        if found is None:
            return to_web(httpapi.message(404, "Not Found"), str(uuid.uuid4()))
        route, params = found
        d = table.by_key[route.target]
        labels = (d.function, d.alias or "", d.name)
        started = time.perf_counter()
        body = await self._body(request)
        if body is None:
            resp = httpapi.message(413, "Request Entity Too Large")
            return self._answer(resp, labels, "HttpApi", started, str(uuid.uuid4()), None)
        req = request_of(request, body, raw_path)
        http_event = d.event
        assert isinstance(http_event, HttpApiEvent)
        api = Api(API_ID, self.account, stage_variables=http_event.stage_variables)
        if route.payload_format == "1.0":
            event = httpapi.event_v1(req, route, params, api)
        else:
            event = httpapi.event_v2(req, route.route_key, params, api)
        self.metrics.events.labels(*labels, "HttpApi").inc()
        resp, reason = await self._invoke(d.function, d.alias, event, route)
        settings = self._cors(d)
        if settings is not None:
            headers = cors.response_headers(settings, request.headers, resp.headers)
            resp = Response(resp.status, headers, resp.body)
        return self._answer(resp, labels, "HttpApi", started, req.request_id, reason)

    @staticmethod
    def _cors(d: Declared) -> cors.Cors | None:
        return cors_of(d.event.cors) if isinstance(d.event, HttpApiEvent) else None

    async def _body(self, request: web.Request) -> bytes | None:
        if request.content_length is not None and request.content_length > BODY_MAX_BYTES:
            return None
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return None

    async def _invoke(
        self, function: str, alias: str | None, event: dict[str, Any], route: Route | None
    ) -> tuple[Response, str | None]:
        """(the response, why it failed or None)."""
        call = asyncio.ensure_future(
            self.invoker.invoke(function, json.dumps(event).encode(), qualifier=alias)
        )
        timeout = route.timeout_s if route is not None else None
        done, _ = await asyncio.wait({call}, timeout=timeout)
        if not done:
            # API Gateway gives up; the invocation runs on to its own end, as on Lambda
            self._running.add(call)
            call.add_done_callback(self._finished)
            return httpapi.message(503, "Service Unavailable"), "Timeout"
        try:
            result = call.result()
        except TooManyRequests:
            return httpapi.message(429, "Too Many Requests"), "Throttled"
        except RequestTooLarge:
            return httpapi.message(413, "Request Entity Too Large"), "TooLarge"
        except KlambdaError as err:
            log.warning("%s: %s", function, err)
            return httpapi.internal_error(), err.code
        if result.function_error:
            return httpapi.internal_error(), "FunctionError"
        try:
            if route is not None and route.payload_format == "1.0":
                return httpapi.response_v1(result.payload), None
            return httpapi.response_v2(result.payload), None
        except BadResponse as err:
            log.warning("%s: the response cannot be mapped: %s", function, err)
            return httpapi.internal_error(), "BadResponse"

    def _finished(self, call: asyncio.Future[InvokeResult]) -> None:
        self._running.discard(call)
        if not call.cancelled() and call.exception() is not None:
            log.debug("an invocation given up on ended with %s", call.exception())

    def _answer(
        self,
        resp: Response,
        labels: tuple[str, str, str],
        kind: str,
        started: float,
        request_id: str,
        reason: str | None,
    ) -> web.Response:
        m = self.metrics
        m.http_responses.labels(*labels, httpapi.status_class(resp.status)).inc()
        m.http_duration.labels(*labels).observe(time.perf_counter() - started)
        if reason is not None:
            m.failures.labels(*labels, kind, reason).inc()
        return to_web(resp, request_id)

    # -- function URLs -------------------------------------------------------------------

    def _url(self, request: web.Request) -> tuple[UrlConfig | None, str]:
        target = request.match_info["target"]
        url = self.triggers.table.urls.get(target)
        prefix = f"{URL_PREFIX}/{target}"
        raw_path = request.raw_path.partition("?")[0][len(prefix) :] or "/"
        return url, raw_path

    async def function_url(self, request: web.Request) -> web.StreamResponse:
        url, raw_path = self._url(request)
        if url is None:
            return web.json_response({"Message": "Forbidden"}, status=403)
        labels = (url.function, url.alias or "", "functionUrl")
        started = time.perf_counter()
        cors_ = url.cors
        if cors_ is not None and cors.is_preflight(request.method, request.headers):
            # answered here, the function not invoked (Lambda's function URLs)
            return web.Response(status=200, headers=cors.preflight(cors_, request.headers))
        body = await self._body(request)
        if body is None:
            resp = httpapi.message(413, "Request Entity Too Large")
            return self._answer(resp, labels, "FunctionUrl", started, str(uuid.uuid4()), None)
        caller: IamCaller | None = None
        if url.config.auth_type == "AWS_IAM":
            try:
                caller = await self._iam_caller(request, url, body)
            except url_access.Refused as err:
                log.warning("function URL %s: refused: %s", url.path_name, err.reason)
                resp = forbidden(err.message)
                rid = str(uuid.uuid4())
                return self._answer(resp, labels, "FunctionUrl", started, rid, "Forbidden")
        req = request_of(request, body, raw_path)
        api = Api(url.path_name, self.account)
        event = httpapi.event_v2(req, "$default", {}, api, caller)
        self.metrics.events.labels(*labels, "FunctionUrl").inc()
        if url.config.invoke_mode == "RESPONSE_STREAM":
            return await stream_url(self, request, url, event, labels, started)
        resp, reason = await self._invoke(url.function, url.alias, event, None)
        if reason == "FunctionError":
            resp = httpapi.message(502, "Internal Server Error")
        if cors_ is not None:
            headers = cors.response_headers(cors_, request.headers, resp.headers)
            resp = httpapi.Response(resp.status, headers, resp.body)
        return self._answer(resp, labels, "FunctionUrl", started, req.request_id, reason)

    async def _iam_caller(self, request: web.Request, url: UrlConfig, body: bytes) -> IamCaller:
        """Who signed this request to an AWS_IAM URL, if they may call it (else Refused)."""
        signed_url = f"{request.scheme}://{request.host}{request.raw_path}"
        as_sent = AccessRequest(request.method, signed_url, dict(request.headers), body)
        return await url_access.check(self.access, as_sent, url.function, self.account)
