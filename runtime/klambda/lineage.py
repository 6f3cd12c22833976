"""Recursive loop detection, as Lambda does it: a hop count carried by the trace header.

Every invocation runs with an X-Ray trace header in `_X_AMZN_TRACE_ID`; the AWS SDKs
(botocore included) send it on as `X-Amzn-Trace-Id` when a handler calls AWS, so a
function that invokes a function, directly or asynchronously, hands its lineage on. The
header's `Lineage=<tag>:<hops>` field counts the invocations before this one in its
chain: 0 for a call from outside, one more at each hop (an invocation made by a handler,
an on-success or on-failure destination, an event source). Lambda stops the chain after
16 invocations: the 16th hop is not run unless the function's `recursiveLoop` is `Allow`;
a synchronous call gets `RecursiveInvocationException`, an asynchronous event goes to the
function's DLQ and on-failure destination. Pure.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

from klambda import ids

HEADER = "X-Amzn-Trace-Id"
MAX_HOPS = 16  # the 16th hop (the 17th invocation of a chain) is stopped


@dataclass(frozen=True)
class Trace:
    root: str
    hops: int  # invocations before this one in its chain

    @property
    def stopped(self) -> bool:
        """Whether this invocation is past Lambda's recursion limit."""
        return self.hops >= MAX_HOPS

    def header(self) -> str:
        """The header value, as `_X_AMZN_TRACE_ID` and `X-Amzn-Trace-Id` carry it."""
        tag = zlib.crc32(self.root.encode())  # the root's, whatever hop reads it
        parent = ids.random_hex(8)
        return f"Root={self.root};Parent={parent};Sampled=0;Lineage={tag:08x}:{self.hops}"

    def next_hop(self) -> Trace:
        return Trace(self.root, self.hops + 1)


def new_root(now: float | None = None) -> str:
    """An X-Ray trace id: `1-<epoch seconds, hex>-<96 random bits, hex>`."""
    return f"1-{int(time.time() if now is None else now):08x}-{ids.random_hex(12)}"


def parse(value: str | None) -> tuple[str | None, int | None]:
    """The root and the hop count of a header (None for what it does not carry)."""
    root = hops = None
    for part in (value or "").split(";"):
        key, _, val = part.strip().partition("=")
        if key == "Root" and val:
            root = val[:64]
        elif key == "Lineage":
            count = val.rpartition(":")[2]
            if count.isdigit() and len(count) <= 6:
                hops = int(count)
    return root, hops


def of_request(header: str | None) -> Trace:
    """The trace of an invocation asked for with `header` (X-Amzn-Trace-Id): the next hop
    of the handler that sent it, or the first of a new chain (a call from outside)."""
    if not header:  # a call from outside: most calls
        return Trace(new_root(), 0)
    root, hops = parse(header)
    return Trace(root or new_root(), 0 if hops is None else hops + 1)


def of_event(header: str | None) -> Trace:
    """The trace an accepted event was given (`of_request` when it was accepted)."""
    root, hops = parse(header)
    return Trace(root or new_root(), hops or 0)
