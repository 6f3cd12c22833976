"""API Gateway HTTP APIs: routes, the request event (payload format 2.0 and 1.0), and the
mapping of a function's result to the HTTP response.

Routes are `METHOD /path` with literal segments, `{name}` variables and a last greedy
`{name+}`, or `$default`. A request takes the most specific route, as API Gateway chooses:
segment by segment a literal beats a variable beats a greedy variable, then a route of
the request's method beats `ANY`; `$default` takes what nothing else matches.

Payload 2.0: `version`, `routeKey`, `rawPath`, `rawQueryString`, `cookies`, `headers`
(lower case, repeated ones joined by commas), `queryStringParameters` (likewise),
`pathParameters`, `stageVariables`, `requestContext.http`, `body` (base64 with
`isBase64Encoded` unless the content type is text). The function may answer with
`{statusCode, headers, cookies, body, isBase64Encoded}`; anything else is sent as JSON with
200. Payload 1.0 is the REST API's proxy event (`resource`, `path`, `httpMethod`,
`multiValueHeaders`, …), and its answer must have a `statusCode`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

DEFAULT_ROUTE = "$default"
DEFAULT_STAGE = "$default"
_LITERAL, _VARIABLE, _GREEDY = 3, 2, 1
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
TEXT_SUFFIXES = ("+json", "+xml")
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Route:
    method: str  # ANY or an HTTP method
    path: str  # /items/{id}, /{proxy+} or $default
    target: str  # who serves it: the trigger's key
    payload_format: str = "2.0"
    timeout_s: float = 29.0

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    def segments(self) -> list[str]:
        return [] if self.path in ("/", DEFAULT_ROUTE) else self.path[1:].split("/")


@dataclass
class RouteTable:
    routes: dict[str, Route] = field(default_factory=dict)  # by route key

    def add(self, route: Route) -> str | None:
        """Add a route; if its route key is taken, keep the first and return its target."""
        have = self.routes.get(route.route_key)
        if have is not None:
            return have.target
        self.routes[route.route_key] = route
        return None

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route a request takes and its path parameters, or None (a 404)."""
        segments = [] if raw_path in ("", "/") else raw_path.lstrip("/").split("/")
        best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
        for route in self.routes.values():
            if route.path == DEFAULT_ROUTE:
                continue
            if route.method not in ("ANY", method):
                continue
            found = _match(route.segments(), segments)
            if found is None:
                continue
            score, params = found
            rank = (*score, 1 if route.method == method else 0)
            if best is None or rank > best[0]:
                best = (rank, route, params)
        if best is not None:
            return best[1], best[2]
        default = self.routes.get(DEFAULT_ROUTE)
        return (default, {}) if default is not None else None


def _match(
    pattern: list[str], segments: list[str]
) -> tuple[tuple[int, ...], dict[str, str]] | None:
    params: dict[str, str] = {}
    score: list[int] = []
    for i, p in enumerate(pattern):
        if p.startswith("{") and p.endswith("+}"):
            rest = segments[i:]
            if not rest or rest == [""]:
                return None
            params[p[1:-2]] = unquote("/".join(rest))
            score.append(_GREEDY)
            return tuple(score), params
        if i >= len(segments):
            return None
        if p.startswith("{") and p.endswith("}"):
            if not segments[i]:
                return None
            params[p[1:-1]] = unquote(segments[i])
            score.append(_VARIABLE)
        elif p == unquote(segments[i]):
            score.append(_LITERAL)
        else:
            return None
    if len(segments) != len(pattern):
        return None
    return tuple(score), params


# -- the request event ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An HTTP request as the gateway received it."""

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    request_id: str
    host: str = "localhost"
    protocol: str = "HTTP/1.1"
    time: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        values = [v for k, v in self.headers if k.lower() == lname]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Api:
    """What the event says about the API itself."""

    api_id: str
    account: str
    stage: str = DEFAULT_STAGE
    stage_variables: Mapping[str, str] | None = None


@dataclass(frozen=True)
class IamCaller:
    """Who signed a request to an AWS_IAM function URL: the event's
    `requestContext.authorizer.iam`, with the fields of Lambda's payload 2.0."""

    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str

    def wire(self) -> dict[str, Any]:
        return {
            "accessKey": self.access_key,
            "accountId": self.account_id,
            "callerId": self.caller_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": self.user_arn,
            "userId": self.user_id,
        }


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    ct = content_type.split(";", 1)[0].strip().lower()
    return ct.startswith(TEXT_TYPES) or ct.endswith(TEXT_SUFFIXES) or ct == FORM


def body_of(req: Request) -> tuple[str | None, bool]:
    """The body as the event carries it: text, or base64 when not text."""
    if not req.body:
        return None, False
    if is_text(req.header("content-type")):
        try:
            return req.body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(req.body).decode(), True


def request_time(t: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))


def _domain(req: Request) -> tuple[str, str]:
    host = req.host.rsplit(":", 1)[0] if not req.host.startswith("[") else req.host
    return host, host.split(".", 1)[0]


