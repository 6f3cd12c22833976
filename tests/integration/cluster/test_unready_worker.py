"""A worker pod that turns unready while it serves a call (a readiness probe that timed out
on a busy node, an image function's runtime container starting again) still answers it:
the router keeps the pod's channel until its calls are done, and closes it after. A real
`klambda worker` behind the router's RemoteWorkers, the pod's leaving played by the
EndpointSlices' update the router would get."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from pathlib import Path

from klambda.contract import worker_environment
from klambda.execution import FunctionConfig
from klambda.invocation import Call
from klambda.router.registry import Target
from klambda.router.remote import RemoteWorkers
from klambda.testing import LOOPBACK, eventually, free_port, still_running

from tests.helpers import KLAMBDA, ROOT

CODE = """\
import time

def handler(event, context):
    time.sleep(event["sleep"])
    return {"slept": event["sleep"]}
"""


def test_a_call_outlives_its_pod_leaving_the_endpoints(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(CODE)
    cfg = FunctionConfig("slow", "1", "app.handler", "python3.11", 128, 10, {}, str(code), "")
    port = free_port()
    out_path = tmp_path / "worker.log"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [*KLAMBDA, "worker", "--function", "slow", "--version", "1",
             "--host", LOOPBACK, "--port", str(port)],
            env={**os.environ, **worker_environment(cfg)}, stdout=out,
            stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    try:
        eventually(
            lambda: still_running(proc, out_path) and b"klambda worker:" in out_path.read_bytes(),
            "the worker to start",
            timeout=30,
        )

        async def scenario() -> tuple[str, bytes, bool]:
            target = Target(cfg)
            addr = f"{LOOPBACK}:{port}"
            workers = RemoteWorkers(wait_for_worker_s=5.0)
            workers.set_endpoints({target.key: [addr]})
            call = Call(str(uuid.uuid4()), json.dumps({"sleep": 1.5}).encode())
            running = asyncio.ensure_future(workers.run(target, call))
            await asyncio.sleep(0.8)  # the call is in the handler now
            workers.set_endpoints({})  # the pod turned unready
            out = await running
            await asyncio.sleep(0.1)
            closed = addr not in workers._channels  # and its channel goes once it is done
            await workers.close()
            return out.status, out.body, closed

        status, body, closed = asyncio.run(scenario())
        assert (status, json.loads(body)) == ("ok", {"slept": 1.5})
        assert closed
    finally:
        proc.terminate()
        proc.wait(timeout=20)
