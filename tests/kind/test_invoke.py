"""A Function applied with kubectl answers through the router's NodePort, from a worker pod.

The first invocation starts an environment in a worker pod (its REPORT carries an Init
Duration); the second is served warm by the same environment (no Init Duration).
"""

from __future__ import annotations

import base64
import json
import subprocess

from .conftest import FUNCTIONS_NAMESPACE, ROOT, Cluster, wait_for


def _active(cluster: Cluster, name: str) -> bool:
    fn = cluster.get("function", name, "-n", FUNCTIONS_NAMESPACE)
    return fn.get("status", {}).get("state") == "Active"


def test_hello_from_kubectl_apply_to_a_warm_second_call(cluster: Cluster) -> None:
    cluster.kubectl(
        "apply", "-n", FUNCTIONS_NAMESPACE, "-f", str(ROOT / "examples/functions/hello.yaml")
    )
    wait_for("Function hello to be Active", lambda: _active(cluster, "hello"))

    status, headers, body = cluster.invoke("hello", {"name": "Ada"}, tail=True)
    assert status == 200, body
    assert json.loads(body) == {"message": "Hello, Ada!"}
    first = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    assert "Init Duration" in first, first

    status, headers, body = cluster.invoke("hello", {"name": "Bo"}, tail=True)
    assert status == 200, body
    assert json.loads(body) == {"message": "Hello, Bo!"}
    second = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    assert "REPORT RequestId" in second
    assert "Init Duration" not in second, second

    # a pool pod that served the first call is relabelled into the function just after it
    def running_pods() -> list[str]:
        pods = cluster.get("pods", "-n", FUNCTIONS_NAMESPACE, "-l", "klambda.io/function=hello")
        return [p["metadata"]["name"] for p in pods["items"] if p["status"]["phase"] == "Running"]

    running = wait_for("hello's running pod", running_pods, timeout=30)
    # the worker agent runs as the non-root user the operator sets, like the release
    workers = cluster.process_uids(FUNCTIONS_NAMESPACE, f"io.kubernetes.pod.name={running[0]}")
    assert workers
    assert all(ids == ["10001", "10001"] for ids in workers.values()), workers


def test_the_cli_invokes_through_the_cluster(cluster: Cluster) -> None:
    cluster.kubectl(
        "apply", "-n", FUNCTIONS_NAMESPACE, "-f", str(ROOT / "examples/functions/hello.yaml")
    )
    wait_for("Function hello to be Active", lambda: _active(cluster, "hello"))
    out = subprocess.run(
        [str(ROOT / ".venv/bin/klambda"), "invoke", "hello", "--payload", '{"name": "Cy"}',
         "--endpoint", cluster.http],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"message": "Hello, Cy!"}
