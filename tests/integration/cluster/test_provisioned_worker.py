"""A worker pod of provisioned concurrency (the operator sets KLAMBDA_PROVISIONED=1 on the
pods of a version that has some): a real `klambda worker` initialises its environment
before it listens, so the first call finds it warm and its REPORT has no Init Duration,
while an on-demand worker's first call is a cold start."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
from klambda.contract import PROVISIONED_ENV, worker_environment
from klambda.execution import FunctionConfig
from klambda.invocation import Call, call_to_proto
from klambda.proto import worker_pb2_grpc
from klambda.testing import LOOPBACK, eventually, free_port, still_running

from tests.helpers import KLAMBDA, ROOT

CODE = """\
import os, time
INIT_PID = os.getpid()
time.sleep(0.3)  # an init worth measuring

def handler(event, context):
    return {"initType": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""


@pytest.mark.parametrize(
    ("provisioned", "init_type"), [(True, "provisioned-concurrency"), (False, "on-demand")]
)
def test_a_provisioned_workers_first_call_has_no_init_duration(
    tmp_path: Path, provisioned: bool, init_type: str
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(CODE)
    cfg = FunctionConfig("shop", "1", "app.handler", "python3.11", 128, 3, {}, str(code), "")
    env = {**os.environ, **worker_environment(cfg)}
    if provisioned:
        env[PROVISIONED_ENV] = "1"
    port = free_port()
    out_path = tmp_path / "worker.log"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [*KLAMBDA, "worker", "--function", "shop", "--version", "1",
             "--host", LOOPBACK, "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    try:
        eventually(
            lambda: still_running(proc, out_path) and b"klambda worker:" in out_path.read_bytes(),
            "the worker to start",
            timeout=30,
        )
        with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
            stub = worker_pb2_grpc.WorkerStub(channel)
            call = Call(str(uuid.uuid4()), b"{}", log_tail=True)
            reply = stub.Invoke(call_to_proto(call), timeout=30)
        assert reply.status == "ok", reply
        assert init_type in reply.body.decode()
        (report,) = [line for line in reply.log_tail if line.startswith("REPORT")]
        assert reply.provisioned is provisioned
        assert reply.cold_start is not provisioned
        assert ("Init Duration" in report) is not provisioned, report
    finally:
        proc.terminate()
        proc.wait(20)
