"""A warm pool worker of a custom runtime (`klambda worker --pool provided.al2023`, as the
operator starts one per runtime in use): no zygote, specialised with a bootstrap, then
invoked over the worker's gRPC service like any other."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
from klambda import codestore
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.testing import accepts_tcp, eventually, free_port

ROOT = Path(__file__).resolve().parents[3]
TUTORIAL = ROOT / "examples" / "custom-runtime" / "tutorial"


def test_custom_runtime_pool_worker(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "klambda.cli.main", "worker", "--pool", "provided.al2023",
         "--host", "127.0.0.1", "--port", str(port), "--code-dir", str(tmp_path / "code")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        eventually(lambda: accepts_tcp(port), "the pool worker listening", timeout=30)
        files = {n: (TUTORIAL / n).read_bytes() for n in ("bootstrap", "function.sh")}
        stub = worker_pb2_grpc.WorkerStub(  # type: ignore[no-untyped-call]
            grpc.insecure_channel(f"127.0.0.1:{port}")
        )
        request = worker_pb2.SpecialiseRequest(
            function="tutorial",
            version="$LATEST",
            handler="function.handler",
            runtime="provided.al2023",
            memory_mb=128,
            timeout_seconds=5,
            code_sha256=codestore.digest(files),
            files=[worker_pb2.CodeFile(path=n, content=c) for n, c in files.items()],
        )
        stub.Specialise(request, timeout=10)
        reply = stub.Invoke(
            worker_pb2.WorkerInvokeRequest(
                request_id=str(uuid.uuid4()), payload=json.dumps({"n": 1}).encode(), log_tail=True
            ),
            timeout=30,
        )
        assert reply.status == "ok", reply
        assert reply.body.decode().strip() == "Echoing request: '{\"n\": 1}'"
        assert reply.cold_start
        assert any(line.startswith("REPORT") for line in reply.log_tail)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
