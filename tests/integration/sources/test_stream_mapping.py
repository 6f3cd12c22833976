"""Streams read by event source mappings on a real router, their records in SQLite (local
mode's) and in a real nats-server's JetStream: a poison record is isolated by bisecting
and its batch description reaches the on-failure queue, every other record is handled
once and in order per partition key; a throttled function's iterator age rises, and falls
once its concurrency is back. Producers: the REST API and `klambda stream put`."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import CLI, RouterRunner, eventually

from tests.integration.queue.natsserver import nats_server

RECORDS = 120
KEYS = ["k0", "k1", "k2", "k3", "k4"]
POISON = 57

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: consume}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  code:
    inline:
      app.py: |
        import base64, json, os
        def handler(event, context):
            lines = []
            for r in event["Records"]:
                data = json.loads(base64.b64decode(r["kinesis"]["data"]))
                if data.get("poison"):
                    raise ValueError("poison record")
                lines.append(json.dumps({{**data, "seq": r["kinesis"]["sequenceNumber"],
                                         "shard": r["eventID"].split(":")[0]}}))
            with open(os.environ["SEEN"], "a") as f:
                f.write("".join(x + "\\n" for x in lines))
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: lagging}}
spec:
  runtime: python3.11
  handler: app.handler
  reservedConcurrency: 0
  code:
    inline:
      app.py: |
        def handler(event, context):
            return len(event["Records"])
---
apiVersion: klambda.io/v1alpha1
kind: Stream
metadata: {{name: clicks}}
spec: {{shardCount: 2}}
---
apiVersion: klambda.io/v1alpha1
kind: Stream
metadata: {{name: audit}}
---
apiVersion: klambda.io/v1alpha1
kind: Queue
metadata: {{name: poison-records}}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: clicks-to-consume}}
spec:
  function: consume
  source: {{stream: clicks}}
  startingPosition: TRIM_HORIZON
  batchSize: 10
  bisectBatchOnFunctionError: true
  maximumRetryAttempts: 1
  destinationConfig: {{onFailure: {{queue: poison-records}}}}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: audit-to-lagging}}
spec:
  function: lagging
  source: {{stream: audit}}
  startingPosition: TRIM_HORIZON
"""


@pytest.fixture(scope="module", params=["sqlite", "jetstream"])
def router(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RouterRunner, Path]]:
    tmp = tmp_path_factory.mktemp(f"streams-{request.param}")
    fns, seen = tmp / "fns", tmp / "seen.jsonl"
    fns.mkdir()
    (fns / "functions.yaml").write_text(FUNCTIONS.format(seen=seen))
    with contextlib.ExitStack() as stack:
        env = {}
        if request.param == "jetstream":
            env["KLAMBDA_QUEUE_URL"] = stack.enter_context(nats_server(tmp)).url
        yield (
            # the handlers mark what they did in files of the test's, out of a sandboxed
            # handler's reach (its own uid and /tmp): these routers run them unsandboxed
            stack.enter_context(RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp, env=env)),
            seen,
        )


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


