"""gRPC `klambda.v1.Invoker`, with health and reflection: parse, call the invoke path, reply."""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from klambda import lineage
from klambda.api import limits
from klambda.errors import KlambdaError
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.router.access import Access, Request
from klambda.router.invoke import Invoker
from klambda.router.permissions import Permission, function_name

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


class Unreadable:
    """A request that is not an InvokeRequest (bytes on the wire that do not parse)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def parse_request(data: bytes) -> invoker_pb2.InvokeRequest | Unreadable:
    """grpc answers UNKNOWN to a request its deserializer cannot parse: parse it here, so
    that the client is told INVALID_ARGUMENT and why."""
    try:
        return invoker_pb2.InvokeRequest.FromString(data)
    except DecodeError as err:
        return Unreadable(str(err))


class InvokerService(invoker_pb2_grpc.InvokerServicer):
    def __init__(self, invoker: Invoker, access: Access | None = None) -> None:
        self.invoker = invoker
        self.access = access

    async def _check(self, function: str, context: grpc.aio.ServicerContext) -> None:
        """A bearer token in the `authorization` metadata, allowed to invoke `function`."""
        assert self.access is not None
        token = _metadata(context, "authorization")
        headers = {"authorization": token} if token else {}
        who = await self.access.authenticate(Request("POST", "grpc:", headers, b""))
        await self.access.authorize(who, Permission("invoke", name=function_name(function)))

    async def Invoke(
        self,
        request: invoker_pb2.InvokeRequest | Unreadable,
        context: grpc.aio.ServicerContext,
    ) -> invoker_pb2.InvokeResponse:
        if isinstance(request, Unreadable):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"not a klambda.v1.InvokeRequest: {request.problem}",
            )
            raise AssertionError  # abort raises
        if request.invocation_type not in TYPES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"InvalidParameterValueException: invocation_type: {request.invocation_type} is "
                "not one of REQUEST_RESPONSE (0), EVENT (1), DRY_RUN (2)",
            )
        try:
            if self.access is not None:
                await self._check(request.function_name, context)
            res = await self.invoker.invoke(
                request.function_name,
                request.payload,
                qualifier=request.qualifier or None,
                invocation_type=TYPES[request.invocation_type],
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


def build_server(
    invoker: Invoker,
    host: str,
    port: int,
    access: Access | None = None,
    *,
    service: InvokerService | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """`reuse_port`: other router processes listen on the same port (SO_REUSEPORT)."""
    server = grpc.aio.server(options=OPTIONS + ([("grpc.so_reuseport", 1)] if reuse_port else []))
    # the generated add_InvokerServicer_to_server, with a deserializer that never fails
    service = service or InvokerService(invoker, access)
    handlers = {
        "Invoke": grpc.unary_unary_rpc_method_handler(
            service.Invoke,
            request_deserializer=parse_request,
            response_serializer=invoker_pb2.InvokeResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("klambda.v1.Invoker", handlers),)
    )
    # registered too, as generated code does: grpc's core then finds the handler by the
    # method's name itself, instead of asking the generic handler in Python on every call
    server.add_registered_method_handlers("klambda.v1.Invoker", handlers)
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
