"""One invocation as both sides of the execution seam see it: the `Call` that goes in, the
`Outcome` that comes out, and their wire form between the router and a worker pod.

The router's invoke path and every executor (the local environments, the remote worker
pods) speak these types, so an outcome means the same thing whichever executor ran it;
`to_proto`/`from_proto` are the only place it is converted for the hop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from klambda.proto import worker_pb2


class StreamSink(Protocol):
    """Where a streamed response goes as the handler produces it (a RESPONSE_STREAM
    function URL, InvokeWithResponseStream): `start` once, before the first bytes."""

    async def start(self, content_type: str, version: str) -> None: ...

    async def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Call:
    """What an executor is asked to run."""

    request_id: str
    payload: bytes
    invoked_arn: str | None = None
    log_tail: bool = False
    trace_id: str | None = None
    # streaming: where the chunks go (from a local environment, or from a worker pod over
    # Worker.InvokeStream); not part of the wire form
    stream: StreamSink | None = None
    # cold-start phases (ms) measured before the call reached the environment's host (a
    # pool pod's code download and specialisation), for the REPORT line of a cold start
    phases: Mapping[str, float] | None = None


@dataclass
class Outcome:
    """The end of one invocation, as the router reports it."""

    status: str  # ok | error | invalid | timeout | crash | init_error
    body: bytes
    request_id: str
    version: str
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    init_ms: float | None = None  # set when this invocation started its environment
    error_type: str | None = None
    log_tail: list[str] | None = None
    provisioned: bool = False  # ran in a provisioned environment
    # a cold start's phases before init (ms, e.g. code_download, specialise), when known
    phases: dict[str, float] | None = None

    @property
    def function_error(self) -> bool:
        return self.status not in ("ok", "invalid")

    @property
    def cold_start(self) -> bool:
        return self.init_ms is not None

    @classmethod
    def failed(
        cls,
        status: str,
        request_id: str,
        version: str,
        duration_ms: float,
        max_memory_mb: int,
        error_type: str,
        message: str,
    ) -> Outcome:
        """A call the platform ended (a crash, a timeout...): Lambda's error body, whose
        message starts with the request id."""
        err = {"errorMessage": f"RequestId: {request_id} Error: {message}", "errorType": error_type}
        return cls(
            status, json.dumps(err).encode(), request_id, version, duration_ms, max_memory_mb,
            error_type=error_type,
        )  # fmt: skip


def call_to_proto(call: Call) -> worker_pb2.WorkerInvokeRequest:
    return worker_pb2.WorkerInvokeRequest(
        request_id=call.request_id,
        payload=call.payload,
        invoked_arn=call.invoked_arn or "",
        log_tail=call.log_tail,
        trace_id=call.trace_id or "",
        phases_ms=dict(call.phases or {}),
    )


def call_from_proto(msg: worker_pb2.WorkerInvokeRequest) -> Call:
    return Call(
        msg.request_id,
        msg.payload,
        msg.invoked_arn or None,
        msg.log_tail,
        msg.trace_id or None,
        phases=dict(msg.phases_ms) or None,
    )


def to_proto(out: Outcome) -> worker_pb2.WorkerInvokeResponse:
    return worker_pb2.WorkerInvokeResponse(
        status=out.status,
        body=out.body,
        version=out.version,
        duration_ms=out.duration_ms,
        max_memory_mb=out.max_memory_mb,
        cold_start=out.cold_start,
        init_ms=out.init_ms or 0.0,
        error_type=out.error_type or "",
        log_tail=out.log_tail or [],
        provisioned=out.provisioned,
        phases_ms=dict(out.phases or {}),
    )


def from_proto(
    msg: worker_pb2.WorkerInvokeResponse, request_id: str, version: str, tail: bool
) -> Outcome:
    return Outcome(
        msg.status,
        msg.body,
        request_id,
        msg.version or version,
        msg.duration_ms,
        msg.max_memory_mb,
        msg.init_ms if msg.cold_start else None,
        msg.error_type or None,
        list(msg.log_tail) if tail else None,
        msg.provisioned,
        dict(msg.phases_ms) or None,
    )
