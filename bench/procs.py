"""Processes the benchmarks start (routers, the echo server, RIE) and what they cost.

Each server is started on free loopback ports, waited for, and stopped by its own pid
when the benchmark is done. CPU time comes from /proc, so a figure can say where the
cores went (router, environments, load generator) and not only how fast it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
ECHO = [sys.executable, "-m", "bench.echo"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.01)
    raise RuntimeError(f"{proc.args!r} did not listen on {port} in {timeout}s:\n{log.read_text()}")


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer in {timeout}s:\n{log.read_text()}")


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


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out.extend(int(x) for x in (task / "children").read_text().split())
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Router:
    """A running `klambda up`."""

    proc: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    state: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def zygotes(self) -> list[int]:
        return [p for p in children(self.pid) if "klambda.environment.zygote" in cmdline(p)]

    def environments(self) -> list[int]:
        """Environment processes: the children of the router's zygotes."""
        return [e for z in self.zygotes() for e in children(z)]

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of (the router, its live environments)."""
        return cpu_seconds(self.pid), sum(cpu_seconds(e) for e in self.environments())


@contextlib.contextmanager
def router(
    functions: Path, work: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Router]:
    http, grpc = free_port(), free_port()
    state = work / f"state-{http}"
    log = work / f"router-{http}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "klambda.cli.main",
                "up",
                str(functions),
                "--http-port",
                str(http),
                "--grpc-port",
                str(grpc),
                "--state",
                str(state),
                "--quiet",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
    try:
        wait_http(f"http://127.0.0.1:{http}/healthz", proc, log)
        yield Router(proc, http, grpc, state, log)
    finally:
        stop(proc)


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
        wait_port(grpc, proc, log)
        wait_http(f"http://127.0.0.1:{http}/healthz", proc, log)
        yield Echo(proc, grpc, http)
    finally:
        stop(proc)
