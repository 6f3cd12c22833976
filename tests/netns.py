"""A test host in a network namespace of its own, joined to this one by a veth pair.

Worker pods have routable addresses, and the API server refuses loopback ones in
EndpointSlices, so the cluster-mode tests run their workers on such a host: a real
network hop the router reaches through the veth, at an address of the benchmarking
range (198.18.0.0/15), which nothing else here uses. Needs root and iproute2.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class NetHost:
    namespace: str
    address: str  # the host's address inside its namespace
    gateway: str  # this side of the veth

    def wrap(self, argv: list[str]) -> list[str]:
        """A command line that runs `argv` on the test host."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def _ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {out.stderr.strip()}")


@contextmanager
def network_host() -> Iterator[NetHost]:
    if os.geteuid() != 0:
        raise RuntimeError("the cluster-mode tests need root for a network namespace")
    tag = uuid.uuid4().hex[:6]
    ns, outer, inner = f"klt-{tag}", f"klh{tag}", f"kln{tag}"
    # different tests, different /30s; 198.18.200.0/24 is docker0's (scripts/cluster)
    octet = int(tag[:2], 16) % 200
    gateway, address = f"198.18.{octet}.1", f"198.18.{octet}.2"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("addr", "add", f"{gateway}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{address}/30", "dev", inner)
        _ip("netns", "exec", ns, "ip", "link", "set", inner, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield NetHost(ns, address, gateway)
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
