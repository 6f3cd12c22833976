"""gRPC `klambda.v1.Invoker`, with health and reflection: parse, call the invoke path, reply."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from klambda import lineage
from klambda.api import limits
from klambda.errors import KlambdaError
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.router.invoke import Invoker

TYPES = {
    invoker_pb2.REQUEST_RESPONSE: "RequestResponse",
    invoker_pb2.EVENT: "Event",
    invoker_pb2.DRY_RUN: "DryRun",
}
# room for a 6 MB payload plus the envelope
MESSAGE_LIMIT = limits.SYNC_PAYLOAD_MAX_BYTES + 64 * 1024
OPTIONS = [
    ("grpc.max_receive_message_length", MESSAGE_LIMIT),
    ("grpc.max_send_message_length", MESSAGE_LIMIT),
]


class InvokerService(invoker_pb2_grpc.InvokerServicer):
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    async def Invoke(
        self, request: invoker_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invoker_pb2.InvokeResponse:
        try:
            res = await self.invoker.invoke(
                request.function_name,
                request.payload,
                qualifier=request.qualifier or None,
                invocation_type=TYPES.get(request.invocation_type, "RequestResponse"),
                log_tail=request.log_tail,
                trace=_metadata(context, lineage.HEADER.lower()),
            )
        except KlambdaError as err:
            trailers = [("x-amzn-errortype", err.code)]
            if err.reason:
                trailers.append(("reason", err.reason))
            context.set_trailing_metadata(tuple(trailers))
            await context.abort(err.grpc_status, f"{err.code}: {err.message}")
            raise  # abort raises; this line is never reached
        return invoker_pb2.InvokeResponse(
            status_code=res.status_code,
            payload=res.payload,
            function_error=res.function_error or "",
            executed_version=res.executed_version,
            log_result=res.log_result(),
            request_id=res.request_id,
        )


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else None
    return None


def build_server(invoker: Invoker, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=OPTIONS)
    invoker_pb2_grpc.add_InvokerServicer_to_server(  # type: ignore[no-untyped-call]
        InvokerService(invoker), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            invoker_pb2.DESCRIPTOR.services_by_name["Invoker"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, bound
