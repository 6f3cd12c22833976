"""An image function's worker in cluster mode (`klambda worker --runtime-api-port`), outside
a cluster: the pod's shared process namespace is a PID namespace of the test's own (its
PID 1 a shell, as the pod's is its pause), the runtime container is awslambdaric in a
cgroup of its own, and the kubelet that starts the container again after the worker
killed it is a shell loop. The worker is invoked over its gRPC service, as the router
does."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from klambda import contract
from klambda.execution import FunctionConfig
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.testing import accepts_tcp, eventually, free_port

from tests.integration.runtimeapi.functions import APP

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="a PID namespace and a cgroup of the runtime's need root"
)


def _cgroup_dir(name: str) -> Path:
    """A new cgroup for the runtime container (v2, else v1's memory hierarchy)."""
    root = Path("/sys/fs/cgroup")
    base = root if (root / "cgroup.procs").exists() else root / "memory"
    path = base / name
    path.mkdir()
    return path


class Pod:
    def __init__(self, stub: worker_pb2_grpc.WorkerStub, log: Path) -> None:
        self.stub = stub
        self.log = log

    def invoke(self, event: dict[str, object]) -> worker_pb2.WorkerInvokeResponse:
        reply: worker_pb2.WorkerInvokeResponse = self.stub.Invoke(
            worker_pb2.WorkerInvokeRequest(
                request_id=str(uuid.uuid4()), payload=json.dumps(event).encode(), log_tail=True
            ),
            timeout=60,
        )
        return reply


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    code = tmp_path / "task"
    code.mkdir()
    (code / "app.py").write_text(APP)
    cfg = FunctionConfig(
        function="image-fn", version="$LATEST", handler="app.handler", runtime="python3.11",
        memory_mb=256, timeout_s=2, environment={"GREETING": "hi"}, code_root=str(code),
        code_sha256="sha256-of-the-image",
    )  # fmt: skip
    port, api_port = free_port(), free_port()
    worker_env = {**os.environ, **contract.worker_environment(cfg, port)}
    runtime_env = contract.runtime_container_environment(cfg)
    runtime_env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{api_port}"
    runtime_env["PATH"] = os.environ["PATH"]
    runtime_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    cgroup = _cgroup_dir(f"klambda-runtime-{uuid.uuid4().hex[:8]}")
    worker = shlex.join(
        [sys.executable, "-m", "klambda.cli.main", "worker", "--function", "image-fn",
         "--version", "$LATEST", "--host", "127.0.0.1", "--port", str(port),
         "--runtime-api-port", str(api_port), "--no-cgroups"]
    )  # fmt: skip
    runtime = shlex.join([sys.executable, "-m", "awslambdaric", "app.handler"])
    # the runtime container: its own cgroup, its own environment, started again when it ends
    container = (
        f"echo $$ > {shlex.quote(str(cgroup / 'cgroup.procs'))}; cd {shlex.quote(str(code))}; "
        + " ".join(f"export {k}={shlex.quote(v)};" for k, v in runtime_env.items())
        + f" exec {runtime}"
    )
    script = f"{worker} & while true; do /bin/sh -c {shlex.quote(container)}; sleep 0.2; done"
    log = tmp_path / "pod.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "/bin/sh", "-c", script],
            env=worker_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        eventually(lambda: accepts_tcp(port), "the worker listening", timeout=60)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield Pod(worker_pb2_grpc.WorkerStub(channel), log)  # type: ignore[no-untyped-call]
        channel.close()
    finally:
        proc.kill()  # and so (--kill-child) the namespace's PID 1, and every process in it
        proc.wait(timeout=20)
        eventually(lambda: not (cgroup / "cgroup.procs").read_text().split(), "cgroup empty")
        cgroup.rmdir()


def test_the_pods_runtime_container_is_the_environment(pod: Pod) -> None:
    first = pod.invoke({"mode": "ok"})
    assert first.status == "ok", first
    body = json.loads(first.body)
    assert body["arn"].endswith(":function:image-fn")
    assert 0 < body["remaining"] <= 2000
    assert first.cold_start
    report = [x for x in first.log_tail if x.startswith("REPORT")]
    assert report, first.log_tail
    assert "Init Duration" in report[0]
    assert "Memory Size: 256 MB" in report[0]
    assert first.max_memory_mb > 10  # awslambdaric's own, read from /proc

    warm = pod.invoke({"mode": "ok"})
    assert (warm.status, warm.cold_start) == ("ok", False)
    assert json.loads(warm.body)["pid"] == body["pid"]

    failed = pod.invoke({"mode": "raise"})
    assert (failed.status, failed.error_type) == ("error", "KeyError")
    assert json.loads(failed.body)["errorMessage"] == "'missing'"


def test_a_timeout_kills_the_runtime_and_the_restarted_one_serves_next(pod: Pod) -> None:
    before = json.loads(pod.invoke({"mode": "ok"}).body)["pid"]
    timed_out = pod.invoke({"mode": "sleep"})
    assert (timed_out.status, timed_out.error_type) == ("timeout", "Sandbox.Timedout")
    assert "Task timed out after 2.00 seconds" in json.loads(timed_out.body)["errorMessage"]
    again = pod.invoke({"mode": "ok"})
    assert (again.status, again.cold_start) == ("ok", True)
    assert json.loads(again.body)["pid"] != before


def test_a_runtime_that_exits_during_a_call_is_an_exit_error(pod: Pod) -> None:
    crashed = pod.invoke({"mode": "exit"})
    assert (crashed.status, crashed.error_type) == ("crash", "Runtime.ExitError")
    assert "Runtime exited without providing a reason" in json.loads(crashed.body)["errorMessage"]
    assert pod.invoke({"mode": "ok"}).status == "ok"
