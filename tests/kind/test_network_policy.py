"""The chart's NetworkPolicies are enforced, not only stored (kube-router in the node image).

Only the router may open connections to worker pods and to NATS: a pod in another namespace
is refused, while the same probe reaches CoreDNS (so a refusal is the policy, not a broken
network), and the router's own pod reaches both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, RELEASE_NAMESPACE, ROOT, Cluster, wait_for

PROBE_NAMESPACE = "np-probe"
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
    "    print('open')\n"
    "except OSError as err:\n"
    "    print('closed', err)\n"
)


def _probe_pod(namespace: str) -> dict[str, object]:
    restricted = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "probe",
                    "image": "klambda/runtime:0.1.0",
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                    "securityContext": restricted,
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }


@pytest.fixture(scope="module")
def probe(cluster: Cluster) -> Iterator[str]:
    cluster.kubectl("create", "namespace", PROBE_NAMESPACE)
    try:
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(_probe_pod(PROBE_NAMESPACE)))
        cluster.kubectl(
            "wait", "-n", PROBE_NAMESPACE, "--for=condition=Ready", "pod/probe", "--timeout=120s"
        )
        yield PROBE_NAMESPACE
    finally:
        cluster.kubectl("delete", "namespace", PROBE_NAMESPACE, "--wait=false", check=False)


def _connect(cluster: Cluster, namespace: str, pod: str, ip: str, port: int) -> str:
    out = cluster.kubectl(
        "exec", "-n", namespace, pod, "--", "python", "-c", CONNECT, ip, str(port)
    )
    return out.split()[0]


def _pod_ip(cluster: Cluster, namespace: str, selector: str) -> str:
    """The address of a running pod of `selector`, waiting a little for one: a pool pod
    that served a function's first call is relabelled into it just after the answer."""

    def running() -> list[dict[str, Any]]:
        pods = cluster.get("pods", "-n", namespace, "-l", selector)["items"]
        return [p for p in pods if p["status"].get("podIP") and p["status"]["phase"] == "Running"]

    found = wait_for(f"a running pod for {selector} in {namespace}", running, timeout=30)
    ip: str = found[0]["status"]["podIP"]
    return ip


def _worker_ip(cluster: Cluster) -> str:
    cluster.kubectl(
        "apply", "-n", FUNCTIONS_NAMESPACE, "-f", str(ROOT / "examples/functions/hello.yaml")
    )

    def started() -> bool:
        status, _, _ = cluster.invoke("hello", {"name": "policy"})
        return status == 200

    wait_for("hello to answer", started, timeout=120, interval=2)
    return _pod_ip(cluster, FUNCTIONS_NAMESPACE, "klambda.io/function=hello")


def test_another_namespace_reaches_neither_workers_nor_nats(cluster: Cluster, probe: str) -> None:
    worker = _worker_ip(cluster)
    nats = _pod_ip(cluster, RELEASE_NAMESPACE, "app.kubernetes.io/component=nats")
    dns = _pod_ip(cluster, "kube-system", "k8s-app=kube-dns")
    assert _connect(cluster, probe, "probe", dns, 53) == "open"
    assert _connect(cluster, probe, "probe", worker, 9000) == "closed"
    assert _connect(cluster, probe, "probe", nats, 4222) == "closed"


def test_the_router_reaches_workers_and_nats(cluster: Cluster) -> None:
    worker = _worker_ip(cluster)
    nats = _pod_ip(cluster, RELEASE_NAMESPACE, "app.kubernetes.io/component=nats")
    selector = "app.kubernetes.io/component=router"
    # a running one: a rollout (an earlier test's helm upgrade) leaves the old pod listed
    # for a while, its container completed
    routers = cluster.get(
        "pods", "-n", RELEASE_NAMESPACE, "-l", selector, "--field-selector", "status.phase=Running"
    )
    name = next(
        p["metadata"]["name"]
        for p in routers["items"]
        if not p["metadata"].get("deletionTimestamp")
    )
    assert _connect(cluster, RELEASE_NAMESPACE, name, worker, 9000) == "open"
    assert _connect(cluster, RELEASE_NAMESPACE, name, nats, 4222) == "open"