def put(r: RouterRunner, stream: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
    raw = base64.b64encode(json.dumps(data).encode()).decode()
    status, out = call(
        r, "POST", f"/klambda/v1/streams/{stream}/records", {"PartitionKey": key, "Data": raw}
    )
    assert status == 200, out
    return dict(out)


def mapping(r: RouterRunner, name: str) -> dict[str, Any]:
    _, out = call(r, "GET", "/klambda/v1/event-source-mappings")
    (m,) = [m for m in out["EventSourceMappings"] if m["Name"] == name]
    return dict(m)


def test_poison_record_bisected_to_the_on_failure_queue_order_kept(
    router: tuple[RouterRunner, Path],
) -> None:
    r, log = router
    poison: dict[str, Any] = {}
    shards = set()
    for n in range(1, RECORDS + 1):
        key = KEYS[n % len(KEYS)]
        data = {"key": key, "n": n, **({"poison": True} if n == POISON else {})}
        got = put(r, "clicks", key, data)
        shards.add(got["ShardId"])
        if n == POISON:
            poison = got
    assert shards == {"shardId-000000000000", "shardId-000000000001"}

    def dead() -> Any:
        _, q = call(r, "GET", "/klambda/v1/work-queues/poison-records")
        return q["Depth"] == 1 and q["Messages"]

    (message,) = eventually(dead, "the poison record's batch in the on-failure queue", timeout=60)
    info = json.loads(message["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["KinesisBatchInfo"]["batchSize"] == 1  # bisected down to the poison alone
    assert info["KinesisBatchInfo"]["shardId"] == poison["ShardId"]
    assert info["KinesisBatchInfo"]["startSequenceNumber"] == poison["SequenceNumber"]
    assert info["KinesisBatchInfo"]["streamArn"].endswith(":stream/clicks")

    def all_seen() -> Any:
        rows = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        return len(rows) >= RECORDS - 1 and rows

    rows = eventually(all_seen, "every other record handled", timeout=60)
    time.sleep(0.5)  # nothing more comes: each record exactly once
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(x["n"] for x in rows) == [n for n in range(1, RECORDS + 1) if n != POISON]
    by_key: dict[str, list[int]] = defaultdict(list)
    for x in rows:
        by_key[x["key"]].append(x["n"])
    for key, ns in by_key.items():
        assert ns == sorted(ns), f"records of {key} out of order"
    m = mapping(r, "clicks-to-consume")
    assert m["State"] == "Enabled"
    assert m["Records"]["dropped"] == 1
    assert m["IteratorAgeSeconds"] == 0.0
    assert (
        r.metric("klambda_esm_records_total", mapping="clicks-to-consume", outcome="dropped") == 1
    )


def test_iterator_age_rises_while_throttled_and_falls_after(
    router: tuple[RouterRunner, Path],
) -> None:
    r, _ = router
    out = subprocess.run(
        [*CLI, "stream", "put", "audit", "-k", "a", "-d", '{"event": 1}', "--endpoint", r.url],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout)["ShardId"] == "shardId-000000000000"
    age = "klambda_iterator_age_seconds"
    first = eventually(
        lambda: (
            r.metric(age, mapping="audit-to-lagging") >= 1.0
            and r.metric(age, mapping="audit-to-lagging")
        ),
        "the iterator age to grow while lagging is throttled",
    )
    later = eventually(
        lambda: (a := r.metric(age, mapping="audit-to-lagging")) > first + 0.5 and a,
        "the iterator age to keep growing",
    )
    assert later > first
    assert mapping(r, "audit-to-lagging")["LastProcessingResult"] == "PROBLEM: Throttled"
    subprocess.run(
        [*CLI, "concurrency", "put", "lagging", "--reserved", "5", "--endpoint", r.url],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    eventually(
        lambda: r.metric(age, mapping="audit-to-lagging") == 0.0,
        "the iterator age back to 0 once lagging runs",
    )
    m = mapping(r, "audit-to-lagging")
    assert (m["LastProcessingResult"], m["Records"]["succeeded"]) == ("OK", 1)


RESTART = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: count}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  code:
    inline:
      app.py: |
        import base64, os, time
        def handler(event, context):
            with open(os.environ["SEEN"], "a") as f:
                for r in event["Records"]:
                    f.write(base64.b64decode(r["kinesis"]["data"]).decode() + "\\n")
            time.sleep(0.5)  # the router is told to stop while the batch is still running
---
apiVersion: klambda.io/v1alpha1
kind: Stream
metadata: {{name: ticks}}
---
apiVersion: klambda.io/v1alpha1
kind: EventSourceMapping
metadata: {{name: ticks-to-count}}
spec:
  function: count
  source: {{stream: ticks}}
  startingPosition: LATEST
  batchSize: 5
"""


@pytest.mark.parametrize("backend", ["sqlite", "jetstream"])
def test_checkpoint_kept_across_router_restarts(backend: str, tmp_path: Path) -> None:
    fns, log = tmp_path / "fns", tmp_path / "seen.txt"
    fns.mkdir()
    (fns / "functions.yaml").write_text(RESTART.format(seen=log))

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    with contextlib.ExitStack() as stack:
        env = {}
        if backend == "jetstream":
            env["KLAMBDA_QUEUE_URL"] = stack.enter_context(nats_server(tmp_path)).url
        with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path, env=env) as r:
            # LATEST: what the stream held before the mapping's first start is not read
            eventually(lambda: mapping(r, "ticks-to-count")["IteratorAgeSeconds"] == 0.0,
                       "the mapping's first read")  # fmt: skip
            for n in range(1, 13):
                put(r, "ticks", "k", {"n": n})
            eventually(lambda: len(lines()) == 12, "the first twelve records")
        # the router stopped while the last batch ran: it let the batch finish and kept its
        # checkpoint, so the next router reads none of the twelve again (and LATEST is not
        # applied twice)
        with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path, env=env) as r:
            for n in range(13, 21):
                put(r, "ticks", "k", {"n": n})
            eventually(lambda: len(lines()) >= 20, "the next eight")
            time.sleep(0.5)
    assert [json.loads(x)["n"] for x in lines()] == list(range(1, 21))
