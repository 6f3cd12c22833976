"""`klambda worker`: a function pod's agent, serving `klambda.v1.Worker` over gRPC.

The router admits and routes; the worker runs an invocation in a warm environment or
starts one (a cold start), and answers with the outcome, as the in-process pool does in
local mode. With every environment busy and no room for another it answers
RESOURCE_EXHAUSTED at once, so the router can try another pod or throttle.

Two kinds of worker: a version's own (`--function NAME --version V`, configured by its
pod's environment) and a pool worker (`--pool RUNTIME`), which starts its runtime's
zygote with no function and serves one once the router specialises it
(klambda.worker.specialise). Until then its Invoke answers FAILED_PRECONDITION.

With a lane port, unary invocations and Specialise are also served over the invoke lane
(klambda.worker.laneserver), which the router prefers where a pod's EndpointSlice lists it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from klambda.api.limits import SCALE_UP_LIMIT
from klambda.contract import LOG_ENGINE_URL_ENV
from klambda.execution import FunctionConfig
from klambda.invocation import Outcome, call_from_proto, to_proto
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.shutdown import stop_requested
from klambda.worker import custom, runtimes
from klambda.worker.cgroups import Cgroups
from klambda.worker.executor import NoCapacity, VersionExecutor
from klambda.worker.laneserver import LaneServer
from klambda.worker.logs import LogHub
from klambda.worker.pool import EnvironmentPool
from klambda.worker.specialise import (
    NOT_A_POOL_WORKER,
    Specialisation,
    SpecialiseInvalid,
    SpecialiseRefused,
)
from klambda.worker.zygote import Zygote

if TYPE_CHECKING:  # imported only where a log engine is configured (_shipper)
    from klambda.worker.logship import Shipper

MESSAGE_LIMIT = 7 * 1024 * 1024
# a streamed response: chunks queued ahead of the router, and the largest chunk sent
STREAM_QUEUE = 64
CHUNK_MAX = 1024 * 1024


async def _refuse(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str
) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("abort() raises")  # typed as returning in grpc's stubs


class WorkerService(worker_pb2_grpc.WorkerServicer):
    def __init__(
        self, executor: VersionExecutor | None, specialisation: Specialisation | None = None
    ) -> None:
        self.executor = executor
        self.specialisation = specialisation
        self._orphans: set[asyncio.Future[Outcome]] = set()

    def executor_now(self) -> VersionExecutor | None:
        """The version's executor; None for a pool worker not yet specialised."""
        if self.executor is None and self.specialisation is not None:
            return self.specialisation.executor
        return self.executor

    async def Invoke(
        self, request: worker_pb2.WorkerInvokeRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.WorkerInvokeResponse:
        executor = self.executor_now()
        if executor is None:
            await _refuse(
                context, grpc.StatusCode.FAILED_PRECONDITION, "this pool worker is not specialised"
            )
        # the router gone (its deadline, its connection) does not stop the invocation: it
        # runs to its end, and its environment takes no other call meanwhile
        run = asyncio.ensure_future(executor.run(call_from_proto(request)))
        try:
            out = await asyncio.shield(run)
        except NoCapacity as err:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
        except asyncio.CancelledError:
            self._orphan(run)
            raise
        return to_proto(out)

    def _orphan(self, run: asyncio.Future[Outcome]) -> None:
        """An invocation nobody waits for any more, kept until it ends."""
        if run.done():
            return
        self._orphans.add(run)
        run.add_done_callback(self._orphans.discard)

    async def InvokeStream(
        self, request: worker_pb2.WorkerInvokeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.WorkerStreamEvent]:
        """Invoke, with the response's start and chunks sent as the environment produces
        them (a bounded queue: a slow client holds the handler's writes back)."""
        executor = self.executor_now()
        if executor is None:
            await _refuse(
                context, grpc.StatusCode.FAILED_PRECONDITION, "this pool worker is not specialised"
            )
        sink = _QueueSink()
        call = replace(call_from_proto(request), stream=sink)

        async def invoke() -> Outcome:
            try:
                return await executor.run(call)
            finally:
                await sink.events.put(None)

        run = asyncio.ensure_future(invoke())
        try:
            while (event := await sink.events.get()) is not None:
                yield event
            try:
                out = await run
            except NoCapacity as err:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
            yield worker_pb2.WorkerStreamEvent(outcome=to_proto(out))
        finally:
            if not run.done():  # the router went away: the invocation ends on its own
                sink.close()
                self._orphan(run)

    async def Specialise(
        self, request: worker_pb2.SpecialiseRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.SpecialiseResponse:
        s = self.specialisation
        if s is None:
            await _refuse(context, grpc.StatusCode.FAILED_PRECONDITION, NOT_A_POOL_WORKER)
        try:
            unpack_ms = await s.specialise(request)
        except SpecialiseInvalid as err:
            await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except SpecialiseRefused as err:
            await _refuse(context, grpc.StatusCode.FAILED_PRECONDITION, str(err))
        return worker_pb2.SpecialiseResponse(code_root=str(s.code_root), unpack_ms=unpack_ms)


class _QueueSink:
    """The StreamSink of a streamed invocation: its events queued for the gRPC stream."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[worker_pb2.WorkerStreamEvent | None] = asyncio.Queue(
            STREAM_QUEUE
        )
        self.closed = False

    def close(self) -> None:
        """Nobody reads any more: what is queued is dropped, and what comes is not kept."""
        self.closed = True
        while not self.events.empty():
            self.events.get_nowait()

    async def start(self, content_type: str, version: str) -> None:
        if self.closed:
            return
        start = worker_pb2.StreamStart(content_type=content_type, version=version)
        await self.events.put(worker_pb2.WorkerStreamEvent(start=start))

    async def write(self, data: bytes) -> None:
        if self.closed:
            return
        for i in range(0, len(data), CHUNK_MAX):  # each message under gRPC's limit
            await self.events.put(worker_pb2.WorkerStreamEvent(chunk=data[i : i + CHUNK_MAX]))


def _limit(pool: EnvironmentPool, max_environments: int) -> Callable[[], tuple[str, str] | None]:
    def may_start() -> tuple[str, str] | None:
        if pool.size < max_environments:
            return None
        return SCALE_UP_LIMIT, f"all {max_environments} environments of this worker are busy"

    return may_start


async def _serve(
    service: WorkerService,
    host: str,
    port: int,
    banner: str,
    grace_s: Callable[[], float],
    stopping: asyncio.Event,
    lane_port: int | None = None,
) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MESSAGE_LIMIT),
            ("grpc.max_send_message_length", MESSAGE_LIMIT),
        ]
    )
    worker_pb2_grpc.add_WorkerServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise SystemExit(f"klambda worker: cannot listen on {host}:{port}")
    lane = None
    if lane_port is not None:
        lane = LaneServer(service.executor_now, service.specialisation)
        try:
            lane_bound = await lane.start(host, lane_port)
        except OSError as err:
            message = f"klambda worker: cannot listen on {host}:{lane_port}: {err}"
            raise SystemExit(message) from None
    await server.start()
    lane_at = "" if lane is None else f" (invoke lane on {host}:{lane_bound})"
    print(f"klambda worker: {banner} on {host}:{bound}{lane_at}", flush=True)
    await stopping.wait()
    # an invocation in flight at SIGTERM may finish (the pod's grace period allows it)
    grace = grace_s()
    if lane is None:
        await server.stop(grace=grace)
    else:
        await asyncio.gather(server.stop(grace=grace), lane.stop(grace))


def _room(pools: list[EnvironmentPool], max_environments: int) -> Callable[[], int]:
    """How many more environments this worker may start now (its zygote keeps a spare
    only while there is room for one)."""
    return lambda: max_environments - sum(p.size for p in pools)


async def _zygote(runtime: str, groups: Cgroups, room: Callable[[], int]) -> Zygote:
    python = runtimes.interpreter(runtime)
    if python is None:
        raise SystemExit(f"klambda worker: runtime {runtime} is not installed here")
    zygote = Zygote(python, cgroups=groups, room=room)
    await zygote.start()
    return zygote


def _shipper() -> Shipper | None:
    """The pod's records to the cluster's log engine, when the chart deploys one
    (KLAMBDA_LOG_ENGINE_URL, set on worker pods by the operator); stdout either way."""
    url = os.environ.get(LOG_ENGINE_URL_ENV, "")
    if not url:
        return None
    # the engine's HTTP client (aiohttp) only in the pods that ship
    from klambda.logengine.client import LogEngine
    from klambda.worker.logship import Shipper

    shipper = Shipper(LogEngine(url), account=os.environ.get("KLAMBDA_ACCOUNT_ID", "000000000000"))
    shipper.start()
    return shipper


async def serve(
    cfg: FunctionConfig,
    host: str,
    port: int,
    max_environments: int,
    cgroups: bool = True,
    provisioned: bool = False,
    runtime_api_port: int | None = None,
    lane_port: int | None = None,
) -> None:
    """The worker of one function version, configured by its pod's environment. A pod of
    provisioned concurrency initialises its environment before it listens, so it is ready
    (its readiness probe) only once a call would find the environment warm. With
    `runtime_api_port`, an image function's worker: its environments are the pod's runtime
    container, served the Runtime API on that loopback port (klambda.worker.sidecar)."""
    # before anything else: from here on a SIGTERM drains the calls in flight (until now it
    # stopped the process at once; where the worker is a container's PID 1, as under plain
    # Docker, it ignores one it has no handler for)
    stopping = stop_requested()
    groups = Cgroups(enabled=cgroups)
    container = None
    if runtime_api_port is not None:
        from klambda.worker.runtimeapi import RuntimeApi

        # before gRPC: the runtime container starts once the worker serves gRPC
        container = RuntimeApi()
        await container.start(runtime_api_port)
    # a Runtime API runtime (provided*, an image) starts its environments without a zygote
    pools: list[EnvironmentPool] = []
    zygote = (
        None
        if container is not None or runtimes.uses_runtime_api(cfg.runtime)
        else await _zygote(cfg.runtime, groups, _room(pools, max_environments))
    )
    if zygote is None or cfg.image:
        custom.prepare()
    shipper = _shipper()
    logs = LogHub(None, sys.stdout, ship=None if shipper is None else shipper.add)
    pool = EnvironmentPool(cfg, zygote, logs, groups, runtime_container=container)
    pools.append(pool)
    service = WorkerService(VersionExecutor(pool, logs, _limit(pool, max_environments)))
    if provisioned:
        pool.set_provisioned(1)
        # an image's runtime container starts once this worker serves (its startup probe):
        # its provisioned environment is initialised meanwhile, not before
        if container is None:
            await pool.provisioning()
        if pool.provisioning_error:  # calls start their own, as on demand; Lambda retries init
            print(f"klambda worker: provisioned environment {pool.provisioning_error}", flush=True)
    banner = f"{cfg.function}:{cfg.version}"
    await _serve(service, host, port, banner, lambda: float(cfg.timeout_s), stopping, lane_port)
    await pool.close()
    if container is not None:
        await container.close()
    if zygote is not None:
        await zygote.stop()
    if shipper is not None:
        await shipper.close()


async def serve_pool(
    runtime: str,
    host: str,
    port: int,
    max_environments: int,
    code_root: Path,
    cgroups: bool = True,
    opt_root: Path = Path("/opt"),
    store_url: str = "",
    lane_port: int | None = None,
) -> None:
    """A pool worker of `runtime`: its zygote ready, no function until specialised (its
    code and layers from the code store at `store_url`, when the call names objects)."""
    stopping = stop_requested()  # first, as in serve()
    groups = Cgroups(enabled=cgroups)
    # a Runtime API runtime's pool pod has no zygote: its environments run the bootstrap
    pools: list[EnvironmentPool] = []
    zygote = (
        None
        if runtimes.uses_runtime_api(runtime)
        else await _zygote(runtime, groups, _room(pools, max_environments))
    )
    if zygote is None:
        custom.prepare()
    shipper = _shipper()
    logs = LogHub(None, sys.stdout, ship=None if shipper is None else shipper.add)

    def executor_of(cfg: FunctionConfig) -> VersionExecutor:
        pool = EnvironmentPool(cfg, zygote, logs, groups)
        pools.append(pool)
        return VersionExecutor(pool, logs, _limit(pool, max_environments))

    specialisation = Specialisation(runtime, code_root, executor_of, opt_root, store_url)
    service = WorkerService(None, specialisation)

    def grace() -> float:
        cfg = specialisation.cfg
        return float(cfg.timeout_s) if cfg is not None else 0.0

    await _serve(service, host, port, f"pool {runtime}", grace, stopping, lane_port)
    for pool in pools:
        await pool.close()
    if zygote is not None:
        await zygote.stop()
    if shipper is not None:
        await shipper.close()
