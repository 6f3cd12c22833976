"""`klambda worker`: a function pod's agent, serving `klambda.v1.Worker` over gRPC.

The router admits and routes; the worker runs an invocation in a warm environment or
starts one (a cold start), and answers with the outcome, as the in-process pool does in
local mode. With every environment busy and no room for another it answers
RESOURCE_EXHAUSTED at once, so the router can try another pod or throttle.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from klambda.api.limits import SCALE_UP_LIMIT
from klambda.execution import FunctionConfig
from klambda.invocation import call_from_proto, to_proto
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.shutdown import stop_requested
from klambda.worker import runtimes
from klambda.worker.cgroups import Cgroups
from klambda.worker.executor import NoCapacity, VersionExecutor
from klambda.worker.logs import LogHub
from klambda.worker.pool import EnvironmentPool
from klambda.worker.zygote import Zygote

MESSAGE_LIMIT = 7 * 1024 * 1024


class WorkerService(worker_pb2_grpc.WorkerServicer):
    def __init__(self, executor: VersionExecutor) -> None:
        self.executor = executor

    async def Invoke(
        self, request: worker_pb2.WorkerInvokeRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.WorkerInvokeResponse:
        try:
            out = await self.executor.run(call_from_proto(request))
        except NoCapacity as err:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
        return to_proto(out)


async def serve(
    cfg: FunctionConfig, host: str, port: int, max_environments: int, cgroups: bool = True
) -> None:
    python = runtimes.interpreter(cfg.runtime)
    if python is None:
        raise SystemExit(f"klambda worker: runtime {cfg.runtime} is not installed here")
    groups = Cgroups(enabled=cgroups)
    zygote = Zygote(python, cgroups=groups)
    await zygote.start()
    logs = LogHub(None, sys.stdout)
    pool = EnvironmentPool(cfg, zygote, logs, groups)

    def may_start() -> tuple[str, str] | None:
        if pool.size < max_environments:
            return None
        return SCALE_UP_LIMIT, f"all {max_environments} environments of this worker are busy"

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MESSAGE_LIMIT),
            ("grpc.max_send_message_length", MESSAGE_LIMIT),
        ]
    )
    worker_pb2_grpc.add_WorkerServicer_to_server(  # type: ignore[no-untyped-call]
        WorkerService(VersionExecutor(pool, logs, may_start)), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise SystemExit(f"klambda worker: cannot listen on {host}:{port}")
    await server.start()
    print(f"klambda worker: {cfg.function}:{cfg.version} on {host}:{bound}", flush=True)
    await stop_requested().wait()
    await server.stop(grace=float(cfg.timeout_s))
    await pool.close()
    await zygote.stop()
