"""Cold starts through the warm pool, on real pods.

The chart keeps `pool.size` (2) generic python3.11 worker pods ready. A function with no pod
of its own answers its first call from one of them: the router sends the pod the code and
configuration (REPORT: Code Download, Specialise, Init Duration), the pod is relabelled as
the function's, the pool's ReplicaSet starts another, and the pod is resized in place to
the function's memory. A pod specialised for one function never serves another.
"""

from __future__ import annotations

import base64
import json
import select
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, Cluster, wait_for

POOL_SIZE = 2  # the chart's default pool.size
NAMES = ("pooled-a", "pooled-b", "reserved-cold", "pooled-hog")  # the functions made here
OVERHEAD_MB = 128  # the operator's memory_overhead_mb, added to the function's memory
POOL_CPU = "1"  # the chart's pool.cpuMillicores: a core for a cold start's specialise and init


ANSWER = (
    "import os\n"
    "def handler(event, context):\n"
    "    return {'function': context.function_name, 'host': os.uname().nodename}\n"
)
HOG = (
    "def handler(event, context):\n"
    "    hog = []\n"
    "    while True:\n"
    "        hog.append(b'x' * (8 * 1024 * 1024))\n"
)


def _function(name: str, memory_mb: int, source: str = ANSWER) -> str:
    return json.dumps(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": name},
            "spec": {
                "runtime": "python3.11",
                "handler": "app.handler",
                "memoryMB": memory_mb,
                "timeoutSeconds": 30,
                "code": {"inline": {"app.py": source}},
            },
        }
    )


@pytest.fixture(autouse=True)
def _cleanup(cluster: Cluster) -> Iterator[None]:
    """Each test's functions go with it: their pods would hold the node's CPU requests
    that the tests after these need."""
    yield
    cluster.kubectl("delete", "functions", "-n", FUNCTIONS_NAMESPACE, "--ignore-not-found",
                    "--wait=false", *NAMES, check=False)  # fmt: skip


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _apply(cluster: Cluster, name: str, memory_mb: int, source: str = ANSWER) -> None:
    cluster.kubectl(
        "apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-", stdin=_function(name, memory_mb, source)
    )

    def active() -> bool:
        fn = cluster.get("function", name, "-n", FUNCTIONS_NAMESPACE)
        return bool(fn.get("status", {}).get("state") == "Active")

    wait_for(f"Function {name} to be Active", active)


def _pool(cluster: Cluster) -> tuple[set[str], set[str]]:
    """The pool's ready pods, and those its EndpointSlices list as ready (which the router
    takes pool pods from: on a busy node they follow the pods' Ready by seconds)."""
    ready = {p["metadata"]["name"] for p in cluster.pods("klambda.io/pool=python3.11") if _ready(p)}
    slices = cluster.get(
        "endpointslices", "-n", FUNCTIONS_NAMESPACE, "-l", "klambda.io/pool=python3.11"
    )["items"]
    listed: set[str] = {
        (ep.get("targetRef") or {}).get("name", "")
        for s in slices
        for ep in s.get("endpoints") or []
        if (ep.get("conditions") or {}).get("ready")
    }
    return ready, listed - {""}


def _pool_full(cluster: Cluster) -> bool:
    ready, listed = _pool(cluster)
    return len(ready & listed) >= POOL_SIZE


def _first_call(cluster: Cluster, name: str) -> tuple[str, str]:
    """The first call of `name`: (the pod that answered, its REPORT line)."""
    assert not cluster.pods(f"klambda.io/function={name}")
    status, headers, body = cluster.invoke(name, {}, tail=True)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["function"] == name
    tail = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
    return answer["host"], report


