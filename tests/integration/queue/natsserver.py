"""A real `nats-server -js` on a free loopback port with its own store, for the tests.

The Debian package `nats-server` (installed by scripts/setup-system.sh) is required: a
missing binary fails the test loudly rather than skipping it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from klambda.testing import eventually, free_port, still_running


@dataclass
class NatsServer:
    url: str
    port: int
    store: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _ready(port: int, log: Path) -> bool:
    if "Server is ready" not in log.read_text(errors="replace"):
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"INFO")
    except OSError:
        return False


@contextmanager
def nats_server(tmp: Path, timeout: float = 15.0) -> Iterator[NatsServer]:
    exe = shutil.which("nats-server") or (
        "/usr/bin/nats-server" if Path("/usr/bin/nats-server").exists() else None
    )
    if exe is None:
        raise RuntimeError("nats-server is not installed: run scripts/setup-system.sh")
    port = free_port()
    store = tmp / "jetstream"
    log = tmp / f"nats-{port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [exe, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(
            lambda: still_running(proc, log) and _ready(port, log),
            f"nats-server ready on port {port}",
            timeout=timeout,
            interval=0.02,
        )
        yield NatsServer(f"nats://127.0.0.1:{port}", port, store, log, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
