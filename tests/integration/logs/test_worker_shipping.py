"""A real `klambda worker` process, as a worker pod runs it (the worker contract's
environment, plus KLAMBDA_LOG_ENGINE_URL as the operator sets it when the chart deploys the
log engine): its invocations' START/END/REPORT and handler lines reach a real VictoriaLogs,
in the function's group and the environment's stream, and still go to its stdout."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import grpc
from klambda.contract import LOG_ENGINE_URL_ENV, worker_environment
from klambda.execution import FunctionConfig
from klambda.invocation import Call, call_to_proto
from klambda.logengine.client import LogEngine
from klambda.proto import worker_pb2_grpc
from klambda.testing import LOOPBACK, eventually, eventually_async, free_port, still_running

from tests.helpers import KLAMBDA, ROOT
from tests.logengine import victoria_logs

CODE = """\
def handler(event, context):
    print("charging", event["card"])
    return {"ok": True}
"""


def _start_worker(env: dict[str, str], port: int, out_path: Path) -> subprocess.Popen[bytes]:
    with out_path.open("wb") as out:
        return subprocess.Popen(
            [*KLAMBDA, "worker", "--function", "shop", "--version", "1",
             "--host", LOOPBACK, "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


async def test_a_worker_ships_its_records(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(CODE)
    cfg = FunctionConfig("shop", "1", "app.handler", "python3.11", 128, 3, {}, str(code), "")
    port = free_port()
    with victoria_logs(tmp_path / "vl") as vl:
        env = {**os.environ, **worker_environment(cfg), LOG_ENGINE_URL_ENV: vl.url}
        out_path = tmp_path / "worker.log"
        proc = _start_worker(env, port, out_path)
        try:
            eventually(
                lambda: (
                    still_running(proc, out_path) and b"klambda worker:" in out_path.read_bytes()
                ),
                "the worker to start",
                timeout=30,
            )
            async with grpc.aio.insecure_channel(f"{LOOPBACK}:{port}") as channel:
                stub = worker_pb2_grpc.WorkerStub(channel)
                ids = [str(uuid.uuid4()) for _ in range(3)]
                for i, rid in enumerate(ids):
                    call = Call(rid, f'{{"card": "c{i}"}}'.encode())
                    reply = await stub.Invoke(call_to_proto(call), timeout=30)
                    assert reply.status == "ok", reply
            engine = LogEngine(vl.url)
            try:
                now = dt.datetime.now(dt.UTC)

                async def shipped() -> list[dict[str, str]]:
                    await engine.flush()
                    result = await engine.run_query(
                        'filter @type = "REPORT" or @message like /charging/ '
                        "| stats count(*) as n by @log, @type | sort @type",
                        ["shop"],
                        now - dt.timedelta(minutes=5),
                        now + dt.timedelta(minutes=1),
                    )
                    rows = [
                        {c["field"]: c["value"] for c in row}
                        for row in result.insights()["results"]
                    ]
                    assert rows == [
                        {"@log": "000000000000:/aws/lambda/shop", "n": "3"},
                        {"@log": "000000000000:/aws/lambda/shop", "@type": "REPORT", "n": "3"},
                    ]
                    return rows

                await eventually_async(shipped, "the worker's records in the engine", timeout=30)
                streams = await engine.select('function:="shop" | uniq by ("@logStream")')
                assert len(streams) == 1
                # one environment, one stream: Lambda's log_stream_name, date/[version]id
                assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\]\w+", streams[0]["@logStream"])
            finally:
                await engine.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        assert b"charging c2" in out_path.read_bytes()  # stdout as before (kubectl logs)