def test_a_function_with_no_pod_answers_its_first_call_from_the_pool(cluster: Cluster) -> None:
    _apply(cluster, "pooled-a", 256)
    _apply(cluster, "pooled-b", 128)
    wait_for("a full warm pool", lambda: _pool_full(cluster))
    pool_pods = cluster.pods("klambda.io/pool=python3.11")
    pool_before = {p["metadata"]["name"] for p in pool_pods}
    # pool pods start with the chart's pool.cpuMillicores as their limit
    assert {p["spec"]["containers"][0]["resources"]["limits"]["cpu"] for p in pool_pods} == {
        POOL_CPU
    }

    host, report = _first_call(cluster, "pooled-a")
    # the phases of a cold start on a pool pod, in Lambda's REPORT line
    for phase in ("Code Download:", "Specialise:", "Init Duration:"):
        assert phase in report, report
    assert host in pool_before, (host, pool_before)
    # the pod is pooled-a's now (relabelled just after the answer), and out of the pool
    (pod,) = cluster.function_pods("pooled-a", 1)
    assert pod["metadata"]["name"] == host
    assert pod["metadata"]["labels"]["klambda.io/component"] == "specialised"
    assert "klambda.io/pool" not in pod["metadata"]["labels"]

    # the router calls it over its invoke lane: the version's EndpointSlices list the
    # pod's `lane` port beside `grpc`, resolved by name from the ports the pod declares
    def ports_listed() -> set[tuple[str, int]] | None:
        slices = cluster.get(
            "endpointslices", "-n", FUNCTIONS_NAMESPACE, "-l", "klambda.io/function=pooled-a"
        )["items"]
        listed = {
            (port["name"], port["port"])
            for sl in slices
            if host in {(ep.get("targetRef") or {}).get("name") for ep in sl.get("endpoints") or []}
            for port in sl.get("ports") or []
        }
        return listed or None

    listed = wait_for("pooled-a's pod in its EndpointSlices", ports_listed)
    assert listed == {("grpc", 9000), ("lane", 9002)}, listed

    # a second call is warm, on the same pod
    status, headers, body = cluster.invoke("pooled-a", {}, tail=True)
    assert status == 200, body
    assert json.loads(body)["host"] == host
    assert "Init Duration" not in base64.b64decode(headers["X-Amz-Log-Result"]).decode()

    # the pool refills
    wait_for("the pool refilled", lambda: _pool_full(cluster))

    # another function gets another pool pod, never pooled-a's
    other, report_b = _first_call(cluster, "pooled-b")
    assert "Specialise:" in report_b, report_b
    assert other != host
    assert [p["metadata"]["name"] for p in cluster.pods("klambda.io/function=pooled-a")] == [host]

    # resized in place to pooled-a's 256 MB and its CPU share (each plus the worker's), by
    # the kubelet
    want = {"memory": f"{256 + OVERHEAD_MB}Mi", "cpu": "245m"}

    def resized() -> Any:
        (p,) = cluster.pods("klambda.io/function=pooled-a")
        statuses = p["status"].get("containerStatuses") or []
        got = [((s.get("resources") or {}).get("limits") or {}) for s in statuses]
        return [{k: v for k, v in g.items() if k in want} for g in got] == [want] or None

    wait_for(f"the specialised pod's limits to become {want}", resized, timeout=120)


def test_reserved_concurrency_takes_a_pool_pod_before_throttling(cluster: Cluster) -> None:
    # reserved 2, one warm environment: the second of 10 simultaneous calls is served by a
    # pool pod (as Lambda starts a second environment), the other 8 are throttled
    _apply(cluster, "reserved-cold", 128)
    cluster.kubectl(
        "patch", "function", "reserved-cold", "-n", FUNCTIONS_NAMESPACE, "--type=merge",
        "-p", json.dumps({"spec": {"reservedConcurrency": 2, "code": {"inline": {"app.py": (
            "import time\n"
            "def handler(event, context):\n"
            "    time.sleep(event.get('sleep', 0))\n"
            "    return {'host': __import__('os').uname().nodename}\n"
        )}}}}),
    )  # fmt: skip

    def reserved() -> bool:
        fn = cluster.get("function", "reserved-cold", "-n", FUNCTIONS_NAMESPACE)
        return bool((fn.get("status") or {}).get("state") == "Active")

    wait_for("reserved-cold Active again", reserved)
    wait_for("a full warm pool", lambda: _pool_full(cluster))
    first, _, answer = cluster.invoke("reserved-cold", {})
    assert first == 200, answer
    cluster.function_pods("reserved-cold", 1)

    hosts: list[str] = []

    def call(_: int) -> tuple[int, str]:
        status, _headers, body = cluster.invoke("reserved-cold", {"sleep": 2})
        answer = json.loads(body)
        if status == 200:
            hosts.append(answer["host"])
        return status, "" if status == 200 else answer.get("Reason", "")

    with ThreadPoolExecutor(10) as pool:
        outcomes = Counter(pool.map(call, range(10)))
    assert outcomes == {
        (200, ""): 2,
        (429, "ReservedFunctionConcurrentInvocationLimitExceeded"): 8,
    }, outcomes
    ready, listed = _pool(cluster)
    assert len(set(hosts)) == 2, f"both answers from {hosts[0]}; pool {ready}, listed {listed}"
    cluster.function_pods("reserved-cold", 2)


