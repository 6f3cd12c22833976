"""`klambda.v1.Invoker` under random input: raw bytes where an InvokeRequest belongs, and
well-formed requests with random names, qualifiers, invocation types and payloads. The
router answers each with a status a client can act on (never INTERNAL or UNKNOWN), names
what it refused, and keeps serving."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from klambda.proto import invoker_pb2
from klambda.testing import RouterRunner

from tests.fuzzcount import EXAMPLES
from tests.integration.fuzz.test_rest_api import FUZZ, NAMES

REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
METHOD = "/klambda.v1.Invoker/Invoke"


@pytest.fixture(scope="module")
def channel(fuzzed_router: RouterRunner) -> grpc.Channel:
    ch = grpc.insecure_channel(
        fuzzed_router.grpc_target, options=[("grpc.max_send_message_length", 16 << 20)]
    )
    yield ch
    ch.close()


def call_raw(channel: grpc.Channel, data: bytes) -> tuple[grpc.StatusCode, str]:
    raw = channel.unary_unary(METHOD)  # bytes in, bytes out
    try:
        out = raw(data, timeout=60)
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    invoker_pb2.InvokeResponse.FromString(out)  # whatever it answered, it parses
    return grpc.StatusCode.OK, ""


@FUZZ
@given(data=st.binary(max_size=3000))
def test_raw_bytes_for_a_request(channel: grpc.Channel, data: bytes) -> None:
    EXAMPLES["gRPC: raw bytes"] += 1
    code, details = call_raw(channel, data)
    assert code in REFUSALS | {grpc.StatusCode.OK}, (code, details)
    if code is not grpc.StatusCode.OK:
        assert details


@FUZZ
@given(
    name=NAMES,
    qualifier=st.one_of(st.just(""), st.text(max_size=40), st.sampled_from(["1", "$LATEST"])),
    itype=st.integers(-5, 10),
    payload=st.one_of(st.binary(max_size=500), st.just(b'{"a": 1}'), st.just(b"[" * 50_000)),
    tail=st.booleans(),
)
def test_random_requests(
    channel: grpc.Channel, name: str, qualifier: str, itype: int, payload: bytes, tail: bool
) -> None:
    EXAMPLES["gRPC: random InvokeRequests"] += 1
    req = invoker_pb2.InvokeRequest(
        function_name=name, qualifier=qualifier, payload=payload, log_tail=tail
    )
    data = req.SerializeToString() + (
        b"\x18" + bytes([itype & 0x7F]) if itype >= 0 else b"\x18" + b"\xff" * 9 + b"\x01"
    )
    code, details = call_raw(channel, data)
    assert code in REFUSALS | {grpc.StatusCode.OK}, (code, details)
    if code is grpc.StatusCode.INVALID_ARGUMENT and not 0 <= itype <= 2:
        assert "invocation_type" in details or "InvocationType" in details or name, details
