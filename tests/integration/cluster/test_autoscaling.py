"""Provisioned autoscaling in cluster mode against a real API server: the router reads its
calls in flight against an Alias's provisioned workers and writes the count it decides on
the Alias (`spec.provisionedConcurrency`), where the operator would act on it."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from klambda.testing import RouterRunner, eventually

from tests.helpers import ROOT
from tests.integration.cluster.test_cluster_router import (
    apply,
    endpoint_slice,
    function_spec,
    worker,
)
from tests.kube.controlplane import ControlPlane
from tests.netns import network_host

STATUS = "/klambda/v1/functions/hello/provisioned-autoscaling?Qualifier=live"
BUSY = """\
import time
def handler(event, context):
    time.sleep(0.3)
    return "ok"
"""


def test_the_router_writes_the_provisioned_concurrency_it_decides(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    spec = function_spec()
    fn = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": "hello"}}
    apply(plane, ns, {**fn, "spec": spec})
    version = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Version",
        "metadata": {"name": "hello.1"},
        "spec": {"function": "hello", "version": "1", "codeSha256": "sha-1", "config": spec},
    }
    apply(plane, ns, version)
    alias: dict[str, Any] = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": "hello.live"},
        "spec": {
            "function": "hello",
            "version": "1",
            "provisionedConcurrency": 1,
            "provisionedAutoscaling": {
                "minCapacity": 1,
                "maxCapacity": 3,
                "targetUtilization": 0.5,
                "scaleInCooldownSeconds": 3,
            },
        },
    }
    apply(plane, ns, alias)

    def provisioned() -> int:
        obj = plane.get_json("alias", "hello.live", "-n", ns)
        return int(obj["spec"].get("provisionedConcurrency", 0))

    env = {
        "KLAMBDA_AUTOSCALE_PERIOD_SECONDS": "0.2",
        "KLAMBDA_AUTOSCALE_EVALUATION_SECONDS": "1",
    }
    with (
        network_host() as host,
        worker(host, tmp_path, "1", "one", source=BUSY, max_environments=4) as port,
        RouterRunner(
            "router", "--namespace", ns, "--kubeconfig", str(plane.kubeconfig),
            "--host", "127.0.0.1", "--wait-for-worker", "3", "--no-auth", workdir=tmp_path, env=env,
        ) as r,
    ):  # fmt: skip
        apply(plane, ns, endpoint_slice("1", host.address, port))
        eventually(lambda: r.invoke("hello:live")[0] == 200, "hello:live served", timeout=15)

        stop = threading.Event()

        def load() -> None:
            deadline = time.monotonic() + 40
            while not stop.is_set() and time.monotonic() < deadline:
                r.invoke("hello:live")

        callers = [threading.Thread(target=load) for _ in range(3)]
        for c in callers:
            c.start()
        try:
            eventually(lambda: provisioned() == 3, "the router to write 3 on the Alias", timeout=30)
        finally:
            stop.set()
            for c in callers:
                c.join()
        idle = time.monotonic()
        eventually(lambda: provisioned() == 1, "back to the minimum after idling", timeout=20)
        assert time.monotonic() - idle >= 2.5
        with_status = json.loads(
            urlopen_text(
                r.url + "/klambda/v1/functions/hello/provisioned-autoscaling?Qualifier=live"
            )
        )
        assert with_status["lastScaling"]["provisionedConcurrency"] == 1


def urlopen_text(url: str) -> str:

    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())
