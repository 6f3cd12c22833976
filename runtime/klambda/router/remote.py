"""Cluster mode's executor: invocations run in worker pods, reached over gRPC.

Each worker pod serves one environment of one function version (`klambda worker`) and
answers RESOURCE_EXHAUSTED when it is busy, so a call tries the version's ready pods in
turn and raises `NoCapacity` when all are busy. A version with no ready pod makes the call
wait up to `wait_for_worker_s` for one (the operator scales up from the demand recorded
here), then answers 503. Provisioned environments are pods the operator keeps for the
version; a call is counted on them while the version's in-flight calls fit in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

import grpc

from klambda.errors import ServiceUnavailable
from klambda.invocation import Call, Outcome, call_to_proto, from_proto
from klambda.proto import worker_pb2_grpc
from klambda.router.admission import SCALE_UP_LIMIT
from klambda.router.executor import NoCapacity, Provisioned
from klambda.router.registry import Target

MESSAGE_LIMIT = 7 * 1024 * 1024


@dataclass
class Demand:
    in_flight: int = 0
    peak: int = 0
    last_invoked: float = 0.0
    written: tuple[int, float] = (-1, 0.0)


@dataclass
class RemoteWorkers:
    """Forwards invocations to worker pods; one gRPC channel per worker address."""

    endpoints: dict[str, list[str]] = field(default_factory=dict)
    wait_for_worker_s: float = 30.0
    demand: dict[str, Demand] = field(default_factory=dict)
    provisioned_counts: dict[str, int] = field(default_factory=dict)
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: set[asyncio.Future[None]] = field(default_factory=set)

    def set_endpoints(self, endpoints: dict[str, list[str]]) -> None:
        self.endpoints = endpoints
        for addr in set(self._channels) - {a for v in endpoints.values() for a in v}:
            closing = asyncio.ensure_future(self._channels.pop(addr).close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        self._changed.set()
        self._changed = asyncio.Event()

    def _stub(self, addr: str) -> worker_pb2_grpc.WorkerStub:
        ch = self._channels.get(addr)
        if ch is None:
            ch = self._channels[addr] = grpc.aio.insecure_channel(
                addr,
                options=[
                    ("grpc.max_receive_message_length", MESSAGE_LIMIT),
                    ("grpc.max_send_message_length", MESSAGE_LIMIT),
                ],
            )
        return worker_pb2_grpc.WorkerStub(ch)  # type: ignore[no-untyped-call]

    async def _addresses(self, key: str) -> list[str]:
        deadline = time.monotonic() + self.wait_for_worker_s
        while not self.endpoints.get(key):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServiceUnavailable(
                    f"no worker of {key} became ready within {self.wait_for_worker_s:.0f}s"
                )
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
        return self.endpoints[key]

    async def run(self, target: Target, call: Call) -> Outcome:
        key = target.key
        d = self.demand.setdefault(key, Demand())
        d.in_flight += 1
        d.peak = max(d.peak, d.in_flight)
        d.last_invoked = time.time()
        provisioned = d.in_flight <= self.provisioned_counts.get(key, 0)
        try:
            addrs = await self._addresses(key)
            start = next(self._turn)
            request = call_to_proto(call)
            timeout = target.config.timeout_s + 15.0
            for i in range(len(addrs)):
                addr = addrs[(start + i) % len(addrs)]
                try:
                    resp = await self._stub(addr).Invoke(request, timeout=timeout)
                except grpc.aio.AioRpcError as err:
                    if err.code() in (
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        grpc.StatusCode.UNAVAILABLE,
                    ):
                        continue
                    raise ServiceUnavailable(f"worker {addr}: {err.details()}") from None
                out = from_proto(resp, call.request_id, target.config.version, call.log_tail)
                out.provisioned = out.provisioned or provisioned
                return out
            raise NoCapacity(SCALE_UP_LIMIT, "Rate Exceeded.")
        finally:
            d.in_flight -= 1

    def set_provisioned(self, target: Target, count: int) -> None:
        # the operator keeps the pods; the router only counts calls against them
        if count:
            self.provisioned_counts[target.key] = count
        else:
            self.provisioned_counts.pop(target.key, None)

    def provisioned(self, target: Target) -> Provisioned:
        key = target.key
        n = self.provisioned_counts.get(key, 0)
        d = self.demand.get(key)
        ready = min(n, len(self.endpoints.get(key, ())))
        return Provisioned(n, ready, min(n, d.in_flight if d else 0))

    async def discard(self, target: Target) -> None:
        self.demand.pop(target.key, None)
        self.provisioned_counts.pop(target.key, None)

    async def reclaim_idle(self, keep_warm_s: float) -> None:
        """Idle pods are scaled to zero by the operator, from the last-invoked times."""

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
