"""Cold starts through the warm pool, against a real API server and real worker processes.

Everything is real but the node: the operator (kopf, in this process) keeps the pool's
Deployment, the real ReplicaSet controller makes its Pods, the router (`klambda router`)
watches the API server, specialises a pool worker and relabels its Pod, the garbage
collector and the operator delete what should go. The node is played by `HostPods`
(hostpods.py): it runs each pool Pod's `klambda worker --pool` process on a test host in
a network namespace, reports the Pod's podIP and Ready condition through its status (the
only part of the kubelet emulated), and writes the EndpointSlices of those Pods, which
the real EndpointSlice controller skips as they are bound to no Node.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from klambda import codestore
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.testing import RouterRunner, eventually

from tests.integration.operator.conftest import Namespace, Operator
from tests.kube.controlplane import ControlPlane
from tests.netns import network_host

from .hostpods import HostPods

ROOT = Path(__file__).resolve().parents[3]
POOL = "klambda-pool-python3-11"

HELLO = """\
import os
def handler(event, context):
    return {"hello": event.get("name", "world"), "pid": os.getpid(),
            "root": os.environ["LAMBDA_TASK_ROOT"], "memory": context.memory_limit_in_mb}
"""
HOG = """\
def handler(event, context):
    hog = []
    while True:
        hog.append(b"x" * (8 * 1024 * 1024))
"""


def function(name: str, source: str, memory: int = 128, timeout: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {
            "runtime": "python3.11",
            "handler": "app.handler",
            "memoryMB": memory,
            "timeoutSeconds": timeout,
            "code": {"inline": {"app.py": source}},
        },
    }


@contextmanager
def cluster(
    plane: ControlPlane,
    namespace: str,
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    router_env: dict[str, str] | None = None,
    **settings: Any,
) -> Iterator[tuple[Namespace, HostPods, RouterRunner]]:
    """CRDs, the operator (a pool of 2), the test host's pods and a cluster router."""
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(plane.kubeconfig))
    for key, value in ({"resync_seconds": 1, "pool_size": 2} | settings).items():
        monkeypatch.setenv(f"KLAMBDA_OPERATOR_{key.upper()}", str(value))
    ns = Namespace(plane, namespace)
    op = Operator(namespace)
    op.start()
    try:
        with (
            network_host() as host,
            HostPods(plane.kubeconfig, namespace, host, tmp / "pods") as pods,
            RouterRunner(
                "router",
                "--namespace", namespace,
                "--kubeconfig", str(plane.kubeconfig),
                "--host", "127.0.0.1",
                "--no-auth",  # placement is what these tests are about
                "--wait-for-worker", "20",
                workdir=tmp,
                env=router_env,
            ) as router,
        ):  # fmt: skip
            yield ns, pods, router
            assert not pods.errors, pods.errors
    finally:
        op.stop()


