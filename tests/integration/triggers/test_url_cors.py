"""CORS on function URLs, on a real router: the router answers a browser's preflight
without invoking the function and sets the CORS headers on buffered and streamed answers,
in place of the function's own."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from klambda.testing import RouterRunner

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: shop}
spec:
  runtime: python3.11
  handler: app.handler
  functionUrl:
    cors:
      allowOrigins: [https://shop.example.com]
      allowMethods: [GET, POST]
      allowHeaders: [content-type]
      exposeHeaders: [x-order]
      maxAge: 300
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {"statusCode": 200, "headers": {"x-order": "7",
                    "Access-Control-Allow-Origin": "*"}, "body": "ok"}
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: feed}
spec:
  runtime: python3.11
  handler: app.handler
  functionUrl:
    invokeMode: RESPONSE_STREAM
    cors: {allowOrigins: ["*"]}
  code:
    inline:
      app.py: |
        def handler(event, context):
            yield {"statusCode": 200, "headers": {"Content-Type": "text/plain"}}
            yield "a\\n"
"""

SHOP = "https://shop.example.com"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("cors")
    (tmp / "fns").mkdir()
    (tmp / "fns" / "fns.yaml").write_text(FUNCTIONS)
    with RouterRunner.up(tmp / "fns", "-q", workdir=tmp) as r:
        yield r


def call(
    r: RouterRunner, method: str, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def test_a_preflight_is_answered_without_invoking(router: RouterRunner) -> None:
    status, headers, body = call(
        router, "OPTIONS", "/url/shop/orders",
        Origin=SHOP, **{"Access-Control-Request-Method": "POST"},
    )  # fmt: skip
    assert (status, body) == (200, b"")
    assert headers["access-control-allow-origin"] == SHOP
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "content-type"
    assert headers["access-control-max-age"] == "300"
    assert router.metric("klambda_invocations_total", function="shop") == 0
    # from an origin not allowed: no CORS headers, so the browser refuses
    _, headers, _ = call(
        router, "OPTIONS", "/url/shop/", Origin="https://evil.example",
        **{"Access-Control-Request-Method": "POST"},
    )  # fmt: skip
    assert not [k for k in headers if k.startswith("access-control-")]


def test_answers_carry_the_urls_cors_headers_not_the_functions(router: RouterRunner) -> None:
    status, headers, body = call(router, "GET", "/url/shop/", Origin=SHOP)
    assert (status, body) == (200, b"ok")
    assert headers["access-control-allow-origin"] == SHOP  # not the function's `*`
    assert headers["access-control-expose-headers"] == "x-order"
    assert headers["x-order"] == "7"
    # the count the preflight test saw at 0 does count this call
    assert router.metric("klambda_invocations_total", function="shop") == 1
    _, headers, _ = call(router, "GET", "/url/shop/", Origin="https://evil.example")
    assert "access-control-allow-origin" not in headers
    # a streamed answer too
    status, headers, body = call(router, "GET", "/url/feed/", Origin="https://any.example")
    assert (status, body) == (200, b"a\n")
    assert headers["access-control-allow-origin"] == "*"
