"""Asynchronous invocation through the chart's NATS JetStream, across pod deletions.

500 events are accepted (InvocationType Event: 202 and a request id each); one in ten
fails on purpose (`fail: true`, retryAttempts 0). While they drain, the NATS pod (its
JetStream store on a PersistentVolume), the router's pod (which dispatches them) and a
worker pod are deleted in turn. At-least-once, as a user checks it: every success's
request id reaches the function's on-success destination (a queue in the same JetStream,
read through the router's API; the record carries the handler's own answer, its
`context.aws_request_id`), and the function's DLQ holds exactly the request ids that
failed, nothing else.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, RELEASE_NAMESPACE, Cluster, wait_for

EVENTS = 500
FAILING_EVERY = 10
# the DLQ and the destination queue outlive the function in JetStream: names of this run
NAME = f"drain-{uuid.uuid4().hex[:8]}"
DONE_QUEUE = f"{NAME}-done"
CODE = (
    "import time\n"
    "def handler(event, context):\n"
    "    time.sleep(event['sleep'])\n"
    "    if event.get('fail'):\n"
    "        raise ValueError(f\"event {event['n']} fails on purpose\")\n"
    "    return {'requestId': context.aws_request_id, 'n': event['n']}\n"
)


def _function() -> str:
    return json.dumps(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": NAME},
            "spec": {
                "runtime": "python3.11",
                "handler": "app.handler",
                "timeoutSeconds": 10,
                "retryAttempts": 0,
                "destinations": {"onSuccess": {"queue": DONE_QUEUE}},
                "code": {"inline": {"app.py": CODE}},
            },
        }
    )


def _submit(cluster: Cluster, n: int) -> tuple[int, str, bool]:
    fail = n % FAILING_EVERY == 0
    event = {"n": n, "sleep": 0.25, "fail": fail}
    status, headers, body = cluster.invoke(NAME, event, headers={"X-Amz-Invocation-Type": "Event"})
    rid = next((v for k, v in headers.items() if k.lower() == "x-amzn-requestid"), "")
    assert status == 202, (status, body)
    return n, rid, fail


def _succeeded(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """request id -> the on-success record of it, as the destination queue holds them."""
    out = {}
    for message in cluster.api(f"/klambda/v1/queues/{DONE_QUEUE}?limit=5000")["Messages"]:
        record = json.loads(message["body"])
        out[record["requestContext"]["requestId"]] = record
    return out


def _dead(cluster: Cluster) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = cluster.api(f"/klambda/v1/functions/{NAME}/dlq?limit=5000")[
        "DeadLetters"
    ]
    return letters


def _done(cluster: Cluster, submitted: set[str]) -> int | None:
    """How many accepted events are done (succeeded or dead-lettered); None while the
    router or NATS does not answer."""
    try:
        finished = set(_succeeded(cluster)) | {d["requestId"] for d in _dead(cluster)}
    except (OSError, ValueError, KeyError):
        return None
    return len(finished & submitted)


def _pod(cluster: Cluster, namespace: str, selector: str) -> dict[str, Any] | None:
    pods = cluster.get("pods", "-n", namespace, "-l", selector)["items"]
    ready = [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]
    return ready[0] if ready else None


def _replace(cluster: Cluster, namespace: str, selector: str, replaced: bool = True) -> None:
    """Delete the ready pod of `selector`; wait for its replacement to be ready (a
    specialised worker pod has none: the router takes another from the warm pool)."""
    pod = _pod(cluster, namespace, selector)
    assert pod is not None, f"no ready pod for {selector}"
    uid = pod["metadata"]["uid"]
    cluster.kubectl("delete", "pod", "-n", namespace, pod["metadata"]["name"], "--wait=false")
    if not replaced:
        return

    def another() -> bool:
        new = _pod(cluster, namespace, selector)
        return new is not None and new["metadata"]["uid"] != uid

    wait_for(f"a new ready pod for {selector}", another, timeout=180, interval=1)


@pytest.fixture
def drain(cluster: Cluster) -> Iterator[str]:
    cluster.kubectl("apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-", stdin=_function())
    try:
        wait_for(
            f"Function {NAME} to be Active",
            lambda: (
                cluster.get("function", NAME, "-n", FUNCTIONS_NAMESPACE)
                .get("status", {})
                .get("state")
                == "Active"
            ),
        )
        yield NAME
    finally:
        # its pods go with it, rather than hold the node's CPU for the idle window
        cluster.kubectl("delete", "function", NAME, "-n", FUNCTIONS_NAMESPACE, "--wait=false")


def test_accepted_events_survive_nats_router_and_worker_pods_deleted_while_draining(
    cluster: Cluster, drain: str
) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        accepted = list(pool.map(lambda n: _submit(cluster, n), range(EVENTS)))
    ids = [rid for _, rid, _ in accepted]
    assert all(ids)
    assert len(set(ids)) == EVENTS
    failing = {rid for _, rid, fail in accepted if fail}
    succeeding = set(ids) - failing
    assert len(failing) == EVENTS // FAILING_EVERY

    progress: dict[str, int] = {}
    wait_for("the first events done", lambda: (_done(cluster, set(ids)) or 0) >= 20, timeout=120)
    for what, namespace, selector in (
        ("nats", RELEASE_NAMESPACE, "app.kubernetes.io/component=nats"),
        ("router", RELEASE_NAMESPACE, "app.kubernetes.io/component=router"),
        ("worker", FUNCTIONS_NAMESPACE, f"klambda.io/function={NAME}"),
    ):
        progress[what] = wait_for("the router's API", lambda: _done(cluster, set(ids)), 120)
        _replace(cluster, namespace, selector, replaced=what != "worker")
    # each pod went while events were still to do
    assert all(done < EVENTS for done in progress.values()), progress

    def drained() -> bool:
        try:
            ok = set(_succeeded(cluster))
            dead = {d["requestId"] for d in _dead(cluster)}
        except (OSError, ValueError, KeyError):
            return False
        return ok >= succeeding and dead >= failing

    try:
        # events refused while pods come and go (throttled, no worker yet) are retried
        # as Lambda retries them: from 1 s after the refusal, doubling, up to 5 minutes
        # apart (klambda.queue.schedule), so the last of them may wait that long
        wait_for("every accepted event done", drained, timeout=660, interval=3)
    except AssertionError:
        ok, dead = set(_succeeded(cluster)), _dead(cluster)
        router = cluster.kubectl(
            "logs", "-n", RELEASE_NAMESPACE, "-l", "app.kubernetes.io/component=router",
            "--tail=40",
        )  # fmt: skip
        raise AssertionError(
            f"{len(succeeding - ok)} successes and {len(failing - {d['requestId'] for d in dead})}"
            f" failures missing after {time.monotonic() - started:.0f} s, e.g. "
            f"{sorted(succeeding - ok)[:3]}; done at each deletion {progress}; the router:\n"
            f"{router}"
        ) from None
    succeeded = _succeeded(cluster)
    assert set(succeeded) == succeeding
    for rid, record in succeeded.items():
        # the handler ran with that request id and answered it
        assert record["responsePayload"]["requestId"] == rid
        assert record["requestContext"]["condition"] == "Success"
    dead = _dead(cluster)
    # at-least-once may dead-letter a failing event twice, never another one
    assert {d["requestId"] for d in dead} == failing
    assert {(d["errorType"], d["condition"]) for d in dead} == {("ValueError", "RetriesExhausted")}
    print(f"drained {EVENTS} events in {time.monotonic() - started:.0f} s; done at each deletion: "
          f"{progress}; dead letters {len(dead)} for {len(failing)} failing")  # fmt: skip
