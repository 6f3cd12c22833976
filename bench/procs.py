"""Processes the benchmarks start (routers, the echo server, RIE) and what they cost.

Each server is started on free loopback ports, waited for, and stopped by its own pid
when the benchmark is done. CPU time comes from /proc, so a figure can say where the
cores went (router, environments, load generator) and not only how fast it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from klambda.testing import (
    RouterRunner,
    accepts_tcp,
    answers_http,
    eventually,
    free_port,
    still_running,
)

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
ECHO = [sys.executable, "-m", "bench.echo"]


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Router(RouterRunner):
    """A running `klambda up`, and where its CPU time goes."""

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of (the router, its live environments)."""
        return cpu_seconds(self.pid), sum(cpu_seconds(e) for e in self.environments())


def router(
    functions: Path,
    work: Path,
    *args: str,
    env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> Router:
    """`klambda up --quiet` with a state folder of its own (two may run side by side)."""
    work.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="state-", dir=work))
    return Router.up(
        functions,
        "--quiet",
        *args,
        workdir=work,
        state=state,
        env=env,
        cwd=ROOT,
        startup_timeout=startup_timeout,
    )


@dataclass
class Echo:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextlib.contextmanager
def echo_server(work: Path) -> Iterator[Echo]:
    """The bare grpc.aio (and aiohttp) echo of bench/echo.py, in its own process."""
    grpc, http = free_port(), free_port()
    log = work / f"echo-{grpc}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*ECHO, "--grpc-port", str(grpc), "--http-port", str(http)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        eventually(
            lambda: (
                still_running(proc, log)
                and accepts_tcp(grpc)
                and answers_http(f"http://127.0.0.1:{http}/healthz")
            ),
            f"the echo server on ports {grpc} and {http}",
        )
        yield Echo(proc, grpc, http)
    finally:
        stop(proc)
