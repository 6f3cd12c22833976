"""The worker's end of the invoke lane (klambda.lane): INVOKE frames run on the same
executor as gRPC's `Invoke`, with the same answers (busy, not specialised, stopping), and
a pool worker's SPECIALISE frames take on a version as gRPC's `Specialise` does.

An invocation runs to its end even if the router stops waiting or its connection closes,
as on Lambda; its answer then goes nowhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from google.protobuf.message import DecodeError

from klambda import lane
from klambda.invocation import Outcome, call_from_proto, to_proto
from klambda.proto import worker_pb2
from klambda.worker.executor import NoCapacity, VersionExecutor
from klambda.worker.specialise import (
    NOT_A_POOL_WORKER,
    Specialisation,
    SpecialiseInvalid,
    SpecialiseRefused,
)

log = logging.getLogger("klambda.worker.lane")


class LaneServer:
    def __init__(
        self,
        executor_now: Callable[[], VersionExecutor | None],
        specialisation: Specialisation | None = None,
    ) -> None:
        self.executor_now = executor_now  # None while a pool worker is not specialised
        self.specialisation = specialisation  # a pool worker's
        self.stopping = False
        self.calls: set[asyncio.Future[None]] = set()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; the port bound (`port` 0: one the kernel picks)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self, grace_s: float) -> None:
        """Take no new invocations (STOPPING), let those in flight end within `grace_s`,
        then cancel the rest and close."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        if self.calls:
            await asyncio.wait(list(self.calls), timeout=grace_s)
        for call in list(self.calls):
            call.cancel()
        if self.calls:
            await asyncio.wait(list(self.calls), timeout=1.0)
        for conn in list(self._connections):
            conn.close()


class _Connection(asyncio.Protocol):
    def __init__(self, server: LaneServer) -> None:
        self.server = server
        self.reader = lane.FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except lane.FrameError as err:
            log.warning("invoke lane: %s; closing the connection", err)
            self.close()
            return
        for kind, number, body in frames:
            if self.server.stopping and kind in (lane.INVOKE, lane.SPECIALISE):
                self._send(lane.STOPPING, number, b"the worker is stopping")
            elif kind == lane.INVOKE:
                self._invoke(number, body)
            elif kind == lane.SPECIALISE:
                self._specialise(number, body)
            else:
                log.warning("invoke lane: unknown frame kind %d; closing the connection", kind)
                self.close()
                return

    def _send(self, kind: int, number: int, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(lane.encode(kind, number, body))

    def _invoke(self, number: int, body: bytes) -> None:
        executor = self.server.executor_now()
        if executor is None:
            self._send(lane.NOT_SPECIALISED, number, b"this pool worker is not specialised")
            return
        try:
            request = worker_pb2.WorkerInvokeRequest.FromString(body)
        except DecodeError:
            self._send(lane.FAILED, number, b"the request is not a WorkerInvokeRequest")
            return
        self._track(self._run(number, executor, request))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        call = asyncio.ensure_future(work)
        self.server.calls.add(call)
        call.add_done_callback(self.server.calls.discard)

    def _specialise(self, number: int, body: bytes) -> None:
        s = self.server.specialisation
        if s is None:
            self._send(lane.REFUSED, number, NOT_A_POOL_WORKER.encode())
            return
        try:
            request = worker_pb2.SpecialiseRequest.FromString(body)
        except DecodeError:
            self._send(lane.FAILED, number, b"the request is not a SpecialiseRequest")
            return
        self._track(self._take_on(number, s, request))

    async def _take_on(
        self, number: int, s: Specialisation, request: worker_pb2.SpecialiseRequest
    ) -> None:
        try:
            unpack_ms = await s.specialise(request)
        except SpecialiseInvalid as err:
            self._send(lane.INVALID, number, str(err).encode())
        except SpecialiseRefused as err:
            self._send(lane.REFUSED, number, str(err).encode())
        except Exception as err:  # a fault of the worker's
            log.exception("invoke lane: Specialise failed")
            self._send(lane.FAILED, number, f"{type(err).__name__}: {err}".encode())
        else:
            answer = worker_pb2.SpecialiseResponse(code_root=str(s.code_root), unpack_ms=unpack_ms)
            self._send(lane.SPECIALISED, number, answer.SerializeToString())

    async def _run(
        self, number: int, executor: VersionExecutor, request: worker_pb2.WorkerInvokeRequest
    ) -> None:
        try:
            out: Outcome = await executor.run(call_from_proto(request))
        except NoCapacity as err:
            self._send(lane.BUSY, number, str(err).encode())
        except Exception as err:  # a fault of the worker's, not the function's
            log.exception("invoke lane: the invocation failed")
            self._send(lane.FAILED, number, f"{type(err).__name__}: {err}".encode())
        else:
            self._send(lane.OUTCOME, number, to_proto(out).SerializeToString())
