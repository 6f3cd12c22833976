"""Starting real `klambda up` routers for the tests, on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KLAMBDA = [sys.executable, "-m", "klambda.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningRouter:
    def __init__(
        self, proc: subprocess.Popen[bytes], http: int, grpc: int, log: Path, state: Path
    ) -> None:
        self.proc = proc
        self.http_port = http
        self.grpc_port = grpc
        self.log = log
        self.state = state
        self.url = f"http://127.0.0.1:{http}"
        self.grpc_target = f"127.0.0.1:{grpc}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            return str(r.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def invoke(
        self, name: str, payload: Any = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps({} if payload is None else payload).encode()
        req = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{name}/invocations",
            data=data,
            method="POST",
            headers=headers,
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"klambda up exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"klambda up did not become healthy in {timeout}s:\n{log.read_text()}")


@contextmanager
def router(
    functions: Path,
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    state: Path | None = None,
) -> Iterator[RunningRouter]:
    http, grpc = free_port(), free_port()
    state = state or tmp / "state"
    log = tmp / f"router-{http}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                *KLAMBDA,
                "up",
                str(functions),
                "--http-port",
                str(http),
                "--grpc-port",
                str(grpc),
                "--state",
                str(state),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{http}", proc, log)
        yield RunningRouter(proc, http, grpc, log, state)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def copy_functions(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".klambda"))
    return dst
