"""Cluster mode against a real API server: the router learns Functions, Versions, Aliases
and worker EndpointSlices by watching, and forwards to real `klambda worker` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from klambda.contract import worker_environment
from klambda.execution import FunctionConfig
from klambda.testing import RouterRunner, eventually, free_port, still_running

from tests.helpers import KLAMBDA, ROOT
from tests.kube.controlplane import ControlPlane
from tests.netns import NetHost, network_host

CODE = """\
def handler(event, context):
    return {{"from": "{tag}", "version": context.function_version}}
"""


def function_spec() -> dict[str, Any]:
    return {
        "runtime": "python3.11",
        "handler": "app.handler",
        "memoryMB": 128,
        "timeoutSeconds": 3,
        "code": {"inline": {"app.py": CODE.format(tag="latest")}},
    }


def apply(plane: ControlPlane, ns: str, obj: dict[str, Any]) -> None:
    plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


@contextmanager
def worker(
    host: NetHost,
    tmp: Path,
    version: str,
    tag: str,
    source: str | None = None,
    max_environments: int = 4,
    function: str = "hello",
) -> Iterator[int]:
    """A `klambda worker` of `function` (`version`) on `host`; its output in
    `worker-VERSION.log` (`worker-FUNCTION-VERSION.log` for a function other than hello)."""
    stem = version if function == "hello" else f"{function}-{version}"
    code = tmp / f"code-{stem}"
    code.mkdir()
    (code / "app.py").write_text(source or CODE.format(tag=tag))
    port = free_port()
    cfg = FunctionConfig(function, version, "app.handler", "python3.11", 128, 3, {}, str(code), "")
    env = {**os.environ, **worker_environment(cfg)}
    logged = tmp / f"worker-{stem}.log"
    log = open(logged, "wb")  # noqa: SIM115 - closed below
    argv = [
        *KLAMBDA,
        "worker",
        "--function",
        function,
        "--version",
        version,
        "--host",
        host.address,
        "--port",
        str(port),
        "--max-environments",
        str(max_environments),
    ]
    proc = subprocess.Popen(
        host.wrap(argv),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        eventually(
            lambda: still_running(proc, logged) and b"klambda worker:" in logged.read_bytes(),
            f"worker {function}:{version} to start",
            timeout=20,
        )
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()


def endpoint_slice(
    version: str, address: str, port: int, function: str = "hello"
) -> dict[str, Any]:
    label = "latest" if version == "$LATEST" else version
    name = f"{function}-{'latest' if version == '$LATEST' else 'v' + version}"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-test",
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "tests.klambda.io",
                "klambda.io/function": function,
                "klambda.io/version": label,
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "grpc", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
    }


def cluster_router(plane: ControlPlane, ns: str, tmp: Path) -> RouterRunner:
    """`klambda router` in cluster mode, watching `ns` of the control plane."""
    return RouterRunner(
        "router",
        "--namespace",
        ns,
        "--kubeconfig",
        str(plane.kubeconfig),
        "--host",
        "127.0.0.1",
        "--wait-for-worker",
        "3",
        "--no-auth",  # routing is what these tests are about: access has tests of its own
        workdir=tmp,
    )


def test_router_follows_the_api_server(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    spec = function_spec()
    apply(
        plane,
        ns,
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": "hello"},
            "spec": spec,
        },
    )
    for v in ("1", "2"):
        apply(
            plane,
            ns,
            {
                "apiVersion": "klambda.io/v1alpha1",
                "kind": "Version",
                "metadata": {"name": f"hello.{v}"},
                "spec": {
                    "function": "hello",
                    "version": v,
                    "codeSha256": f"sha-{v}",
                    "config": spec,
                },
            },
        )
    alias = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": "hello.prod"},
        "spec": {"function": "hello", "version": "1"},
    }
    apply(plane, ns, alias)
    with (
        network_host() as host,
        worker(host, tmp_path, "1", "one") as p1,
        worker(host, tmp_path, "2", "two") as p2,
        cluster_router(plane, ns, tmp_path) as r,
    ):
        apply(plane, ns, endpoint_slice("1", host.address, p1))
        apply(plane, ns, endpoint_slice("2", host.address, p2))

        def reply(q: str) -> Any:
            status, _headers, body = r.invoke(f"hello:{q}", {})
            return status, json.loads(body)

        eventually(lambda: reply("prod")[0] == 200, "the alias prod served", timeout=10)
        assert reply("prod")[1] == {"from": "one", "version": "1"}
        assert reply("2")[1] == {"from": "two", "version": "2"}
        status, _h, _body = r.invoke("hello:7")
        assert status == 404

        # kubectl apply of an alias change reroutes within a second or two
        alias["spec"]["version"] = "2"
        apply(plane, ns, alias)
        t0 = time.monotonic()
        eventually(lambda: reply("prod")[1]["from"] == "two", "prod on version 2", timeout=5)
        assert time.monotonic() - t0 < 2.5

        # weighted routing from the API server's alias
        alias["spec"] = {
            "function": "hello",
            "version": "1",
            "routing": {"additionalVersion": "2", "weight": 0.5},
        }
        apply(plane, ns, alias)
        eventually(
            lambda: r.invoke("hello:prod")[1]["x-amz-executed-version"] == "2",
            "a call of prod routed to version 2",
            timeout=10,
        )
        seen = {r.invoke("hello:prod")[1]["x-amz-executed-version"] for _ in range(60)}
        assert seen == {"1", "2"}

        # the router writes demand for the operator's scaling
        def demand() -> Any:
            obj = plane.get_json("version", "hello.1", "-n", ns)
            return obj["metadata"].get("annotations", {}).get("klambda.io/last-invoked")

        eventually(demand, "the last-invoked annotation on version 1", timeout=5)

        # a version whose workers are gone answers 503 after the wait, not a hang
        plane.kubectl("delete", "endpointslice", "hello-v2-test", "-n", ns)
        eventually(lambda: r.invoke("hello:2")[0] == 503, "503 from version 2", timeout=15)
        # deleting the Function removes it from the router
        plane.kubectl("delete", "function", "hello", "-n", ns)
        eventually(lambda: r.invoke("hello")[0] == 404, "404 for hello", timeout=10)


BROKEN = "raise RuntimeError('no database')\n"
SLOW = """\
import time
def handler(event, context):
    time.sleep(1.5)
    return "done"
