"""Asynchronous invocation through a real router: 202 at once, retries with the same
request id, the DLQ and redrive, max event age, throttles retried, and no event lost when
the router is killed with events queued and in flight (SQLite and NATS JetStream)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner, eventually

from tests.helpers import KLAMBDA, ROOT
from tests.integration.queue.natsserver import nats_server

FLAKY = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: flaky}}
spec:
  runtime: python3.11
  handler: app.handler
  retryAttempts: {retries}
  maxEventAgeSeconds: 60
  {reserved}
  code:
    inline:
      app.py: |
        import os
        def handler(event, context):
            with open(os.environ["SEEN"], "a") as f:
                f.write(context.aws_request_id + "\\n")
                f.flush()
                os.fsync(f.fileno())
            if {fail}:
                raise RuntimeError("broken on purpose")
            return {{"ok": True}}
  environment:
    SEEN: {seen}
"""


def write_fn(fns: Path, seen: Path, fail: bool, retries: int = 2, reserved: str = "") -> None:
    fns.mkdir(exist_ok=True)
    (fns / "flaky.yaml").write_text(
        FLAKY.format(retries=retries, fail=fail, seen=seen, reserved=reserved)
    )


def call(r: RouterRunner, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(r.url + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def submit(r: RouterRunner, payload: Any, name: str = "flaky") -> str:
    status, headers, body = r.invoke(name, payload, **{"X-Amz-Invocation-Type": "Event"})
    assert status == 202, body
    assert body == b""
    return headers["x-amzn-requestid"]


def dlq_depth(r: RouterRunner) -> int:
    return int(call(r, "GET", "/klambda/v1/functions/flaky/dlq")["Depth"])


# the handlers report each run in a file of the test's, which a sandboxed handler (its
# own uid, its own /tmp) could not reach: these routers run them unsandboxed
FAST = {
    "KLAMBDA_ASYNC_RETRY_BASE_SECONDS": "0.2",
    "KLAMBDA_ASYNC_THROTTLE_BASE_SECONDS": "0.5",
    "KLAMBDA_SANDBOX": "0",
}


def test_failures_end_in_the_dlq_after_every_attempt_and_redrive_drains_it(
    tmp_path: Path,
) -> None:
    fns, seen, state = tmp_path / "fns", tmp_path / "seen.txt", tmp_path / "state"
    write_fn(fns, seen, fail=True, retries=2)
    with RouterRunner.up(fns, "-q", workdir=tmp_path, state=state, env=FAST) as r:
        rid = submit(r, {"n": 1})
        eventually(lambda: dlq_depth(r) == 1, "the event in the DLQ", timeout=20)
        dead = call(r, "GET", "/klambda/v1/functions/flaky/dlq")["DeadLetters"]
        assert [(d["requestId"], d["attempts"], d["condition"], d["errorType"]) for d in dead] == [
            (rid, 3, "RetriesExhausted", "RuntimeError")
        ]
        assert "broken on purpose" in dead[0]["errorMessage"]
        # 1 + retryAttempts attempts, each with the same request id and a REPORT line
        assert seen.read_text().split() == [rid] * 3
        logs = urllib.request.urlopen(r.url + "/klambda/v1/logs/flaky", timeout=10).read()
        assert logs.decode().count(f"REPORT RequestId: {rid}") == 3
        assert r.metric("klambda_async_events_received_total", function="flaky") == 1
        assert r.metric("klambda_dlq_depth", function="flaky") == 1
    # fix the handler, restart: the dead letter is still there; redrive drains it
    write_fn(fns, seen, fail=False)
    with RouterRunner.up(fns, "-q", workdir=tmp_path, state=state, env=FAST) as r:
        assert call(r, "GET", "/klambda/v1/functions/flaky/dlq")["Depth"] == 1
        out = subprocess.run(
            [*KLAMBDA, "dlq", "redrive", "flaky", "--all"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=ROOT,
            env={**os.environ, "KLAMBDA_ENDPOINT": r.url},
        )
        assert "1 event(s) sent through again" in out.stdout, out.stderr
        eventually(lambda: seen.read_text().split().count(rid) == 4, "a 4th run", timeout=20)
        eventually(lambda: dlq_depth(r) == 0, "an empty DLQ", timeout=20)


def test_no_retries_when_retry_attempts_is_0_and_big_payloads_are_refused(
    tmp_path: Path,
) -> None:
    fns, seen = tmp_path / "fns", tmp_path / "seen.txt"
    write_fn(fns, seen, fail=True, retries=0)
    with RouterRunner.up(fns, "-q", workdir=tmp_path, env=FAST) as r:
        rid = submit(r, {})
        eventually(lambda: dlq_depth(r) == 1, "the event in the DLQ", timeout=20)
        assert seen.read_text().split() == [rid]
        status, _headers, body = r.invoke(
            "flaky", "x" * (256 * 1024), **{"X-Amz-Invocation-Type": "Event"}
        )
        assert status == 413
        assert "262144" in json.loads(body)["message"]
        status, _h, _b = r.invoke("nope", {}, **{"X-Amz-Invocation-Type": "Event"})
        assert status == 404
        req = urllib.request.Request(
            f"{r.url}/2015-03-31/functions/flaky/invocations",
            data=b"{not json",
            method="POST",
            headers={"X-Amz-Invocation-Type": "Event"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400
        assert err.value.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"


def test_throttled_events_are_retried_then_expire_at_max_event_age(tmp_path: Path) -> None:
    """Reserved concurrency 0 throttles every attempt: the event is kept and retried, never
    run, and after maxEventAgeSeconds (60, Lambda's least) it goes to the DLQ."""
    fns, seen = tmp_path / "fns", tmp_path / "seen.txt"
    write_fn(fns, seen, fail=False, reserved="reservedConcurrency: 0")
    with RouterRunner.up(fns, "-q", workdir=tmp_path, env=FAST) as r:
        rid = submit(r, {})
        eventually(
            lambda: r.metric("klambda_throttles_total", function="flaky") >= 2,
            "a throttled attempt retried",
        )
        assert dlq_depth(r) == 0  # kept: the event is far younger than its 60 s max age
        eventually(lambda: dlq_depth(r) == 1, "the expired event in the DLQ", timeout=75)
        dead = call(r, "GET", "/klambda/v1/functions/flaky/dlq")["DeadLetters"][0]
        assert (dead["requestId"], dead["condition"]) == (rid, "EventAgeExceeded")
        assert not seen.exists()  # never invoked


SLOW = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: slow}}
spec:
  runtime: python3.11
  handler: app.handler
  memoryMB: 1769
  code:
    inline:
      app.py: |
        import os, time
        def handler(event, context):
            time.sleep(0.005)
            with open(os.environ["SEEN"], "a") as f:
                f.write(context.aws_request_id + "\\n")
                f.flush()
                os.fsync(f.fileno())
            return None
  environment:
    SEEN: {seen}
"""


@pytest.mark.parametrize("backend", ["sqlite", "jetstream"])
def test_kill_9_with_1000_events_queued_loses_none(tmp_path: Path, backend: str) -> None:
    fns, seen = tmp_path / "fns", tmp_path / "seen.txt"
    fns.mkdir()
    (fns / "slow.yaml").write_text(SLOW.format(seen=seen))
    with (
        contextmanager(lambda: (yield None))()
        if backend == "sqlite"
        else nats_server(tmp_path) as nats
    ):
        url = (
            f"sqlite:///{tmp_path / 'queue.db'}?visibility_timeout=3"
            if nats is None
            else f"{nats.url}?visibility_timeout=3"
        )
        env = {**FAST, "KLAMBDA_QUEUE_URL": url, "KLAMBDA_ASYNC_WORKERS": "8"}
        with RouterRunner.up(fns, "-q", workdir=tmp_path, env=env) as r:
            with ThreadPoolExecutor(16) as pool:
                rids = list(pool.map(lambda i: submit(r, {"i": i}, "slow"), range(1000)))
            assert len(set(rids)) == 1000
            eventually(
                lambda: seen.exists() and len(seen.read_text().split()) >= 100,
                "100 events run",
                timeout=60,
            )
            r.proc.send_signal(signal.SIGKILL)  # events queued and in flight
            r.proc.wait(10)
        done_before = set(seen.read_text().split())
        assert len(done_before) < 1000, "the kill came too late to prove anything"
        with RouterRunner.up(fns, "-q", workdir=tmp_path, env=env):
            eventually(
                lambda: set(rids) <= set(seen.read_text().split()),
                "every accepted event run",
                timeout=120,
            )
        processed = seen.read_text().split()
        assert set(processed) == set(rids)  # every accepted event, at least once
