"""A queue drained by an event source mapping on a real router, its queues in SQLite (local
mode's) and in a real nats-server's JetStream (cluster mode's, here with local functions): 1,000
messages, the handler failing 1 in 10 through batchItemFailures. Those are received
maxReceiveCount times and then found in the queue's DLQ; every other message is
processed exactly once; the function's reserved concurrency (2) caps the batches in flight
below the mapping's starting 5. Producers: the REST API and `klambda queue send`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nats
import pytest
from klambda.testing import CLI, RouterRunner, eventually

from tests.integration.queue.natsserver import nats_server

MESSAGES = 1000
MAX_RECEIVE = 2

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: process}}
spec:
  runtime: python3.11
  handler: app.handler
  reservedConcurrency: 2
  timeoutSeconds: 10
  environment: {{SEEN: "{seen}"}}
  code:
    inline:
      app.py: |
        import json, os, time
        def handler(event, context):
            failures, lines = [], []
            for r in event["Records"]:
                n = json.loads(r["body"])["n"]
                if n % 10 == 0:
                    failures.append({{"itemIdentifier": r["messageId"]}})
                count = r["attributes"]["ApproximateReceiveCount"]
                lines.append(json.dumps({{"n": n, "count": count, "failed": n % 10 == 0}}))
            with open(os.environ["SEEN"], "a") as f:
                f.write("".join(x + "\\n" for x in lines))
            time.sleep(0.02)
            return {{"batchItemFailures": failures}}
---
apiVersion: klambda.io/v1alpha1
kind: Queue
metadata: {{name: orders}}
spec:
  visibilityTimeoutSeconds: 3
  redrivePolicy: {{deadLetterQueue: orders-dlq, maxReceiveCount: {max_receive}}}
---
apiVersion: klambda.io/v1alpha1
kind: Queue
metadata: {{name: orders-dlq}}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: orders-to-process}}
spec:
  function: process
  source: {{queue: orders}}
  batchSize: 10
  functionResponseTypes: [ReportBatchItemFailures]
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: keep}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{KEPT: "{kept}"}}
  code:
    inline:
      app.py: |
        import os
        def handler(event, context):
            with open(os.environ["KEPT"], "a") as f:
                f.write("".join(r["body"] + "\\n" for r in event["Records"]))
---
apiVersion: klambda.io/v1alpha1
kind: Queue
metadata: {{name: side}}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: side-to-keep}}
spec:
  function: keep
  source: {{queue: side}}
  filterCriteria:
    filters:
      - pattern: '{{"body": {{"kind": ["keep"]}}}}'
      - pattern: '{{"messageAttributes": {{"source": {{"stringValue": ["nats"]}}}}}}'
"""


@pytest.fixture(scope="module", params=["sqlite", "jetstream"])
def router(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RouterRunner, Path]]:
    tmp = tmp_path_factory.mktemp(f"queues-{request.param}")
    fns, seen = tmp / "fns", tmp / "seen.jsonl"
    fns.mkdir()
    (fns / "functions.yaml").write_text(
        FUNCTIONS.format(seen=seen, max_receive=MAX_RECEIVE, kept=tmp / "kept.txt")
    )
    with contextlib.ExitStack() as stack:
        env = {}
        if request.param == "jetstream":
            nats = stack.enter_context(nats_server(tmp))
            env["KLAMBDA_QUEUE_URL"] = nats.url
        # the handlers mark what they did in files of the test's, out of a sandboxed
        # handler's reach (its own uid and /tmp): these routers run them unsandboxed
        r = stack.enter_context(RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp, env=env))
        yield r, seen


