"""A user's container image built FROM klambda's Lambda-style base (awslambdaric as its
entry point) runs unchanged on the cluster: the image is the pod's container, the worker
beside it serves it the Runtime API, and a timeout kills the runtime, whose container the
kubelet starts again for the next call."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, ROOT, Cluster, wait_for

APP = """\
import os, time

def handler(event, context):
    print("handling", event.get("mode"))
    if event.get("mode") == "sleep":
        time.sleep(30)
    if event.get("mode") == "raise":
        raise ValueError("no such order")
    return {"event": event, "function": context.function_name, "cwd": os.getcwd(),
            "uid": os.getuid(), "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
            "remaining": context.get_remaining_time_in_millis(), "pid": os.getpid()}
"""


@pytest.fixture(scope="module")
def user_image(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    docker = str(cluster.bin_dir / "docker")
    env = {**os.environ, "PY": sys.executable, "DOCKER": docker}
    base = subprocess.run(
        ["bash", str(ROOT / "scripts/images/lambda-base.sh")],
        capture_output=True, text=True, check=True, timeout=900, env=env,
    ).stdout.strip()  # fmt: skip
    ctx = tmp_path_factory.mktemp("image")
    (ctx / "app.py").write_text(APP)
    (ctx / "Dockerfile").write_text(
        f'FROM {base}\nCOPY app.py ${{LAMBDA_TASK_ROOT}}/\nCMD ["app.handler"]\n'
    )
    ref = f"klambda-test/orders-image:{uuid.uuid4().hex[:8]}"
    subprocess.run([docker, "build", "-q", "-t", ref, str(ctx)], check=True, timeout=600)
    subprocess.run(
        [str(cluster.bin_dir / "kind"), "load", "docker-image", "--name", cluster.name, ref],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    yield ref
    subprocess.run([docker, "rmi", "-f", ref], capture_output=True, check=False)


def _manifest(image: str) -> str:
    return json.dumps(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": "orders-image"},
            "spec": {
                "runtime": "python3.11",
                "handler": "app.handler",
                "code": {"image": image},
                "memoryMB": 256,
                "timeoutSeconds": 3,
            },
        }
    )


def _error(headers: dict[str, str]) -> str | None:
    return {k.lower(): v for k, v in headers.items()}.get("x-amz-function-error")


def _tail(headers: dict[str, str]) -> str:
    return base64.b64decode(headers["X-Amz-Log-Result"]).decode()


def test_a_user_image_runs_unchanged_beside_its_worker(cluster: Cluster, user_image: str) -> None:
    cluster.kubectl("apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-", stdin=_manifest(user_image))
    try:
        wait_for(
            "Function orders-image to be Active",
            lambda: (
                cluster.get("function", "orders-image", "-n", FUNCTIONS_NAMESPACE)
                .get("status", {})
                .get("state")
                == "Active"
            ),
        )
        status, headers, body = cluster.invoke("orders-image", {"n": 1}, tail=True)
        assert status == 200, body
        assert _error(headers) is None, body
        first = json.loads(body)
        assert first["event"] == {"n": 1}
        assert first["function"] == "orders-image"
        assert first["cwd"] == "/var/task"  # the image's WORKDIR, as on Lambda
        assert first["uid"] == 10001  # the pod's user, the worker's too
        assert first["runtime_api"] == "127.0.0.1:9001"
        assert 0 < first["remaining"] <= 3000
        report = [x for x in _tail(headers).splitlines() if x.startswith("REPORT")]
        assert report, _tail(headers)
        assert "Init Duration" in report[0]
        assert "Memory Size: 256 MB" in report[0]

        status, headers, body = cluster.invoke("orders-image", {"mode": "raise"}, tail=True)
        assert (status, _error(headers)) == (200, "Unhandled"), body
        assert json.loads(body)["errorType"] == "ValueError"
        assert "Init Duration" not in _tail(headers)  # the same environment, warm

        status, headers, body = cluster.invoke("orders-image", {"mode": "sleep"})
        assert (status, _error(headers)) == (200, "Unhandled"), body
        assert json.loads(body)["errorType"] == "Sandbox.Timedout"
        # the worker killed the runtime; the kubelet started its container again
        status, headers, body = cluster.invoke("orders-image", {"n": 2}, tail=True)
        assert status == 200, body
        assert json.loads(body)["pid"] != first["pid"]
        assert "Init Duration" in _tail(headers)

        def pod() -> dict[str, Any]:
            pods = cluster.get(
                "pods", "-n", FUNCTIONS_NAMESPACE, "-l", "klambda.io/function=orders-image"
            )["items"]
            (running,) = [p for p in pods if p["status"]["phase"] == "Running"]
            return running  # type: ignore[no-any-return]

        assert [c["image"] for c in pod()["spec"]["containers"]] == [user_image]
        # started again after the timeout's kill (the kubelet reports it shortly after)
        wait_for(
            "the runtime container's restart in the pod's status",
            lambda: pod()["status"]["containerStatuses"][0]["restartCount"] >= 1,
            timeout=60,
        )
        (runtime,) = pod()["status"]["containerStatuses"]
        assert runtime["name"] == "function"
        (worker,) = pod()["status"]["initContainerStatuses"]
        assert (worker["name"], worker["restartCount"], worker["ready"]) == ("worker", 0, True)
    finally:
        cluster.kubectl("delete", "function", "orders-image", "-n", FUNCTIONS_NAMESPACE)
