"""The router's end of the invoke lane (klambda.lane): one TCP connection per worker pod,
opened on first use and again after it closes, carrying any number of calls at once."""

from __future__ import annotations

import asyncio
import itertools

from klambda import lane

# A pod gone without a reset (its node down, a dropped SYN) is given up on after this, as
# a gRPC channel's connection attempt would be, so that the call tries another pod.
CONNECT_TIMEOUT_S = 3.0


class LaneUnavailable(Exception):
    """No connection could be made, it closed with the call in flight, or the worker is
    stopping: the call may go to another pod (gRPC's UNAVAILABLE)."""


class LaneRefused(Exception):
    """The worker cannot take the call now (busy, or a pool worker not specialised): the
    call may go to another pod."""


class LaneFailed(Exception):
    """The worker could not run the call, or it did not answer within the deadline."""


class LaneDeadline(LaneFailed):
    """No answer within the deadline (the worker may still be at it)."""


class LaneInvalid(Exception):
    """A Specialise the pool worker refused as wrong (gRPC's INVALID_ARGUMENT): it is still
    a pool pod."""


class Lane(asyncio.Protocol):
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._transport: asyncio.Transport | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._reader = lane.FrameReader()
        self._pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._numbers = itertools.count(1)
        self._closed = False

    @classmethod
    def to(cls, address: str) -> Lane:
        host, _, port = address.rpartition(":")
        return cls(host.strip("[]"), int(port))

    async def invoke(self, request: bytes, timeout_s: float) -> bytes:
        """The worker's WorkerInvokeResponse, serialised, for a WorkerInvokeRequest."""
        kind, body = await self._ask(lane.INVOKE, request, timeout_s)
        if kind == lane.OUTCOME:
            return body
        raise _error(kind, body)

    async def specialise(self, request: bytes, timeout_s: float) -> bytes:
        """A pool worker's SpecialiseResponse, serialised, for a SpecialiseRequest:
        LaneInvalid (wrong: still a pool pod), LaneRefused (another version's, or not a
        pool worker), LaneUnavailable, LaneDeadline or LaneFailed otherwise."""
        kind, body = await self._ask(lane.SPECIALISE, request, timeout_s)
        if kind == lane.SPECIALISED:
            return body
        if kind == lane.INVALID:
            raise LaneInvalid(body.decode(errors="replace"))
        raise _error(kind, body)

    async def _ask(self, kind: int, request: bytes, timeout_s: float) -> tuple[int, bytes]:
        transport = await self._connected()
        number = next(self._numbers) & 0xFFFFFFFF
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[number] = answer
        transport.write(lane.encode(kind, number, request))
        try:
            async with asyncio.timeout(timeout_s):
                return await answer
        except TimeoutError:  # the request runs on in the worker, its answer dropped
            raise LaneDeadline("Deadline Exceeded") from None
        finally:
            self._pending.pop(number, None)

    def close(self) -> None:
        """For good: a connection still being made is closed once it is."""
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def open_ahead(self) -> None:
        """Connect now, so that the first call does not wait for the handshake; a failure
        is left for that call to meet."""
        if self._transport is None and self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._opened)

    def _opened(self, connecting: asyncio.Future[None]) -> None:
        if not connecting.cancelled():
            connecting.exception()  # retrieved: the next call connects again
        if self._connecting is connecting:
            self._connecting = None

    async def _connected(self) -> asyncio.Transport:
        if self._transport is not None and not self._transport.is_closing():
            return self._transport
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)  # others wait for the same connection
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None
        if self._transport is None:  # closed meanwhile
            raise LaneUnavailable(f"the lane to {self.host}:{self.port} was closed")
        return self._transport

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.create_connection(lambda: self, self.host, self.port)
        except TimeoutError:
            raise LaneUnavailable(
                f"cannot connect to {self.host}:{self.port} within {CONNECT_TIMEOUT_S:g}s"
            ) from None
        except OSError as err:
            raise LaneUnavailable(f"cannot connect to {self.host}:{self.port}: {err}") from None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._closed:
            transport.close()
            return
        self._transport = transport
        self._reader = lane.FrameReader()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(LaneUnavailable("the worker's connection closed"))

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except lane.FrameError:
            self.close()  # connection_lost fails what is in flight
            return
        for kind, number, body in frames:
            answer = self._pending.get(number)
            if answer is not None and not answer.done():
                answer.set_result((kind, body))


def _error(kind: int, body: bytes) -> Exception:
    message = body.decode(errors="replace")
    if kind in (lane.BUSY, lane.NOT_SPECIALISED, lane.REFUSED):
        return LaneRefused(message)
    if kind == lane.STOPPING:
        return LaneUnavailable(message)
    return LaneFailed(message)