"""


def test_worker_pods_fail_init_and_throttle_as_local_environments_do(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    """An init failure in a worker pod writes START/END/REPORT there and counts as a cold
    start and an error at the router; a call no pod can take is a counted throttle."""
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    spec = function_spec()
    fn = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": "hello"}}
    apply(plane, ns, {**fn, "spec": spec})
    for v in ("1", "2"):
        apply(
            plane,
            ns,
            {
                "apiVersion": "klambda.io/v1alpha1",
                "kind": "Version",
                "metadata": {"name": f"hello.{v}"},
                "spec": {"function": "hello", "version": v, "codeSha256": "x", "config": spec},
            },
        )
    with (
        network_host() as host,
        worker(host, tmp_path, "1", "broken", source=BROKEN) as p1,
        worker(host, tmp_path, "2", "slow", source=SLOW, max_environments=1) as p2,
        cluster_router(plane, ns, tmp_path) as r,
    ):
        apply(plane, ns, endpoint_slice("1", host.address, p1))
        apply(plane, ns, endpoint_slice("2", host.address, p2))
        eventually(lambda: r.invoke("hello:1")[0] == 200, "an answer from version 1")
        _status, headers, body = r.invoke("hello:1")
        assert headers["x-amz-function-error"] == "Unhandled"
        error = json.loads(body)
        assert (error["errorType"], error["errorMessage"]) == ("RuntimeError", "no database")
        log = (tmp_path / "worker-1.log").read_text()
        for line in ("START RequestId:", "END RequestId:", "REPORT RequestId:"):
            assert line in log
        assert "Status: error\tError Type: RuntimeError" in log
        assert r.metric("klambda_cold_starts_total", function="hello", version="1") >= 2
        assert (
            r.metric("klambda_errors_total", function="hello", version="1", reason="init_error")
            >= 2
        )

        eventually(lambda: r.invoke("hello:2")[0] == 200, "an answer from version 2")
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: r.invoke("hello:2"), range(2)))
        assert sorted(a[0] for a in answers) == [200, 429]
        throttled = next(a for a in answers if a[0] == 429)
        assert json.loads(throttled[2])["Reason"] == "FunctionInvocationRateLimitExceeded"
        assert (
            r.metric(
                "klambda_throttles_total",
                function="hello",
                reason="FunctionInvocationRateLimitExceeded",
            )
            == 1
        )