def test_a_specialised_environment_is_held_to_the_functions_memory(cluster: Cluster) -> None:
    # a 128 MB function on a pool pod: a handler that allocates past 128 MB gets Lambda's
    # Runtime.OutOfMemory, and the pod and the router go on serving
    _apply(cluster, "pooled-hog", 128, HOG)
    wait_for("a full warm pool", lambda: _pool_full(cluster))
    status, raw, body = cluster.invoke("pooled-hog", {}, tail=True)
    headers = {k.lower(): v for k, v in raw.items()}
    assert status == 200, body
    assert headers.get("x-amz-function-error") == "Unhandled", headers
    assert json.loads(body)["errorType"] == "Runtime.OutOfMemory", body
    report = base64.b64decode(headers["x-amz-log-result"]).decode()
    assert "Specialise:" in report, report  # it was a pool pod's first call
    (pod,) = cluster.function_pods("pooled-hog", 1)
    assert pod["metadata"]["labels"]["klambda.io/component"] == "specialised"
    # the worker survived its environment: the pod is not restarted, and serves again
    statuses = pod["status"].get("containerStatuses") or []
    assert [s.get("restartCount") for s in statuses] == [0], statuses
    status, _, body = cluster.invoke("pooled-hog", {}, tail=True)
    assert status == 200, body
    assert json.loads(body)["errorType"] == "Runtime.OutOfMemory", body


def test_a_pool_pod_deleted_while_it_starts_is_gone_in_seconds(cluster: Cluster) -> None:
    # a pool pod's grace period is Lambda's longest timeout (a specialised one may be
    # running a call); one deleted before its worker has started (the pool scaled down,
    # its runtime's last function deleted) must not hold its CPU request for that long
    _apply(cluster, "pooled-a", 128)
    wait_for("a full warm pool", lambda: _pool_full(cluster))
    # a pool pod starts in about a second (a core for its start): watch for the one that
    # replaces a deleted pool pod, and delete it as soon as its container runs (its worker
    # starting, or just ready)
    watch = subprocess.Popen(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "get",
         "pods", "-n", FUNCTIONS_NAMESPACE, "-l", "klambda.io/pool=python3.11", "--watch",
         "--output-watch-events", "-o", "json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        pool = cluster.pods("klambda.io/pool=python3.11")
        cluster.kubectl("delete", "pod", "-n", FUNCTIONS_NAMESPACE, pool[0]["metadata"]["name"],
                        "--wait=false")  # fmt: skip
        pod = _first_starting(watch, {p["metadata"]["name"] for p in pool}, timeout=180)
        name = pod["metadata"]["name"]
        cluster.kubectl("delete", "pod", "-n", FUNCTIONS_NAMESPACE, name, "--wait=false")
    finally:
        watch.kill()
        watch.wait()
    assert pod["spec"]["terminationGracePeriodSeconds"] > 60

    def gone() -> bool:
        by_name = f"metadata.name={name}"
        return not cluster.get("pods", "-n", FUNCTIONS_NAMESPACE, "--field-selector", by_name)[
            "items"
        ]

    wait_for(f"{name} to be gone", gone, timeout=30, interval=0.5)


def _first_starting(
    watch: subprocess.Popen[str], before: set[str], timeout: float
) -> dict[str, Any]:
    """The first pod of a `kubectl get --watch --output-watch-events -o json` stream that
    is not one of `before` and is Running, not being deleted: its container has started
    (its worker may already serve: a pool pod starts in about a second)."""
    assert watch.stdout is not None
    deadline = time.monotonic() + timeout
    decoder = json.JSONDecoder()
    buffer = ""
    while time.monotonic() < deadline:
        if not select.select([watch.stdout], [], [], 1.0)[0]:
            continue
        line = watch.stdout.readline()
        if not line:
            break
        buffer += line
        try:
            event, _end = decoder.raw_decode(buffer.strip())
        except json.JSONDecodeError:
            continue  # an event's JSON spans lines: read on
        buffer = ""
        pod = event.get("object") or {}
        if (
            event.get("type") in ("ADDED", "MODIFIED")
            and pod["metadata"]["name"] not in before
            and not pod["metadata"].get("deletionTimestamp")
            and pod.get("status", {}).get("phase") == "Running"
        ):
            return dict(pod)
    raise AssertionError(f"no new pool pod seen starting within {timeout:.0f}s")
