"""A cold start on a pool pod ends in its claim even when its call ends first, and the
claim waits for the router's cold starts to answer (at most CLAIM_HOLD_S).

A pool pod specialised and never claimed would stay in its pool: ready, counted by the
pool's ReplicaSet, refusing every other version (the pool one pod short for good). Here a
real pool worker (`klambda worker --pool python3.11`) is the pod, and the cluster's part
of a cold start (the version's code, its owner, the claim's relabel: the API server's,
tested against one in test_pool.py) is played by `Gate`, which holds the code back until
the call has been cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from klambda import codestore
from klambda.execution import FunctionConfig
from klambda.invocation import Call
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.router import remote
from klambda.router.pool import CodePackage, PoolPod
from klambda.router.registry import Target
from klambda.router.remote import RemoteWorkers
from klambda.testing import accepts_tcp, eventually, free_port

FILES = {"app.py": b"def handler(event, context):\n    return {'ok': True}\n"}
CONFIG = FunctionConfig(
    function="hasty",
    version="$LATEST",
    handler="app.handler",
    runtime="python3.11",
    memory_mb=128,
    timeout_s=10,
    environment={},
    code_root="/var/task",
    code_sha256=codestore.digest(FILES),
)
OWNER = {"kind": "Function", "name": "hasty", "uid": "6a0b3c52-0000-4000-8000-000000000001"}


class Gate:
    """The cluster's part of a cold start, holding the code back until `release` is set."""

    def __init__(self, files: dict[str, bytes] = FILES) -> None:
        self.files = files
        self.release = asyncio.Event()
        self.asked = asyncio.Event()
        self.claims: list[tuple[str, Mapping[str, str]]] = []
        self.claimed = asyncio.Event()  # set at each claim

    def runtime_of(self, target: Target) -> str | None:
        return target.config.runtime

    def given_config(self, target: Target) -> FunctionConfig:
        # the CodeSha256 of the files, as for an inline $LATEST whose status lags its spec
        return replace(target.config, code_sha256=codestore.digest(self.files))

    def owner_of(self, target: Target) -> Mapping[str, str] | None:
        return OWNER

    async def code(self, target: Target) -> tuple[FunctionConfig, CodePackage]:
        self.asked.set()
        await self.release.wait()
        return self.given_config(target), CodePackage(files=self.files)

    def claim(self, pod: PoolPod, cfg: FunctionConfig, owner: Mapping[str, str]) -> None:
        self.claims.append((pod.name, owner))
        self.claimed.set()

    async def claims_made(self, n: int) -> None:
        while len(self.claims) < n:
            self.claimed.clear()
            await self.claimed.wait()


