"""Function URLs on a real router: a BUFFERED URL answers with API Gateway's mapping; a
RESPONSE_STREAM URL and InvokeWithResponseStream (boto3) deliver the first chunk while the
handler is still sleeping, in klambda's two streaming shapes (a generator, a writer)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from klambda.testing import RouterRunner

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: hello}}
spec:
  runtime: python3.11
  handler: app.handler
  functionUrl: {{}}
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {{"statusCode": 201, "headers": {{"X-Path": event["rawPath"]}},
                    "body": event["queryStringParameters"]["name"]}}
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: ticker}}
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 10
  environment: {{MARKS: "{marks}"}}
  functionUrl: {{invokeMode: RESPONSE_STREAM}}
  code:
    inline:
      app.py: |
        import os, time
        def handler(event, context):
            name = (event.get("queryStringParameters") or {{}}).get("run", "direct")
            yield {{"statusCode": 200, "headers": {{"Content-Type": "text/plain"}},
                   "cookies": ["seen=1"]}}
            yield "first\\n"
            time.sleep(1.5)
            open(os.path.join(os.environ["MARKS"], name), "w").close()
            yield "second\\n"
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: writer}}
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 10
  environment: {{MARKS: "{marks}"}}
  code:
    inline:
      app.py: |
        import os, time
        def handler(event, response_stream, context):
            response_stream.set_content_type("text/csv")
            response_stream.write("a,b\\n")
            time.sleep(1.5)
            open(os.path.join(os.environ["MARKS"], event["run"]), "w").close()
            response_stream.write(b"1,2\\n")
            if event.get("fail"):
                raise RuntimeError("broken mid-stream")
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: plain}}
spec:
  runtime: python3.11
  handler: app.handler
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {{"plain": True}}
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterRunner, Path]]:
    tmp = tmp_path_factory.mktemp("urls")
    fns, marks = tmp / "fns", tmp / "marks"
    fns.mkdir()
    marks.mkdir()
    (fns / "functions.yaml").write_text(FUNCTIONS.format(marks=marks))
    # the handlers mark what they did in files of the test's: out of a sandboxed
    # handler's reach (its own uid and /tmp), so these routers run them unsandboxed
    with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp) as r:
        yield r, marks


def lam(r: RouterRunner) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=r.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_buffered_url(router: tuple[RouterRunner, Path]) -> None:
    r, _ = router
    conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
    conn.request("GET", "/url/hello/some/path?name=Ada")
    resp = conn.getresponse()
    assert (resp.status, resp.headers["X-Path"], resp.read()) == (201, "/some/path", b"Ada")
    conn.request("GET", "/url/nobody/")
    resp = conn.getresponse()
    assert resp.status == 403
    resp.read()
    conn.close()


def test_streaming_url_sends_the_first_chunk_while_the_handler_sleeps(
    router: tuple[RouterRunner, Path],
) -> None:
    r, marks = router
    conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
    started = time.monotonic()
    conn.request("GET", "/url/ticker/?run=url")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.headers["Set-Cookie"] == "seen=1"
    first = resp.read1()
    assert first == b"first\n"
    # the handler is still asleep: it has not reached the line after its sleep
    assert not (marks / "url").exists()
    assert time.monotonic() - started < 1.4
    assert resp.read() == b"second\n"
    assert (marks / "url").exists()
    conn.close()
    assert r.metric("klambda_trigger_http_responses_total", function="ticker") == 1


def test_invoke_with_response_stream_through_boto3(router: tuple[RouterRunner, Path]) -> None:
    r, marks = router
    resp = lam(r).invoke_with_response_stream(
        FunctionName="writer", Payload=json.dumps({"run": "boto3"}).encode()
    )
    assert resp["StatusCode"] == 200
    assert resp["ResponseStreamContentType"] == "text/csv"
    assert resp["ExecutedVersion"] == "$LATEST"
    events = iter(resp["EventStream"])
    first = next(events)
    assert first == {"PayloadChunk": {"Payload": b"a,b\n"}}
    assert not (marks / "boto3").exists()  # still asleep
    rest = list(events)
    assert rest == [{"PayloadChunk": {"Payload": b"1,2\n"}}, {"InvokeComplete": {}}]


def test_a_failure_mid_stream_ends_with_its_error(router: tuple[RouterRunner, Path]) -> None:
    r, _ = router
    resp = lam(r).invoke_with_response_stream(
        FunctionName="writer", Payload=json.dumps({"run": "fail", "fail": True}).encode()
    )
    events = list(resp["EventStream"])
    assert [e for e in events if "PayloadChunk" in e] == [
        {"PayloadChunk": {"Payload": b"a,b\n"}},
        {"PayloadChunk": {"Payload": b"1,2\n"}},
    ]
    done = events[-1]["InvokeComplete"]
    assert done["ErrorCode"] == "RuntimeError"
    assert done["ErrorDetails"] == "broken mid-stream"


def test_streaming_api_with_a_plain_handler_and_buffered_invoke_of_a_stream(
    router: tuple[RouterRunner, Path],
) -> None:
    r, _ = router
    resp = lam(r).invoke_with_response_stream(FunctionName="plain", Payload=b"{}")
    assert list(resp["EventStream"]) == [
        {"PayloadChunk": {"Payload": b'{"plain": true}'}},
        {"InvokeComplete": {}},
    ]
    # a streaming handler called with plain Invoke: the chunks, collected
    out = lam(r).invoke(FunctionName="writer", Payload=json.dumps({"run": "buffered"}).encode())
    assert out["Payload"].read() == b"a,b\n1,2\n"
