"""Python clients that time one call at a time: gRPC (grpc.aio) and HTTP (keep-alive).

Used where the question is the latency of a single call (warm invoke at concurrency 1,
cold starts), with the same client on both sides of every pair. Throughput is measured
with ghz and wrk instead (bench/tools.py), which do not share the Python CPU.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass

import grpc
from klambda.proto import invoker_pb2, invoker_pb2_grpc


class InvokeFailed(RuntimeError):
    pass


@dataclass
class Reply:
    seconds: float
    payload: bytes
    log_result: str = ""


class GrpcInvoker:
    """One channel to a klambda.v1.Invoker (the router or the bare echo)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = invoker_pb2_grpc.InvokerStub(self.channel)  # type: ignore[no-untyped-call]

    async def invoke(self, function: str, payload: bytes = b"{}", tail: bool = False) -> Reply:
        req = invoker_pb2.InvokeRequest(function_name=function, payload=payload, log_tail=tail)
        t0 = time.perf_counter()
        res = await self.stub.Invoke(req)
        dt = time.perf_counter() - t0
        if res.status_code != 200 or res.function_error:
            raise InvokeFailed(f"{function}: {res.status_code} {res.payload[:500]!r}")
        return Reply(dt, res.payload, res.log_result)

    async def timed(self, function: str, n: int) -> list[float]:
        stub, out = self.stub, []
        req = invoker_pb2.InvokeRequest(function_name=function, payload=b"{}")
        perf = time.perf_counter
        for _ in range(n):
            t0 = perf()
            res = await stub.Invoke(req)
            out.append(perf() - t0)
            if res.status_code != 200 or res.function_error:
                raise InvokeFailed(f"{function}: {res.status_code} {res.payload[:500]!r}")
        return out

    async def close(self) -> None:
        await self.channel.close()


class HttpInvoker:
    """Lambda's REST Invoke over one keep-alive connection (the router, the echo, RIE)."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def invoke(self, function: str, payload: bytes = b"{}") -> Reply:
        t0 = time.perf_counter()
        self.conn.request(
            "POST",
            f"/2015-03-31/functions/{function}/invocations",
            body=payload,
            headers={"Content-Type": "application/json"},
        )
        resp = self.conn.getresponse()
        body = resp.read()
        dt = time.perf_counter() - t0
        if resp.status != 200 or resp.getheader("X-Amz-Function-Error"):
            raise InvokeFailed(f"{function}: HTTP {resp.status} {body[:500]!r}")
        return Reply(dt, body)

    def event(self, function: str, payload: bytes = b"{}") -> float:
        """An asynchronous invoke (`X-Amz-Invocation-Type: Event`): seconds until its 202."""
        t0 = time.perf_counter()
        self.conn.request(
            "POST",
            f"/2015-03-31/functions/{function}/invocations",
            body=payload,
            headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
        )
        resp = self.conn.getresponse()
        body = resp.read()
        dt = time.perf_counter() - t0
        if resp.status != 202:
            raise InvokeFailed(f"{function}: HTTP {resp.status} (202 expected) {body[:500]!r}")
        return dt

    def get(self, path: str) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise InvokeFailed(f"GET {path}: HTTP {resp.status} {body[:500]!r}")
        return time.perf_counter() - t0, body

    def close(self) -> None:
        self.conn.close()