@contextlib.contextmanager
def running_pool_worker(folder: Path) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with (folder / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "klambda.cli.main", "worker", "--pool", "python3.11",
             "--host", "127.0.0.1", "--port", str(port), "--code-dir", str(folder / "code"),
             "--no-cgroups"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            eventually(lambda: accepts_tcp(port), "the pool worker listening", timeout=30)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture
def pool_worker(tmp_path: Path) -> Iterator[str]:
    with running_pool_worker(tmp_path / "a") as addr:
        yield addr


@pytest.fixture
def second_pool_worker(tmp_path: Path) -> Iterator[str]:
    with running_pool_worker(tmp_path / "b") as addr:
        yield addr


async def test_a_cold_start_whose_call_is_cancelled_still_specialises_and_claims_its_pod(
    pool_worker: str,
) -> None:
    gate = Gate()
    workers = RemoteWorkers(specialiser=gate)
    workers.set_pool_endpoints({"python3.11": [PoolPod("pool-a", "uid-a", pool_worker)]})
    target = Target(CONFIG)
    call = Call(request_id=str(uuid.uuid4()), payload=b"{}")
    try:
        running = asyncio.ensure_future(workers.run(target, call))
        await asyncio.wait_for(gate.asked.wait(), 10)
        running.cancel()  # the caller went away (its deadline, a closed stream) mid-start
        with pytest.raises(asyncio.CancelledError):
            await running
        gate.release.set()
        await asyncio.wait_for(workers.settle(), 20)

        # the pod was given the version and claimed for its owner all the same...
        assert gate.claims == [("pool-a", OWNER)]
        assert workers.claimed[target.key].keys() == {pool_worker}
        # ...so it is the version's warm pod now: the next call runs there
        out = await workers.run(target, Call(request_id=str(uuid.uuid4()), payload=b"{}"))
        assert (out.status, out.body) == ("ok", b'{"ok": true}'), out
        # and it refuses any other version
        other = worker_pb2.SpecialiseRequest(
            function="other", version="$LATEST", handler="app.handler", runtime="python3.11",
            memory_mb=128, timeout_seconds=10, code_sha256=CONFIG.code_sha256,
            files=[worker_pb2.CodeFile(path=p, content=c) for p, c in FILES.items()],
        )  # fmt: skip
        async with grpc.aio.insecure_channel(pool_worker) as ch:
            stub = worker_pb2_grpc.WorkerStub(ch)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Specialise(other, timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await workers.close()


async def test_the_pod_of_a_cold_start_serves_the_next_call_while_the_status_lags(
    pool_worker: str,
) -> None:
    # $LATEST just edited: the router's config still has the operator's last CodeSha256,
    # the pod is given the spec's files (and their digest); the next call is still its
    gate = Gate()
    gate.release.set()
    workers = RemoteWorkers(specialiser=gate, wait_for_worker_s=2)
    workers.set_pool_endpoints({"python3.11": [PoolPod("pool-a", "uid-a", pool_worker)]})
    target = Target(replace(CONFIG, code_sha256="0" * 64))
    try:
        for _ in range(3):
            out = await workers.run(target, Call(request_id=str(uuid.uuid4()), payload=b"{}"))
            assert (out.status, out.body) == ("ok", b'{"ok": true}'), out
        assert gate.claims == [("pool-a", OWNER)]
    finally:
        await workers.close()


# a handler that sleeps as long as its event says
SLEEPER = {
    "app.py": b"import time\n\ndef handler(event, context):\n"
    b"    time.sleep(event.get('sleep', 0))\n    return {'slept': event.get('sleep', 0)}\n"
}


def sleeping(seconds: float) -> Call:
    return Call(request_id=str(uuid.uuid4()), payload=json.dumps({"sleep": seconds}).encode())


async def test_a_claim_waits_until_the_cold_starts_of_the_router_have_answered(
    pool_worker: str, second_pool_worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim sets the cluster to work (the pool refills, the operator resizes the pod):
    # on the nodes' cores, while a burst of cold starts is still to answer. Here nothing
    # bounds the hold but the cold starts themselves.
    monkeypatch.setattr(remote, "CLAIM_HOLD_S", 60.0)
    gate = Gate(SLEEPER)
    gate.release.set()
    workers = RemoteWorkers(specialiser=gate)
    workers.set_pool_endpoints(
        {"python3.11": [PoolPod("pool-a", "uid-a", pool_worker),
                        PoolPod("pool-b", "uid-b", second_pool_worker)]}
    )  # fmt: skip
    quick = Target(replace(CONFIG, function="quick"))
    slow = Target(replace(CONFIG, function="slow"))
    try:
        slow_call = asyncio.ensure_future(workers.run(slow, sleeping(2.0)))
        await asyncio.wait_for(gate.asked.wait(), 20)  # the slow one has taken its pod
        out = await workers.run(quick, sleeping(0))
        assert (out.status, out.body) == ("ok", b'{"slept": 0}'), out
        # the quick one has answered, its pod is its version's; the slow one still runs:
        # neither pod is claimed yet
        assert not slow_call.done()
        assert quick.key in workers.claimed
        assert gate.claims == []
        out = await slow_call
        assert (out.status, out.body) == ("ok", b'{"slept": 2.0}'), out
        # both claimed once the last cold start answered
        await asyncio.wait_for(gate.claims_made(2), 10)
        assert sorted(name for name, _ in gate.claims) == ["pool-a", "pool-b"]
    finally:
        await workers.close()


async def test_a_claim_is_held_at_most_claim_hold_s_while_a_first_call_runs_on(
    pool_worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "CLAIM_HOLD_S", 0.2)
    gate = Gate(SLEEPER)
    gate.release.set()
    workers = RemoteWorkers(specialiser=gate)
    workers.set_pool_endpoints({"python3.11": [PoolPod("pool-a", "uid-a", pool_worker)]})
    target = Target(CONFIG)
    try:
        call = asyncio.ensure_future(workers.run(target, sleeping(6.0)))
        await asyncio.wait_for(gate.claims_made(1), 5)
        assert gate.claims == [("pool-a", OWNER)]
        assert not call.done()  # claimed while its first call still runs
        out = await call
        assert (out.status, out.body) == ("ok", b'{"slept": 6.0}'), out
    finally:
        await workers.close()
