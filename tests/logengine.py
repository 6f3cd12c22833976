"""A real VictoriaLogs, the cluster's log engine, started on loopback for a test.

The binary is built from the Go module proxy by `scripts/testenv.sh victoria-logs` (once,
cached with the control plane's binaries); a missing binary is built, never a reason to
skip. `-retentionPeriod` is the engine's own retention flag: the tests' fixed log set is
dated 2026-01-01, so the engine is told to keep a hundred years unless a test says less.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from klambda.testing import LOOPBACK, eventually, free_port

from tests.kube.controlplane import ensure_binaries


@dataclass(frozen=True)
class VictoriaLogs:
    url: str
    data: Path
    process: subprocess.Popen[bytes]


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
        return bool(resp.status == 200)


@contextmanager
def victoria_logs(
    data: Path, retention: str = "100y", port: int | None = None
) -> Iterator[VictoriaLogs]:
    binary = ensure_binaries(("victoria-logs",)) / "victoria-logs"
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    out = open(data.parent / f"{data.name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(binary),
            f"-httpListenAddr={LOOPBACK}:{port}",
            f"-storageDataPath={data}",
            f"-retentionPeriod={retention}",
            "-delete.enable",  # per-function retention deletes with delete tasks
            "-loggerLevel=WARN",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        eventually(lambda: _healthy(url), f"VictoriaLogs to answer on {url}", timeout=30)
        yield VictoriaLogs(url, data, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
