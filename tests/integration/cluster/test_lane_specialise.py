"""Specialise over the invoke lane: a cold start through a pool pod that serves a lane
needs no gRPC channel to it (the SPECIALISE frame, then the call's INVOKE), with the
same answers as gRPC's `Specialise` (wrong code, another version's pod, not a pool
worker), and a worker whose lane does not know the frame is specialised over gRPC. Real
`klambda worker --pool` processes."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from klambda import codestore, lane
from klambda.invocation import Call
from klambda.router.laneclient import Lane, LaneFailed, LaneInvalid, LaneRefused
from klambda.router.pool import CodePackage, PoolPod, specialise_request
from klambda.router.registry import Target
from klambda.router.remote import RemoteWorkers
from klambda.testing import free_port

from tests.integration.cluster.test_claims import CONFIG, FILES, Gate
from tests.integration.cluster.test_lane import Worker, _start
from tests.integration.cluster.test_lane import worker as worker  # a fixture, used here


@pytest.fixture
def pool_worker(tmp_path: Path) -> Iterator[Worker]:
    argv = ["--pool", "python3.11", "--code-dir", str(tmp_path / "pool-code")]
    yield from _start(tmp_path, argv, dict(os.environ))


def specialise_bytes(function: str = CONFIG.function, files: dict[str, bytes] = FILES) -> bytes:
    cfg = replace(CONFIG, function=function, code_sha256=codestore.digest(files))
    return specialise_request(cfg, CodePackage(files=files)).SerializeToString()


async def test_a_cold_start_through_a_pool_pod_goes_over_its_lane_alone(
    pool_worker: Worker,
) -> None:
    gate = Gate()
    gate.release.set()
    workers = RemoteWorkers(specialiser=gate)
    # the pod's gRPC address is closed: only its lane can specialise it and run the call
    closed = f"127.0.0.1:{free_port()}"
    pod = PoolPod("pool-a", "uid-a", closed)
    workers.set_pool_endpoints({"python3.11": [pod]}, lanes={closed: pool_worker.lane})
    try:
        out = await workers.run(Target(CONFIG), Call(request_id=str(uuid.uuid4()), payload=b"{}"))
        assert (out.status, out.body) == ("ok", b'{"ok": true}'), out
        assert out.phases is not None
        assert out.phases["specialise"] > 0
        await workers.settle()
        assert [name for name, _ in gate.claims] == ["pool-a"]
        assert closed not in workers._channels  # no gRPC channel was ever made to it
    finally:
        await workers.close()


async def test_the_lane_answers_specialise_as_grpc_does(
    pool_worker: Worker, worker: Worker
) -> None:
    lane = Lane.to(pool_worker.lane)
    try:
        # code that is not what its CodeSha256 says: refused, the pod stays a pool pod
        wrong = replace(CONFIG, code_sha256="0" * 64)
        bad = specialise_request(wrong, CodePackage(files=FILES)).SerializeToString()
        with pytest.raises(LaneInvalid, match="code_sha256"):
            await lane.specialise(bad, 10)
        with pytest.raises(LaneFailed, match="not a SpecialiseRequest"):
            await lane.specialise(b"\xff\xff not a protobuf", 10)
        await lane.specialise(specialise_bytes(), 10)
        await lane.specialise(specialise_bytes(), 10)  # the same again: answered at once
        # specialised: never another function
        with pytest.raises(LaneRefused, match="never serves another function"):
            await lane.specialise(specialise_bytes("other"), 10)
    finally:
        lane.close()
    dedicated = Lane.to(worker.lane)
    try:
        with pytest.raises(LaneRefused, match="not a pool worker"):
            await dedicated.specialise(specialise_bytes(), 10)
    finally:
        dedicated.close()


class OlderLane:
    """A worker's lane as one that predates SPECIALISE answers it: the connection closed
    at the unknown frame. Other frames go to the real lane, and its answers back."""

    def __init__(self, real: str) -> None:
        self.host, _, port = real.rpartition(":")
        self.port = int(port)
        self.closed_at_specialise = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def back() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)

        answers = asyncio.ensure_future(back())
        try:
            while True:
                header = await reader.readexactly(lane.HEADER.size)
                kind, _number, size = lane.HEADER.unpack(header)
                body = await reader.readexactly(size)
                if kind == lane.SPECIALISE:
                    self.closed_at_specialise += 1
                    return
                up_writer.write(header + body)
        except asyncio.IncompleteReadError:
            return
        finally:
            answers.cancel()
            writer.close()
            up_writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_a_worker_whose_lane_does_not_know_specialise_is_specialised_over_grpc(
    pool_worker: Worker,
) -> None:
    """As during an upgrade: routers of this release beside pool pods of the last."""
    older = OlderLane(pool_worker.lane)
    older_lane = await older.start()
    gate = Gate()
    gate.release.set()
    workers = RemoteWorkers(specialiser=gate)
    pod = PoolPod("pool-a", "uid-a", pool_worker.grpc)
    workers.set_pool_endpoints({"python3.11": [pod]}, lanes={pool_worker.grpc: older_lane})
    try:
        out = await workers.run(Target(CONFIG), Call(request_id=str(uuid.uuid4()), payload=b"{}"))
        assert (out.status, out.body) == ("ok", b'{"ok": true}'), out
        assert older.closed_at_specialise == 1
        await workers.settle()
        assert [name for name, _ in gate.claims] == ["pool-a"]
    finally:
        await workers.close()
        older.close()
