"""HTTP API routes on a real router, with plain HTTP clients: path parameters, query
strings, cookies, a base64 body, payload 1.0, the response mapping, and what API Gateway
answers itself: 404 for no route, 503 past the integration timeout, 429 when throttled,
500 for a function error."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from klambda.testing import RouterRunner

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: items}
spec:
  runtime: python3.11
  handler: app.handler
  events:
    getItem: {type: HttpApi, path: "/items/{id}", method: GET}
    putFile: {type: HttpApi, path: "/files/{path+}", method: PUT}
    legacy: {type: HttpApi, path: "/legacy/{proxy+}", payloadFormatVersion: "1.0"}
  code:
    inline:
      app.py: |
        import json
        def handler(event, context):
            if event.get("version") == "1.0":
                return {"statusCode": 202, "multiValueHeaders": {"X-Seen": ["a", "b"]},
                        "body": json.dumps({"resource": event["resource"],
                                            "path": event["path"],
                                            "query": event["multiValueQueryStringParameters"]})}
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json", "X-Route": event["routeKey"]},
                "cookies": ["session=abc; Path=/", "theme=dark"],
                "body": json.dumps(event),
            }
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: bare}
spec:
  runtime: python3.11
  handler: app.handler
  events:
    hello: {type: HttpApi, path: /hello}
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {"hello": event["queryStringParameters"]["name"]}
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: slow}
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 5
  events:
    slow: {type: HttpApi, path: /slow, timeoutInMillis: 500}
  code:
    inline:
      app.py: |
        import time
        def handler(event, context):
            time.sleep(2)
            return "late"
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: boom}
spec:
  runtime: python3.11
  handler: app.handler
  events:
    boom: {type: HttpApi, path: /boom, method: POST}
    binary: {type: HttpApi, path: /binary}
  code:
    inline:
      app.py: |
        import base64
        def handler(event, context):
            if event["rawPath"] == "/binary":
                return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                        "isBase64Encoded": True,
                        "body": base64.b64encode(b"\\x89PNG\\x00\\xff").decode()}
            raise ValueError("broken on purpose")
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: stopped}
spec:
  runtime: python3.11
  handler: app.handler
  reservedConcurrency: 0
  events:
    stopped: {type: HttpApi, path: /stopped}
  code:
    inline:
      app.py: |
        def handler(event, context):
            return "never"
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("httpapi")
    fns = tmp / "fns"
    fns.mkdir()
    (fns / "functions.yaml").write_text(FUNCTIONS)
    with RouterRunner.up(fns, "-q", workdir=tmp) as r:
        yield r


def request(
    r: RouterRunner,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def route_event(r: RouterRunner) -> dict[str, Any]:
    """GET /items/42 with a query string, cookies and a header, through the route `GET
    /items/{id}` of `items`: the response mapped from its result and the payload 2.0 event
    it saw (the tests of cluster mode call it on a cluster router too)."""
    status, headers, body = request(
        r,
        "GET",
        "/http/items/42?color=red&color=blue&size=L",
        headers={"Cookie": "a=1; b=2", "X-Custom": "yes"},
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Route"] == "GET /items/{id}"
    assert headers.get_all("Set-Cookie") == ["session=abc; Path=/", "theme=dark"]
    event: dict[str, Any] = json.loads(body)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "color=red&color=blue&size=L"
    assert event["queryStringParameters"] == {"color": "red,blue", "size": "L"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-custom"] == "yes"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["stage"] == "$default"
    assert event["isBase64Encoded"] is False
    assert headers["apigw-requestid"] == event["requestContext"]["requestId"]
    return event


def binary_body_event(r: RouterRunner) -> dict[str, Any]:
    """A binary PUT through `PUT /files/{path+}` of `items`: the body arrives base64."""
    data = bytes(range(256))
    status, _, body = request(
        r,
        "PUT",
        "/http/files/a/b/c.bin",
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 200
    event: dict[str, Any] = json.loads(body)
    assert event["routeKey"] == "PUT /files/{path+}"
    assert event["pathParameters"] == {"path": "a/b/c.bin"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data
    return event


def check_payload_format_1(r: RouterRunner) -> None:
    """`ANY /legacy/{proxy+}` of `items`, payload 1.0: multi-value query and headers."""
    status, headers, body = request(r, "DELETE", "/http/legacy/x/y?k=1&k=2")
    assert status == 202
    assert headers.get_all("X-Seen") == ["a", "b"]
    assert json.loads(body) == {
        "resource": "/legacy/{proxy+}",
        "path": "/legacy/x/y",
        "query": {"k": ["1", "2"]},
    }


def check_not_found(r: RouterRunner) -> None:
    """No route, or a route of another method: API Gateway's own 404."""
    status, headers, body = request(r, "GET", "/http/nowhere")
    assert (status, body) == (404, b'{"message": "Not Found"}')
    assert headers["apigw-requestid"]
    assert request(r, "POST", "/http/items/1")[::2] == (404, b'{"message": "Not Found"}')


def test_route_with_path_parameters_query_and_cookies(router: RouterRunner) -> None:
    route_event(router)


def test_binary_body_arrives_base64(router: RouterRunner) -> None:
    binary_body_event(router)


def test_base64_response_body_and_a_bare_result(router: RouterRunner) -> None:
    status, headers, body = request(router, "GET", "/http/binary")
    assert (status, headers["Content-Type"], body) == (200, "image/png", b"\x89PNG\x00\xff")
    status, headers, body = request(router, "GET", "/http/hello?name=Ada")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"hello": "Ada"}


def test_payload_format_1(router: RouterRunner) -> None:
    check_payload_format_1(router)


def test_what_the_gateway_answers_itself(router: RouterRunner) -> None:
    check_not_found(router)  # the route /items/{id} exists for GET only
    assert request(router, "POST", "/http/boom")[::2] == (
        500,
        b'{"message": "Internal Server Error"}',
    )
    assert request(router, "GET", "/http/slow")[::2] == (503, b'{"message": "Service Unavailable"}')
    assert request(router, "GET", "/http/stopped")[::2] == (
        429,
        b'{"message": "Too Many Requests"}',
    )
    # Lambda's own API is untouched by the prefix
    assert request(router, "GET", "/2015-03-31/functions/items")[0] == 200


def test_metrics_per_route(router: RouterRunner) -> None:
    request(router, "GET", "/http/hello?name=Bo")
    request(router, "GET", "/http/slow")
    assert router.metric("klambda_trigger_http_responses_total", trigger="hello") >= 1
    assert (
        router.metric("klambda_trigger_http_responses_total", trigger="slow", status_class="5xx")
        >= 1
    )
    assert router.metric("klambda_trigger_failures_total", trigger="slow", reason="Timeout") >= 1
    assert router.metric("klambda_trigger_events_total", trigger="hello", type="HttpApi") >= 1
    assert router.metric("klambda_trigger_http_duration_seconds_count", trigger="hello") >= 1