def pods_of(ns: Namespace, **labels: str) -> list[dict[str, Any]]:
    selector = ",".join(f"klambda.io/{k}={v}" for k, v in labels.items())
    out = ns.kubectl("get", "pods", "-l", selector, "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def ready_pool(ns: Namespace, pods: HostPods, size: int = 2) -> list[str]:
    """The names of `size` pool pods whose workers serve."""

    def ready() -> list[str] | None:
        names = [p["metadata"]["name"] for p in pods_of(ns, pool="python3.11")]
        serving = [n for n in names if any(h.name == n and h.ready for h in pods.pods.values())]
        return serving if len(serving) >= size else None

    return ns.wait(ready, f"{size} pool pods serving", timeout=60)


def log_of(headers: dict[str, str]) -> str:
    return base64.b64decode(headers["x-amz-log-result"]).decode()


def specialised(ns: Namespace, function_name: str) -> list[dict[str, Any]]:
    return pods_of(ns, function=function_name, component="specialised")


@pytest.mark.kube
def test_a_function_with_no_workers_answers_its_first_call_through_a_pool_pod(
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with cluster(kube_control_plane, kube_namespace, tmp_path, monkeypatch) as (ns, pods, r):
        ns.apply(function("hello", HELLO, memory=256))
        ns.wait_state("Function", "hello", "Active")
        deployment = ns.wait(lambda: ns.get("Deployment", POOL), "the pool's Deployment")
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["template"]["spec"]["containers"][0]["command"] == [
            "klambda", "worker", "--pool", "python3.11"
        ]  # fmt: skip
        before = ready_pool(ns, pods)
        assert ns.get("Deployment", "hello-latest")["spec"]["replicas"] == 0

        # the first call of a function that has no pod runs on a pool pod
        status, headers, body = r.invoke("hello", {"name": "Ada"}, **{"X-Amz-Log-Type": "Tail"})
        assert status == 200, body
        first = json.loads(body)
        assert first["hello"] == "Ada"
        assert first["root"] == "/var/task" or first["root"].endswith("/task")
        assert str(first["memory"]) == "256"
        report = next(line for line in log_of(headers).splitlines() if line.startswith("REPORT"))
        for phase in ("Init Duration:", "Code Download:", "Specialise:", "Environment Start:"):
            assert phase in report, report

        # the pod is the function's now: out of the pool, into $LATEST, owned by the Function
        mine = ns.wait(lambda: specialised(ns, "hello"), "hello's specialised pod")
        assert len(mine) == 1
        pod = mine[0]
        assert pod["metadata"]["name"] in before
        labels = pod["metadata"]["labels"]
        assert "klambda.io/pool" not in labels
        assert "pod-template-hash" not in labels
        assert labels["klambda.io/version"] == "latest"
        owner = pod["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["controller"]) for o in owner] == [
            ("Function", "hello", True)
        ]

        # the pool refills: its ReplicaSet made a new pod, and its worker serves
        after = ready_pool(ns, pods)
        assert set(after) - set(before), (before, after)
        assert pod["metadata"]["name"] not in after

        # resized in place to the function's memory (the environment is limited by the
        # worker at once; the pod's own resources follow through the resize subresource)
        def resized() -> dict[str, Any] | None:
            p = ns.kubectl("get", "pod", pod["metadata"]["name"], "-o", "json").stdout
            res = json.loads(p)["spec"]["containers"][0]["resources"]
            return res if res["limits"]["memory"] == "384Mi" else None

        resources = ns.wait(resized, "the pod resized to 256 MB + the worker's 128 MB")
        assert resources["requests"]["cpu"] == "145m"
        assert resources["limits"]["cpu"] == "245m"  # and the worker's

        # the next call is warm, on the same environment
        status, headers, body = r.invoke("hello", {}, **{"X-Amz-Log-Type": "Tail"})
        assert json.loads(body)["pid"] == first["pid"]
        assert "Init Duration" not in log_of(headers)

        # the cold start's phases at the router
        for phase in ("code_download", "specialise", "environment_start", "init", "handler"):
            count = r.metric(
                "klambda_cold_start_phase_seconds_count", function="hello", phase=phase
            )
            assert count == 1, phase

        # another function gets another pool pod, never hello's
        ns.apply(function("other", HELLO.replace('"hello"', '"other"')))
        ns.wait_state("Function", "other", "Active")
        status, _h, body = r.invoke("other", {})
        assert status == 200, body
        assert json.loads(body)["pid"] != first["pid"]
        theirs = ns.wait(lambda: specialised(ns, "other"), "other's specialised pod")
        assert theirs[0]["metadata"]["name"] != pod["metadata"]["name"]

        # and hello's worker refuses to become anything else
        files = {"app.py": HELLO.encode()}
        stub = worker_pb2_grpc.WorkerStub(  # type: ignore[no-untyped-call]
            grpc.insecure_channel(pods.address_of(pod["metadata"]["name"]))
        )
        request = worker_pb2.SpecialiseRequest(
            function="other", version="$LATEST", handler="app.handler", runtime="python3.11",
            memory_mb=128, timeout_seconds=10, code_sha256=codestore.digest(files),
            files=[worker_pb2.CodeFile(path="app.py", content=files["app.py"])],
        )  # fmt: skip
        with pytest.raises(grpc.RpcError) as refused:
            stub.Specialise(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "serves hello:$LATEST" in str(refused.value.details())
        status, _h, body = r.invoke("hello", {})
        assert json.loads(body)["pid"] == first["pid"]


@pytest.mark.kube
def test_out_of_memory_and_idle_specialised_pods_are_deleted(
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # long enough that a loaded machine still sees the pod between the call and its deletion
    settings = {"idle_seconds": 12}
    with cluster(kube_control_plane, kube_namespace, tmp_path, monkeypatch, **settings) as (
        ns,
        pods,
        r,
    ):
        ns.apply(function("hog", HOG, memory=128, timeout=30))
        ns.wait_state("Function", "hog", "Active")
        ready_pool(ns, pods)

        # the specialised environment is limited to the function's memoryMB
        status, headers, body = r.invoke("hog", {})
        assert status == 200
        assert headers["x-amz-function-error"] == "Unhandled"
        err = json.loads(body)
        assert err["errorType"] == "Runtime.OutOfMemory", err
        assert r.metric("klambda_errors_total", function="hog", reason="out_of_memory") == 1

        # after the idle window the operator deletes it; it never goes back to the pool
        mine = ns.wait(lambda: specialised(ns, "hog"), "hog's specialised pod")
        name = mine[0]["metadata"]["name"]
        ns.wait(lambda: not specialised(ns, "hog"), "the idle pod deleted", timeout=60)
        assert ns.kubectl("get", "pod", name, check=False).returncode != 0
        assert name not in ready_pool(ns, pods)
        events: Callable[[], bool] = lambda: all(p.name != name for p in pods.pods.values())  # noqa: E731
        eventually(events, "its worker process stopped")


@pytest.mark.kube
def test_a_version_runs_its_snapshot_on_a_pool_pod_and_latest_edits_replace_its_pods(
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    garbage_collector: ControlPlane,
) -> None:
    """Code from a ConfigMap reaches a pool pod from the version's snapshot (the router
    reads it: the user's ConfigMap may have changed since); the claimed pod belongs to the
    Version and goes with it; a $LATEST whose configuration changed gets a new pod."""
    with cluster(kube_control_plane, kube_namespace, tmp_path, monkeypatch) as (ns, pods, r):
        source = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-src"}}
        ns.apply({**source, "data": {"app.py": HELLO}})
        fn = function("shop", HELLO)
        fn["spec"]["code"] = {"configMap": "shop-src"}
        ns.apply(fn)
        sha = ns.wait_state("Function", "shop", "Active")["status"]["codeSha256"]
        ns.apply(
            {
                "apiVersion": "klambda.io/v1alpha1",
                "kind": "Version",
                "metadata": {"name": "shop.1"},
                "spec": {"function": "shop", "version": "1", "codeSha256": sha,
                         "config": fn["spec"]},
            }
        )  # fmt: skip
        ns.wait_state("Version", "shop.1", "Active")
        # the user's ConfigMap moves on ($LATEST with it, at the operator's next resync);
        # version 1 keeps its bytes
        ns.apply({**source, "data": {"app.py": HELLO.replace('"hello"', '"changed"')}})
        ns.wait(
            lambda: ns.status_of("Function", "shop").get("codeSha256") not in (None, sha),
            "$LATEST on the edited ConfigMap",
        )
        ready_pool(ns, pods)
        status, _h, body = r.invoke("shop:1", {"name": "v1"})
        assert status == 200, body
        assert json.loads(body)["hello"] == "v1"
        [pod] = ns.wait(lambda: specialised(ns, "shop"), "version 1's specialised pod")
        [owner] = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("Version", "shop.1")
        assert pod["metadata"]["labels"]["klambda.io/version"] == "1"

        # $LATEST: a configuration change retires the pods given the old one
        status, _h, body = r.invoke("shop", {})
        latest = json.loads(body)
        assert latest["changed"] == "world", latest
        [old] = ns.wait(
            lambda: pods_of(ns, function="shop", version="latest"), "$LATEST's specialised pod"
        )
        ready_pool(ns, pods)
        fn["spec"]["environment"] = {"STAGE": "two"}
        ns.apply(fn)
        ns.wait(
            lambda: (
                not [
                    p
                    for p in pods_of(ns, function="shop", version="latest")
                    if p["metadata"]["name"] == old["metadata"]["name"]
                ]
            ),
            "the pod of the old configuration deleted",
        )
        status, _h, body = r.invoke("shop", {})
        assert status == 200, body
        assert json.loads(body)["pid"] != latest["pid"]

        # deleting the Version deletes its pod (the garbage collector, by ownerReferences)
        ns.kubectl("delete", "version", "shop.1")
        ns.wait(lambda: not pods_of(ns, function="shop", version="1"), "version 1's pod deleted")


SLOW = """\
import time
def handler(event, context):
    time.sleep(2)
    return "done"
"""


@pytest.mark.kube
def test_the_scale_up_rate_limits_cold_starts_from_the_pool(
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second environment of a version beyond the scale-up rate is a throttle, even with
    a pool pod ready for it."""
    env = {"KLAMBDA_SCALE_UP_PER_MINUTE": "1"}
    with cluster(kube_control_plane, kube_namespace, tmp_path, monkeypatch, env) as (ns, p, r):
        ns.apply(function("slow", SLOW))
        ns.wait_state("Function", "slow", "Active")
        ready_pool(ns, p)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(r.invoke, "slow", {})
            eventually(lambda: specialised(ns, "slow"), "the first call on its pod")
            second = r.invoke("slow", {})
            assert first.result()[0] == 200
        assert second[0] == 429, second
        assert json.loads(second[2])["Reason"] == "FunctionInvocationRateLimitExceeded"
        assert len(specialised(ns, "slow")) == 1
        assert len(ready_pool(ns, p)) >= 2  # the pod it would have taken is still there
