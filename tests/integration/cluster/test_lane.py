"""The invoke lane between router and worker (klambda.lane), on real `klambda worker`
processes: the router calls over it wherever a pod's EndpointSlice lists it, and it answers
as the worker's gRPC `Invoke` does (busy, not specialised, deadline, stopping)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from klambda.contract import worker_environment
from klambda.execution import FunctionConfig
from klambda.invocation import Call, call_to_proto
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.router import laneclient
from klambda.router.executor import NoCapacity
from klambda.router.laneclient import Lane, LaneFailed, LaneRefused, LaneUnavailable
from klambda.router.registry import Target
from klambda.router.remote import RemoteWorkers
from klambda.testing import accepts_tcp, eventually, free_port

CODE = """\
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": __import__("os").getpid(), "echo": event.get("echo")}
"""


@dataclass
class Worker:
    grpc: str
    lane: str
    proc: subprocess.Popen[bytes]
    log: Path


def _start(tmp: Path, argv: list[str], env: dict[str, str]) -> Iterator[Worker]:
    port, lane_port = free_port(), free_port()
    log = tmp / f"worker-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "klambda.cli.main", "worker", *argv, "--host", "127.0.0.1",
             "--port", str(port), "--lane-port", str(lane_port), "--no-cgroups"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            eventually(
                lambda: accepts_tcp(port) and accepts_tcp(lane_port),
                "the worker listening on gRPC and on its lane",
                timeout=30,
            )
            yield Worker(f"127.0.0.1:{port}", f"127.0.0.1:{lane_port}", proc, log)
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=20)


def config(code: Path) -> FunctionConfig:
    return FunctionConfig(
        "laned", "$LATEST", "app.handler", "python3.11", 128, 5, {}, str(code), ""
    )


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(CODE)
    env = {**os.environ, **worker_environment(config(code))}
    argv = ["--function", "laned", "--version", "$LATEST", "--max-environments", "1"]
    yield from _start(tmp_path, argv, env)


@pytest.fixture
def pool_worker(tmp_path: Path) -> Iterator[Worker]:
    argv = ["--pool", "python3.11", "--code-dir", str(tmp_path / "pool-code")]
    yield from _start(tmp_path, argv, dict(os.environ))


def request(event: bytes = b"{}") -> bytes:
    call = Call(request_id=str(uuid.uuid4()), payload=event)
    return call_to_proto(call).SerializeToString()


def answer(raw: bytes) -> worker_pb2.WorkerInvokeResponse:
    return worker_pb2.WorkerInvokeResponse.FromString(raw)


async def test_the_router_calls_over_the_lane_where_the_endpoints_list_one(
    worker: Worker,
) -> None:
    target = Target(config(Path("/var/task")))
    workers = RemoteWorkers(wait_for_worker_s=2)
    # the gRPC address listed is closed: only a call over the lane can be answered
    closed = f"127.0.0.1:{free_port()}"
    workers.set_endpoints({target.key: [closed]}, lanes={closed: worker.lane})
    try:
        for i in range(3):
            call = Call(request_id=str(uuid.uuid4()), payload=b'{"echo": %d}' % i)
            out = await workers.run(target, call)
            assert out.status == "ok", out
            assert f'"echo": {i}'.encode() in out.body
        # one busy environment (max 1): a second call at once is throttled, as over gRPC
        slow = Call(request_id=str(uuid.uuid4()), payload=b'{"sleep": 1.0}')
        running = asyncio.ensure_future(workers.run(target, slow))
        await asyncio.sleep(0.3)
        with pytest.raises(NoCapacity):
            await workers.run(target, Call(request_id=str(uuid.uuid4()), payload=b"{}"))
        assert (await running).status == "ok"
    finally:
        await workers.close()


async def test_many_calls_share_one_connection_each_answered_by_its_own_frame(
    tmp_path: Path,
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(CODE)
    env = {**os.environ, **worker_environment(config(code))}
    argv = ["--function", "laned", "--version", "$LATEST", "--max-environments", "8"]
    for w in _start(tmp_path, argv, env):
        lane = Lane.to(w.lane)
        try:
            events = [b'{"echo": %d, "sleep": %.2f}' % (i, 0.05 * (8 - i)) for i in range(8)]
            answers = await asyncio.gather(*(lane.invoke(request(e), 10) for e in events))
            for i, raw in enumerate(answers):
                assert b'"echo": %d' % i in answer(raw).body
        finally:
            lane.close()


async def test_busy_not_specialised_and_a_closed_port_are_told_apart(
    worker: Worker, pool_worker: Worker
) -> None:
    lane = Lane.to(worker.lane)
    pool_lane = Lane.to(pool_worker.lane)
    try:
        slow = asyncio.ensure_future(lane.invoke(request(b'{"sleep": 1.0}'), 10))
        await asyncio.sleep(0.3)
        with pytest.raises(LaneRefused, match="busy"):
            await lane.invoke(request(), 10)
        assert answer(await slow).body.startswith(b'{"pid"')
        with pytest.raises(LaneRefused, match="not specialised"):
            await pool_lane.invoke(request(), 10)
        with pytest.raises(LaneUnavailable, match="cannot connect"):
            await Lane("127.0.0.1", free_port()).invoke(request(), 10)
    finally:
        lane.close()
        pool_lane.close()


async def test_a_pod_that_never_answers_the_handshake_is_given_up_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a listener whose accept queue is full drops further SYNs, as a pod gone without a
    # reset would: the connection attempt is bounded, so the call can try another pod
    monkeypatch.setattr(laneclient, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = socket.create_connection(("127.0.0.1", port), timeout=2)  # the queue's one
        try:
            with pytest.raises(LaneUnavailable, match=r"within 0\.5s"):
                await asyncio.wait_for(Lane("127.0.0.1", port).invoke(request(), 10), 5)
        finally:
            queued.close()


async def test_a_call_past_the_routers_deadline_runs_to_its_end_and_the_next_gets_its_own(
    worker: Worker,
) -> None:
    lane = Lane.to(worker.lane)
    try:
        with pytest.raises(LaneFailed, match="Deadline Exceeded"):
            await lane.invoke(request(b'{"sleep": 1.5, "echo": "first"}'), 0.3)
        # it runs on in the worker, as on Lambda: its one environment is busy until it ends
        with pytest.raises(LaneRefused, match="busy"):
            await lane.invoke(request(), 10)
        await asyncio.sleep(1.5)
        raw = await lane.invoke(request(b'{"echo": "next"}'), 10)
        assert b'"echo": "next"' in answer(raw).body
    finally:
        lane.close()


async def test_over_grpc_too_a_call_left_behind_keeps_its_environment(worker: Worker) -> None:
    async with grpc.aio.insecure_channel(worker.grpc) as ch:
        invoke = worker_pb2_grpc.WorkerStub(ch).Invoke  # type: ignore[no-untyped-call]
        slow = call_to_proto(Call(str(uuid.uuid4()), b'{"sleep": 1.5, "echo": "first"}'))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await invoke(slow, timeout=0.3)
        assert gone.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.aio.AioRpcError) as busy:
            await invoke(call_to_proto(Call(str(uuid.uuid4()), b"{}")), timeout=10)
        assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await asyncio.sleep(1.5)
        resp = await invoke(call_to_proto(Call(str(uuid.uuid4()), b'{"echo": "next"}')), timeout=10)
        assert b'"echo": "next"' in resp.body


async def test_a_stopping_worker_finishes_the_call_in_flight_and_takes_no_new_one(
    worker: Worker,
) -> None:
    lane = Lane.to(worker.lane)
    try:
        await lane.invoke(request(), 10)  # connected, the environment warm
        slow = asyncio.ensure_future(lane.invoke(request(b'{"sleep": 1.0, "echo": "last"}'), 10))
        await asyncio.sleep(0.3)
        worker.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        with pytest.raises(LaneUnavailable):
            await lane.invoke(request(), 10)
        assert b'"echo": "last"' in answer(await slow).body
        await asyncio.to_thread(worker.proc.wait, 20)
        assert worker.proc.returncode == 0, worker.log.read_text()
    finally:
        lane.close()