def call(r: RouterRunner, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        r.url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def seen(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_thousand_messages_partial_failures_redrive_and_reserved_cap(
    router: tuple[RouterRunner, Path],
) -> None:
    r, log = router
    # one by the CLI, the rest over REST from a few connections at once
    out = subprocess.run(
        [*CLI, "queue", "send", "orders", "--body", '{"n": 1}', "-a", "source=cli",
         "--endpoint", r.url],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert len(json.loads(out.stdout)["MessageId"]) == 36

    def send(n: int) -> int:
        status, _ = call(r, "POST", "/klambda/v1/work-queues/orders/messages",
                         {"MessageBody": json.dumps({"n": n})})  # fmt: skip
        return status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(2, MESSAGES + 1))) == {200}

    def settled() -> Any:
        _, dlq = call(r, "GET", "/klambda/v1/work-queues/orders-dlq?limit=1000")
        _, main = call(r, "GET", "/klambda/v1/work-queues/orders")
        return dlq["Depth"] == MESSAGES // 10 and main["Depth"] == 0 and dlq

    dlq = eventually(settled, "the queue drained and the failing tenth in its DLQ", timeout=120)
    assert sorted(json.loads(m["Body"])["n"] for m in dlq["Messages"]) == list(
        range(10, MESSAGES + 1, 10)
    )
    rows = seen(log)
    ok = Counter(x["n"] for x in rows if not x["failed"])
    failed = Counter(x["n"] for x in rows if x["failed"])
    assert set(ok) == {n for n in range(1, MESSAGES + 1) if n % 10}
    assert set(ok.values()) == {1}, "a message that succeeded was delivered again"
    # each failing message was received maxReceiveCount times, then moved
    assert set(failed) == set(range(10, MESSAGES + 1, 10))
    assert set(failed.values()) == {MAX_RECEIVE}
    assert {x["count"] for x in rows if x["failed"]} == {str(c) for c in range(1, MAX_RECEIVE + 1)}

    _, maps = call(r, "GET", "/klambda/v1/event-source-mappings")
    (m,) = [m for m in maps["EventSourceMappings"] if m["Name"] == "orders-to-process"]
    assert m["State"] == "Enabled"
    assert m["Concurrency"] == 2  # reserved concurrency 2 caps the starting 5
    assert 1 <= m["PeakInFlight"] <= 2
    assert m["Records"]["succeeded"] == MESSAGES - MESSAGES // 10
    assert m["Records"]["failed"] == MAX_RECEIVE * (MESSAGES // 10)
    assert m["LastProcessingResult"] == "OK"
    assert r.metric("klambda_esm_records_total", mapping="orders-to-process", outcome="failed") == (
        MAX_RECEIVE * (MESSAGES // 10)
    )
    assert r.metric("klambda_throttles_total", function="process") == 0


def test_sending_to_an_undeclared_queue_or_an_empty_body_is_refused(
    router: tuple[RouterRunner, Path],
) -> None:
    r, _ = router
    status, body = call(r, "POST", "/klambda/v1/work-queues/nope/messages", {"MessageBody": "x"})
    assert status == 404
    assert "Queue does not exist: nope" in json.dumps(body)
    status, body = call(r, "POST", "/klambda/v1/work-queues/orders/messages", {"MessageBody": ""})
    assert status == 400
    assert "MessageBody" in json.dumps(body)
    big = "x" * (256 * 1024 + 1)
    status, body = call(r, "POST", "/klambda/v1/work-queues/orders/messages", {"MessageBody": big})
    assert status == 400
    assert "MessageBody: at most 262144 bytes" in json.dumps(body)


def test_filter_criteria_and_a_plain_nats_producer(router: tuple[RouterRunner, Path]) -> None:
    r, seen_path = router
    kept = seen_path.parent / "kept.txt"
    for kind in ("keep", "drop", "keep"):
        status, _ = call(r, "POST", "/klambda/v1/work-queues/side/messages",
                         {"MessageBody": json.dumps({"kind": kind})})  # fmt: skip
        assert status == 200
    expected = 2
    if r.env.get("KLAMBDA_QUEUE_URL", "").startswith("nats://"):
        url = r.env["KLAMBDA_QUEUE_URL"]

        async def publish() -> None:
            nc = await nats.connect(url)
            js = nc.jetstream()
            attrs = {"Klambda-Attributes": json.dumps({"source": "nats"})}
            await js.publish("klambda.work.side", b"from a nats client", headers=attrs)
            await nc.close()

        asyncio.run(publish())
        expected = 3

    def kept_bodies() -> list[str]:
        bodies = kept.read_text().splitlines() if kept.exists() else []
        assert len(bodies) == expected
        return bodies

    bodies = eventually(kept_bodies, "the kept messages")
    assert bodies.count(json.dumps({"kind": "keep"})) == 2
    assert json.dumps({"kind": "drop"}) not in bodies
    _, side = call(r, "GET", "/klambda/v1/work-queues/side")
    assert side["Depth"] == 0  # the filtered message was deleted, as Lambda does
    _, maps = call(r, "GET", "/klambda/v1/event-source-mappings")
    (m,) = [m for m in maps["EventSourceMappings"] if m["Name"] == "side-to-keep"]
    assert m["Records"] == {"filtered": 1, "succeeded": expected}


RESTART = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: slow}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  code:
    inline:
      app.py: |
        import os, time
        def handler(event, context):
            with open(os.environ["SEEN"], "a") as f:
                f.write("".join(r["body"] + "\\n" for r in event["Records"]))
            time.sleep(1)  # the router is told to stop while the batch is still running
---
apiVersion: klambda.io/v1alpha1
kind: Queue
metadata: {{name: jobs}}
spec: {{visibilityTimeoutSeconds: 2}}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: jobs-to-slow}}
spec: {{function: slow, source: {{queue: jobs}}}}
"""


@pytest.mark.parametrize("backend", ["sqlite", "jetstream"])
def test_a_stopping_router_finishes_the_batch_it_invokes(backend: str, tmp_path: Path) -> None:
    fns, log = tmp_path / "fns", tmp_path / "seen.txt"
    fns.mkdir()
    (fns / "functions.yaml").write_text(RESTART.format(seen=log))

    def bodies() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    with contextlib.ExitStack() as stack:
        env = {}
        if backend == "jetstream":
            env["KLAMBDA_QUEUE_URL"] = stack.enter_context(nats_server(tmp_path)).url
        with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path, env=env) as r:
            status, _ = call(r, "POST", "/klambda/v1/work-queues/jobs/messages",
                             {"MessageBody": "once"})  # fmt: skip
            assert status == 200
            eventually(lambda: bodies() == ["once"], "the handler's start")
        # the batch finished and its message was deleted before the router went: the next
        # router, past the visibility timeout, finds nothing to hand over again
        with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path, env=env) as r:
            time.sleep(3)
            _, jobs = call(r, "GET", "/klambda/v1/work-queues/jobs")
            assert jobs["Depth"] == 0
    assert bodies() == ["once"]