def _joined(pairs: Iterable[tuple[str, str]], lower: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        key = k.lower() if lower else k
        out[key] = f"{out[key]},{v}" if key in out else v
    return out


def event_v2(
    req: Request,
    route_key: str,
    path_params: Mapping[str, str],
    api: Api,
    iam: IamCaller | None = None,
) -> dict[str, Any]:
    """Payload format 2.0 (HTTP APIs, function URLs); `iam`: the signer of a request to an
    AWS_IAM function URL."""
    cookies = [
        c.strip()
        for k, v in req.headers
        if k.lower() == "cookie"
        for c in v.split(";")
        if c.strip()
    ]
    headers = _joined(((k, v) for k, v in req.headers if k.lower() != "cookie"), lower=True)
    query = _joined(parse_qsl(req.raw_query, keep_blank_values=True), lower=False)
    domain, prefix = _domain(req)
    body, b64 = body_of(req)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    context: dict[str, Any] = {"accountId": api.account, "apiId": api.api_id}
    if iam is not None:
        context["authorizer"] = {"iam": iam.wire()}
    event["requestContext"] = {
        **context,
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": req.method,
            "path": req.raw_path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": req.request_id,
        "routeKey": route_key,
        "stage": api.stage,
        "time": request_time(req.time),
        "timeEpoch": int(req.time * 1000),
    }
    if body is not None:
        event["body"] = body
    if path_params:
        event["pathParameters"] = dict(path_params)
    event["isBase64Encoded"] = b64
    if api.stage_variables:
        event["stageVariables"] = dict(api.stage_variables)
    return event


def event_v1(
    req: Request, route: Route, path_params: Mapping[str, str], api: Api
) -> dict[str, Any]:
    """Payload format 1.0: the REST API's proxy event (single values take the last one)."""
    multi_headers: dict[str, list[str]] = {}
    for k, v in req.headers:
        multi_headers.setdefault(k, []).append(v)
    multi_query: dict[str, list[str]] = {}
    for k, v in parse_qsl(req.raw_query, keep_blank_values=True):
        multi_query.setdefault(k, []).append(v)
    domain, prefix = _domain(req)
    body, b64 = body_of(req)
    resource = req.raw_path if route.path == DEFAULT_ROUTE else route.path
    agent = req.header("user-agent")
    return {
        "version": "1.0",
        "resource": resource,
        "path": req.raw_path,
        "httpMethod": req.method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": api.account,
            "apiId": api.api_id,
            "domainName": domain,
            "domainPrefix": prefix,
            "extendedRequestId": req.request_id,
            "httpMethod": req.method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": req.source_ip,
                "user": None,
                "userAgent": agent,
                "userArn": None,
            },
            "path": req.raw_path,
            "protocol": req.protocol,
            "requestId": req.request_id,
            "requestTime": request_time(req.time),
            "requestTimeEpoch": int(req.time * 1000),
            "resourceId": route.route_key,
            "resourcePath": resource,
            "stage": api.stage,
        },
        "pathParameters": dict(path_params) or None,
        "stageVariables": dict(api.stage_variables) if api.stage_variables else None,
        "body": body,
        "isBase64Encoded": b64,
    }


# -- the response -----------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class BadResponse(ValueError):
    """The function's result cannot be mapped to an HTTP response (API Gateway: 500)."""


def internal_error() -> Response:
    return message(500, "Internal Server Error")


def message(status: int, text: str) -> Response:
    """API Gateway's own answers: `{"message": "Not Found"}` and the like."""
    return Response(
        status,
        [("content-type", "application/json")],
        json.dumps({"message": text}).encode(),
    )


def response_v2(payload: bytes) -> Response:
    """Map a function's result with payload format 2.0's rules; BadResponse if it cannot be."""
    try:
        result = json.loads(payload) if payload else None
    except ValueError:
        raise BadResponse("the function's result is not JSON") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        # a bare value: sent as JSON with 200; a bare string is the body itself
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(200, [("content-type", "application/json")], body.encode())
    return _structured(result, allow_multi=False)


def response_v1(payload: bytes) -> Response:
    try:
        result = json.loads(payload) if payload else None
    except ValueError:
        raise BadResponse("the function's result is not JSON") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        raise BadResponse("payload format 1.0 needs a statusCode in the function's result")
    return _structured(result, allow_multi=True)


def _structured(result: Mapping[str, Any], allow_multi: bool) -> Response:
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for k, v in (result.get("headers") or {}).items():
        headers.append((str(k), _header_value(v)))
    if allow_multi:
        for k, values in (result.get("multiValueHeaders") or {}).items():
            for v in values if isinstance(values, list) else [values]:
                headers.append((str(k), _header_value(v)))
    else:
        for cookie in result.get("cookies") or []:
            headers.append(("set-cookie", str(cookie)))
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        data = json.dumps(body).encode()
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadResponse("isBase64Encoded is true but the body is not base64") from None
    else:
        data = body.encode()
    if not any(k.lower() == "content-type" for k, _ in headers) and data:
        headers.append(("content-type", "application/json"))
    return Response(status, headers, data)


def _header_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def status_class(status: int) -> str:
    return f"{status // 100}xx"
