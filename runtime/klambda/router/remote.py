"""Cluster mode's executor: invocations run in worker pods, reached over gRPC.

Each worker pod serves one environment of one function version (`klambda worker`) and
answers RESOURCE_EXHAUSTED when it is busy, so a call tries the version's ready pods in
turn. When none can take it:

- if the version may run on its runtime's warm pool (klambda.router.pool) and a pool pod
  is ready, the call takes one, specialises it for the version and runs there: a cold
  start of tens of milliseconds instead of a pod start. The scale-up rate limit applies
  (a pod beyond it is a throttle), and the pod is this version's from then on;
- else, with a pool that is momentarily empty or no pod of the version at all, the call
  waits up to `wait_for_worker_s` for a pod of either (the pool's ReplicaSet refills it;
  without a pool the operator scales the version's Deployment from the demand recorded
  here), then answers 503; with busy pods and no pool it is throttled at once.

Unary calls go over the worker's invoke lane (klambda.lane) where its EndpointSlice lists
one, else over gRPC (Specialise too); streamed calls always over gRPC.

Provisioned environments are pods the operator keeps for the version; a call is counted
on them while the version's in-flight calls fit in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from klambda.contract import config_digest
from klambda.errors import ServiceUnavailable
from klambda.execution import FunctionConfig
from klambda.invocation import Call, Outcome, call_to_proto, from_proto
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.router.admission import SCALE_UP_LIMIT, ScaleUpLimiter
from klambda.router.executor import NoCapacity, Provisioned
from klambda.router.laneclient import (
    Lane,
    LaneDeadline,
    LaneFailed,
    LaneInvalid,
    LaneRefused,
    LaneUnavailable,
)
from klambda.router.pool import (
    CodeUnavailable,
    PoolPod,
    Specialiser,
    WarmPool,
    specialise_request,
)
from klambda.router.registry import Target

MESSAGE_LIMIT = 7 * 1024 * 1024
# A Specialise call writes at most a ConfigMap's worth of code.
SPECIALISE_TIMEOUT_S = 10.0
STORE_SPECIALISE_TIMEOUT_S = 120.0

log = logging.getLogger("klambda.router.remote")


class _Invalid(Exception):
    """The pool pod refused the Specialise as wrong: it is still a pool pod."""


class _NotTaken(Exception):
    """The pool pod was not specialised: another router's, gone, or no answer in time
    (`deadline`)."""

    def __init__(self, message: str, deadline: bool = False) -> None:
        super().__init__(message)
        self.deadline = deadline


@dataclass
class Demand:
    in_flight: int = 0
    peak: int = 0
    last_invoked: float = 0.0
    written: tuple[int, float] = (-1, 0.0)


@dataclass
class Claimed:
    digest: str  # contract.config_digest of what the pod was given
    listed: bool = False  # seen in the version's EndpointSlices


class Busy(Exception):
    """Every pod tried was busy (or gone)."""


#: how long a call waits for a worker of its version, or a pool pod, when none is ready
WAIT_FOR_WORKER_S = 60.0

#: A specialised pod's claim (the relabel that takes it out of its pool) is held until this
#: router has no cold start running, for at most this long. The claim sets the cluster to
#: work: the pool's ReplicaSet creates a pod to refill it, the scheduler places it, the
#: kubelet starts it, the operator resizes the claimed pod to its function's CPU share.
#: Sent at once, that work ran on the node's cores during a burst of cold starts and its
#: first calls waited behind it (on one 2-core kind node the API server, etcd and the
#: operator took about half the CPU of a 12-call burst); held, the burst answers first.
#: The pod is this router's at once either way (`claimed`), and another router trying it
#: meanwhile is refused by the pod itself.
CLAIM_HOLD_S = 1.0


@dataclass
class RemoteWorkers:
    """Forwards invocations to worker pods; one gRPC channel per worker address."""

    endpoints: dict[str, list[str]] = field(default_factory=dict)
    wait_for_worker_s: float = WAIT_FOR_WORKER_S
    scale_up_per_minute: int = 500
    scale_up_burst: int | None = None  # a minute's worth when not given
    demand: dict[str, Demand] = field(default_factory=dict)
    provisioned_counts: dict[str, int] = field(default_factory=dict)
    pool: WarmPool = field(default_factory=WarmPool)
    specialiser: Specialiser | None = None
    # pods this router specialised, by version key: address -> the config digest it was
    # given. Used before the version's EndpointSlices list them, and to pass over a listed
    # pod given a configuration that is no longer the version's ($LATEST edited) until the
    # operator deletes it; forgotten once the EndpointSlices no longer list it.
    claimed: dict[str, dict[str, Claimed]] = field(default_factory=dict)
    _scale_up: dict[str, ScaleUpLimiter] = field(default_factory=dict)
    _digests: dict[str, tuple[FunctionConfig, str]] = field(default_factory=dict)
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    # worker address -> its invoke lane's address, from the versions' and the pools'
    # EndpointSlices (a pod whose slice lists no lane port is called over gRPC alone)
    _lane_addresses: dict[str, str] = field(default_factory=dict)
    _pool_lane_addresses: dict[str, str] = field(default_factory=dict)
    _lanes: dict[str, Lane] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: set[asyncio.Future[None]] = field(default_factory=set)
    # cold starts' specialising and claiming, which outlive a call that ends first
    _specialising: set[asyncio.Future[dict[str, float] | None]] = field(default_factory=set)
    _holding: set[asyncio.Future[None]] = field(default_factory=set)  # claims held (above)
    _cold_starts: int = 0  # specialising, or running their first call
    _no_cold_starts: asyncio.Event = field(default_factory=asyncio.Event)
    # calls in flight by worker address: a channel is closed once none uses it
    _busy: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._no_cold_starts.set()

    def set_endpoints(
        self, endpoints: dict[str, list[str]], lanes: Mapping[str, str] | None = None
    ) -> None:
        """The versions' ready pods, and the invoke lanes of those that serve one."""
        self.endpoints = endpoints
        self._lane_addresses = dict(lanes or {})
        for key, mine in list(self.claimed.items()):
            listed = set(endpoints.get(key, ()))
            for addr, claim in list(mine.items()):
                if addr in listed:
                    claim.listed = True
                elif claim.listed:  # gone from the EndpointSlices: the pod was deleted
                    del mine[addr]
            if not mine:
                del self.claimed[key]
        self._close_unused()
        self._notify()

    def set_pool_endpoints(
        self, pods: dict[str, list[PoolPod]], lanes: Mapping[str, str] | None = None
    ) -> None:
        """The ready pool pods by runtime (a runtime with an empty list has a pool), and
        the invoke lanes of those that serve one."""
        self.pool.update(pods)
        self._pool_lane_addresses = dict(lanes or {})
        self._close_unused()
        for runtime_pods in pods.values():
            for pod in runtime_pods:
                self._connect(pod.address)
        self._notify()

    def _connect(self, addr: str) -> None:
        """Open the invoke lane to a pool pod now (a cold start goes over it alone), or
        its gRPC channel where it serves no lane, so that a cold start does not wait for
        the handshakes. A streamed call to the pod later opens its channel then."""
        lane = self._lane(addr)
        if lane is not None:
            lane.open_ahead()
        elif addr not in self._channels:
            self._stub(addr)
            self._channels[addr].get_state(try_to_connect=True)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _close_unused(self) -> None:
        """Close the channels of pods no longer listed, but for those with calls in flight:
        a pod that turned unready (a probe that timed out, an image function's runtime
        container starting again) still answers them, and closing a channel cancels its
        calls."""
        used = {a for v in self.endpoints.values() for a in v}
        used |= {a for v in self.claimed.values() for a in v}
        used |= {p.address for v in self.pool.ready.values() for p in v}
        used |= set(self._busy)
        for addr in set(self._channels) - used:
            closing = asyncio.ensure_future(self._channels.pop(addr).close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        for addr in set(self._lanes) - used:
            self._lanes.pop(addr).close()

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

    def _lane(self, addr: str) -> Lane | None:
        lane = self._lanes.get(addr)
        if lane is None:
            to = self._lane_addresses.get(addr) or self._pool_lane_addresses.get(addr)
            if to is None:
                return None
            lane = self._lanes[addr] = Lane.to(to)
        return lane

    def _addresses(self, target: Target) -> list[str]:
        """The version's ready pods and those this router specialised, but for the pods
        it knows were given another configuration."""
        addrs = list(self.endpoints.get(target.key, ()))
        mine = self.claimed.get(target.key)
        if mine:
            digest = self._digest(target)
            addrs = [a for a in addrs if a not in mine or mine[a].digest == digest]
            addrs += [a for a, c in mine.items() if c.digest == digest and a not in addrs]
        return addrs

    def _digest(self, target: Target) -> str:
        """The digest of the configuration a pool pod is given for `target`, kept while
        the registry keeps the same target config (it is rebuilt whole on a change)."""
        cached = self._digests.get(target.key)
        if cached is not None and cached[0] is target.config:
            return cached[1]
        given = self.specialiser.given_config(target) if self.specialiser else target.config
        digest = config_digest(given)
        self._digests[target.key] = (target.config, digest)
        return digest

    async def _wait(self, deadline: float) -> bool:
        """Wait for new endpoints until `deadline`; False once it has passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), left)
        return True

    async def run(self, target: Target, call: Call) -> Outcome:
        key = target.key
        d = self.demand.setdefault(key, Demand())
        d.in_flight += 1
        d.peak = max(d.peak, d.in_flight)
        d.last_invoked = time.time()
        provisioned = d.in_flight <= self.provisioned_counts.get(key, 0)
        try:
            out = await self._run(target, call)
            out.provisioned = out.provisioned or provisioned
            return out
        finally:
            d.in_flight -= 1

    async def _run(self, target: Target, call: Call) -> Outcome:
        deadline = time.monotonic() + self.wait_for_worker_s
        runtime = self.specialiser.runtime_of(target) if self.specialiser else None
        while True:
            addrs = self._addresses(target)
            if addrs:
                with contextlib.suppress(Busy):
                    return await self._on_one_of(addrs, target, call)
            pooled = runtime is not None and self.pool.has_pool(runtime)
            if pooled:
                assert runtime is not None
                pod = self.pool.take(runtime)
                if pod is not None:
                    out = await self._cold_start(pod, target, call)
                    if out is not None:
                        return out
                    continue  # the pod was gone or taken by another router: look again
            elif addrs:  # busy, and no pool to grow from: the operator scales from demand
                raise NoCapacity(SCALE_UP_LIMIT, "Rate Exceeded.")
            if not await self._wait(deadline):
                if addrs:
                    raise NoCapacity(SCALE_UP_LIMIT, "Rate Exceeded.")
                where = f" or the {runtime} pool" if pooled else ""
                raise ServiceUnavailable(
                    f"no worker of {target.key}{where} became ready within "
                    f"{self.wait_for_worker_s:.0f}s"
                )

    async def _on_one_of(self, addrs: list[str], target: Target, call: Call) -> Outcome:
        start = next(self._turn)
        request = call_to_proto(call)
        timeout = target.config.timeout_s + 15.0
        for i in range(len(addrs)):
            addr = addrs[(start + i) % len(addrs)]
            try:
                resp = await self._invoke(addr, request, call, timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() in (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    grpc.StatusCode.FAILED_PRECONDITION,  # a pool pod that was not claimed
                ):
                    continue
                if err.code() == grpc.StatusCode.UNAVAILABLE:
                    self._forget(target.key, addr)
                    continue
                raise ServiceUnavailable(f"worker {addr}: {err.details()}") from None
            except LaneRefused:  # busy, or a pool pod that was not claimed
                continue
            except LaneUnavailable:
                self._forget(target.key, addr)
                continue
            except LaneFailed as err:
                raise ServiceUnavailable(f"worker {addr}: {err}") from None
            return from_proto(resp, call.request_id, target.config.version, call.log_tail)
        raise Busy

    async def _invoke(
        self, addr: str, request: worker_pb2.WorkerInvokeRequest, call: Call, deadline_s: float
    ) -> worker_pb2.WorkerInvokeResponse:
        """The worker's answer; a streamed call's start and chunks go to `call.stream` as
        they arrive. An error once the response has started is not the caller's to retry
        elsewhere: it ends the call (ServiceUnavailable)."""
        self._busy[addr] = self._busy.get(addr, 0) + 1
        try:
            return await self._invoke_on(addr, request, call, deadline_s)
        finally:
            self._busy[addr] -= 1
            if not self._busy[addr]:
                del self._busy[addr]
                self._close_unused()

    async def _invoke_on(
        self, addr: str, request: worker_pb2.WorkerInvokeRequest, call: Call, deadline_s: float
    ) -> worker_pb2.WorkerInvokeResponse:
        if call.stream is None:
            lane = self._lane(addr)
            if lane is not None:
                answer = await lane.invoke(request.SerializeToString(), deadline_s)
                return worker_pb2.WorkerInvokeResponse.FromString(answer)
            resp: worker_pb2.WorkerInvokeResponse = await self._stub(addr).Invoke(
                request, timeout=deadline_s
            )
            return resp
        started = False
        try:
            async for event in self._stub(addr).InvokeStream(request, timeout=deadline_s):
                kind = event.WhichOneof("event")
                if kind == "start":
                    started = True
                    await call.stream.start(event.start.content_type, event.start.version)
                elif kind == "chunk":
                    await call.stream.write(event.chunk)
                elif kind == "outcome":
                    outcome: worker_pb2.WorkerInvokeResponse = event.outcome
                    return outcome
        except grpc.aio.AioRpcError as err:
            if started:
                raise ServiceUnavailable(f"worker {addr}: {err.details()}") from None
            raise
        raise ServiceUnavailable(f"worker {addr}: the stream ended without an outcome")

    def _forget(self, key: str, addr: str) -> None:
        mine = self.claimed.get(key)
        if mine is not None:
            mine.pop(addr, None)

    async def _cold_start(self, pod: PoolPod, target: Target, call: Call) -> Outcome | None:
        """Specialise `pod` for `target` and run `call` there; None if the pod could not
        be had (gone, or specialised by another router meanwhile)."""
        assert self.specialiser is not None
        limiter = self._scale_up.get(target.key)
        if limiter is None:
            limiter = self._scale_up[target.key] = ScaleUpLimiter(
                self.scale_up_per_minute, time.monotonic(), self.scale_up_burst
            )
        if not limiter.try_take(time.monotonic()):
            self.pool.give_back(pod)
            raise NoCapacity(SCALE_UP_LIMIT, "Rate Exceeded.")
        owner = self.specialiser.owner_of(target)
        if owner is None:
            self.pool.give_back(pod)
            raise ServiceUnavailable(f"{target.key} is gone")
        self._cold_starts += 1
        self._no_cold_starts.clear()
        try:
            # Specialising and claiming run to their end even if this call ends first (its
            # caller gone, its deadline passed): a pod specialised and never claimed would
            # stay in its pool, ready and counted by the pool's ReplicaSet, serving nobody.
            task = asyncio.ensure_future(self._specialise(pod, target, owner))
            self._specialising.add(task)
            task.add_done_callback(self._specialised)
            phases = await asyncio.shield(task)
            if phases is None:
                return None
            request = call_to_proto(dataclasses.replace(call, phases=phases))
            try:
                resp = await self._invoke(
                    pod.address, request, call, deadline_s=target.config.timeout_s + 15.0
                )
            except grpc.aio.AioRpcError as err:
                raise ServiceUnavailable(f"worker {pod.address}: {err.details()}") from None
            except (LaneRefused, LaneUnavailable, LaneFailed) as err:
                raise ServiceUnavailable(f"worker {pod.address}: {err}") from None
        finally:
            self._cold_starts -= 1
            if not self._cold_starts:
                self._no_cold_starts.set()
        out = from_proto(resp, call.request_id, target.config.version, call.log_tail)
        out.phases = {**phases, **(out.phases or {})}  # the pod's own: environment_start
        return out

    def _specialised(self, task: asyncio.Future[dict[str, float] | None]) -> None:
        self._specialising.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its call may have gone, the error is its own

    async def _specialise(
        self, pod: PoolPod, target: Target, owner: Mapping[str, str]
    ) -> dict[str, float] | None:
        """Give `pod` the version's code and configuration and claim it for `owner`: the
        phases' milliseconds, or None if the pod could not be had."""
        assert self.specialiser is not None
        t0 = time.perf_counter()
        try:
            cfg, code = await self.specialiser.code(target)
        except CodeUnavailable as err:
            self.pool.give_back(pod)
            raise ServiceUnavailable(f"the code of {target.key}: {err}") from None
        t1 = time.perf_counter()
        request = specialise_request(cfg, code)
        # the pod downloads a .zip of up to 250 MB from the store first
        timeout = STORE_SPECIALISE_TIMEOUT_S if code.from_store else SPECIALISE_TIMEOUT_S
        for attempt in range(2):
            try:
                await self._give(pod, request, timeout)
                break
            except _Invalid as err:
                # refused what it was given (code that is not its CodeSha256...): the pod
                # is still a pool pod, for another version
                self.pool.give_back(pod)
                raise ServiceUnavailable(f"pool pod {pod.name}: {err}") from None
            except _NotTaken as err:
                if err.deadline and not attempt:
                    # it may have taken the version meanwhile: asking again (the same
                    # request is answered at once by a pod that has) settles which
                    continue
                # specialised by another router meanwhile, gone, or not answering: it stays
                # taken (this router does not try it again) and the call tries another
                log.info("pool pod %s not taken: %s", pod.name, err)
                return None
        t2 = time.perf_counter()
        held = asyncio.ensure_future(self._claim_when_quiet(pod, cfg, owner))
        self._holding.add(held)
        held.add_done_callback(self._holding.discard)
        # what the pod was given, as `_digest` and the claim's annotation have it: for a
        # $LATEST just edited, target.config may still carry the operator's last
        # CodeSha256, and the pod would be passed over as given another configuration
        self.claimed.setdefault(target.key, {})[pod.address] = Claimed(config_digest(cfg))
        return {"code_download": (t1 - t0) * 1000, "specialise": (t2 - t1) * 1000}

    async def _give(
        self, pod: PoolPod, request: worker_pb2.SpecialiseRequest, timeout_s: float
    ) -> None:
        """Specialise `pod`: over its invoke lane where it serves one (a cold start then
        needs no gRPC channel to the pod at all), else over gRPC; a lane that cannot be
        reached (or a worker that does not know the frame, and closes it) is tried over
        gRPC. _Invalid or _NotTaken if the pod was not specialised."""
        lane = self._lane(pod.address)
        if lane is not None:
            try:
                await lane.specialise(request.SerializeToString(), timeout_s)
                return
            except LaneInvalid as err:
                raise _Invalid(str(err)) from None
            except LaneDeadline as err:
                raise _NotTaken(f"lane: {err}", deadline=True) from None
            except (LaneRefused, LaneFailed) as err:
                raise _NotTaken(f"lane: {type(err).__name__} {err}") from None
            except LaneUnavailable:
                pass
        try:
            await self._stub(pod.address).Specialise(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise _Invalid(err.details() or "") from None
            deadline = err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            raise _NotTaken(f"{err.code().name} {err.details()}", deadline=deadline) from None

    async def _claim_when_quiet(
        self, pod: PoolPod, cfg: FunctionConfig, owner: Mapping[str, str]
    ) -> None:
        """Claim `pod` once no cold start of this router is running, or CLAIM_HOLD_S on."""
        assert self.specialiser is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_cold_starts.wait(), CLAIM_HOLD_S)
        self.specialiser.claim(pod, cfg, owner)

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
        self.claimed.pop(target.key, None)
        self._digests.pop(target.key, None)

    async def reclaim_idle(self, keep_warm_s: float) -> None:
        """Idle pods are deleted or scaled to zero by the operator, from the last-invoked
        times."""

    async def settle(self) -> None:
        """Wait (a bounded time) for the cold starts still specialising a pool pod: each
        ends in the claim that takes its pod out of the pool. Before the specialiser
        stops."""
        if self._specialising:
            await asyncio.wait(list(self._specialising), timeout=SPECIALISE_TIMEOUT_S)
        self._no_cold_starts.set()  # what is held is claimed now
        if self._holding:
            await asyncio.wait(list(self._holding), timeout=SPECIALISE_TIMEOUT_S)

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        for lane in self._lanes.values():
            lane.close()
        self._lanes.clear()
