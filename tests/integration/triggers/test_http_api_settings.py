"""An HTTP API route's stage variables and CORS settings, on a real router: the event
carries `stageVariables`; a preflight for the route is answered without invoking, and the
answers carry the route's CORS headers in place of the function's."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

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
    getItem:
      type: HttpApi
      path: /items/{id}
      method: GET
      stageVariables: {table: items-prod, region: eu-west-1}
      cors: {allowOrigins: [https://shop.example.com], allowMethods: [GET], maxAge: 60}
    legacy:
      type: HttpApi
      path: /v1/items/{id}
      method: GET
      payloadFormatVersion: "1.0"
      stageVariables: {table: items-v1}
  code:
    inline:
      app.py: |
        import json
        def handler(event, context):
            return {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"},
                    "body": json.dumps({"stage": event["stageVariables"]})}
"""

SHOP = "https://shop.example.com"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("httpapi-settings")
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


def test_stage_variables_reach_the_event_in_both_payload_formats(router: RouterRunner) -> None:
    status, _, body = call(router, "GET", "/http/items/1")
    assert status == 200
    assert json.loads(body) == {"stage": {"table": "items-prod", "region": "eu-west-1"}}
    status, _, body = call(router, "GET", "/http/v1/items/1")
    assert status == 200
    assert json.loads(body) == {"stage": {"table": "items-v1"}}


def test_cors_preflight_and_answers(router: RouterRunner) -> None:
    before = router.metric("klambda_invocations_total", function="items")
    status, headers, body = call(
        router, "OPTIONS", "/http/items/7",
        Origin=SHOP, **{"Access-Control-Request-Method": "GET"},
    )  # fmt: skip
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == SHOP
    assert headers["access-control-allow-methods"] == "GET"
    assert headers["access-control-max-age"] == "60"
    assert router.metric("klambda_invocations_total", function="items") == before
    # an answer: the route's CORS headers, not the function's `*`
    _, headers, _ = call(router, "GET", "/http/items/7", Origin=SHOP)
    assert headers["access-control-allow-origin"] == SHOP
    assert router.metric("klambda_invocations_total", function="items") == before + 1
    # a route without CORS settings: the function's headers as it set them
    _, headers, _ = call(router, "GET", "/http/v1/items/7", Origin=SHOP)
    assert headers["access-control-allow-origin"] == "*"
