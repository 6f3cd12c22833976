"""The load generators and the peer, as programs: ghz (gRPC), wrk (REST), RIE.

ghz and aws-lambda-rie are built from their Go modules by bench/build-tools.sh into
~/.cache/klambda/bin; wrk is Debian's (scripts/setup-system.sh). A load generator is
written in Go or C so that it does not eat the Python CPU being measured; what it does
eat is measured (rusage of its process) and reported beside each figure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import ROOT

CACHE = Path(os.environ.get("KLAMBDA_CACHE", Path.home() / ".cache" / "klambda"))
BIN = CACHE / "bin"
PROTO = ROOT / "runtime" / "klambda" / "proto" / "invoker.proto"
BUILD_TOOLS = ROOT / "bench" / "build-tools.sh"


@dataclass
class Built:
    """What bench/build-tools.sh said: a path per tool, or why it could not build it."""

    paths: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def build(tools: list[str]) -> Built:
    """Build (or find, already built) the Go tools; never raises for a failed build."""
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_TOOLS), *tools], capture_output=True, text=True, check=False
    )
    out = Built(seconds=time.monotonic() - t0)
    for line in proc.stdout.splitlines():
        name, _, rest = line.partition(" ")
        if rest.startswith("ERROR "):
            out.errors[name] = rest.removeprefix("ERROR ")
        elif rest:
            out.paths[name] = rest
    for t in tools:
        if t not in out.paths and t not in out.errors:
            out.errors[t] = (
                f"build-tools.sh said nothing (exit {proc.returncode}): "
                + (proc.stderr.strip().splitlines() or ["no output"])[-1]
            )
    return out


@dataclass
class Load:
    """One load-generator run: calls that succeeded, their rate and latency."""

    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    generator_cpu_s: float
    error_sample: str = ""
    cancelled: int = 0  # calls in flight that the load generator cut off when time was up

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _run(argv: list[str]) -> str:
    """Run a load generator to its end; its stdout."""
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return proc.stdout.decode()


def _children_cpu() -> float:
    """CPU seconds of every reaped child so far: the difference around a run is its own."""
    r = os.times()
    return r.children_user + r.children_system


def ghz(
    binary: str,
    target: str,
    function: str,
    concurrency: int,
    seconds: float | None = None,
    count: int | None = None,
    payload: bytes = b"{}",
    connections: int = 1,
) -> Load:
    """`ghz` against klambda.v1.Invoker/Invoke (the router or the bare echo), over
    `connections` connections (several router processes share a port by connection)."""
    data = json.dumps({"function_name": function, "payload": base64.b64encode(payload).decode()})
    argv = [
        binary,
        "--insecure",
        "--proto",
        str(PROTO),
        "--import-paths",
        str(PROTO.parent),
        "--call",
        "klambda.v1.Invoker.Invoke",
        "-d",
        data,
        "-c",
        str(concurrency),
        "--connections",
        str(connections),
        "-O",
        "json",
        "--timeout",
        "30s",
    ]
    argv += ["-z", f"{seconds}s"] if count is None else ["-n", str(count)]
    cpu0 = _children_cpu()
    stdout = _run([*argv, target])
    cpu = _children_cpu() - cpu0
    d = json.loads(stdout)
    codes: dict[str, int] = d.get("statusCodeDistribution") or {}
    ok = int(codes.get("OK", 0))
    errs = {k: v for k, v in (d.get("errorDistribution") or {}).items()}
    # With -z, ghz cancels the calls in flight when the time is up and counts them as
    # errors ("the client connection is closing", "context canceled"): ghz closing its own
    # connection, not a failure of the server. They are counted apart.
    stopped = sum(v for k, v in errs.items() if "closing" in k or "anceled" in k)
    real_errors = sum(errs.values()) - stopped
    lat = {int(x["percentage"]): x["latency"] / 1e6 for x in d.get("latencyDistribution") or []}
    return Load(
        ok=ok,
        errors=real_errors,
        seconds=d["total"] / 1e9,
        p50_ms=lat.get(50, float("nan")),
        p99_ms=lat.get(99, float("nan")),
        generator_cpu_s=cpu,
        error_sample=next((k for k in errs if "closing" not in k and "anceled" not in k), ""),
        cancelled=stopped,
    )


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"socket_errors\\":%d," ..
    "\\"non2xx\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def wrk(url: str, concurrency: int, seconds: float, work: Path) -> Load:
    """`wrk` POSTing `{}` to a Lambda invoke URL (the router, the echo or RIE)."""
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    d, cpu = wrk_json(script, url, concurrency, seconds)
    errors = int(d["socket_errors"]) + int(d["non2xx"])
    return Load(
        ok=int(d["requests"]) - int(d["non2xx"]),
        errors=errors,
        seconds=d["duration_us"] / 1e6,
        p50_ms=d["p50_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        generator_cpu_s=cpu,
        error_sample=f"{d['non2xx']} non-2xx, {d['socket_errors']} socket errors" if errors else "",
    )


def wrk_json(
    script: Path, url: str, concurrency: int, seconds: float
) -> tuple[dict[str, Any], float]:
    """Run wrk (one thread) with a Lua script whose `done` prints one `WRK-JSON {...}` line:
    that object, and the CPU seconds wrk used."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed: run scripts/setup-system.sh (make setup)")
    argv = [
        binary,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    cpu0 = _children_cpu()
    stdout = _run(argv)
    cpu = _children_cpu() - cpu0
    m = re.search(r"^WRK-JSON (.*)$", stdout, re.M)
    if m is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}")
    d: dict[str, Any] = json.loads(m.group(1))
    return d, cpu


RIC_VERSION = os.environ.get("KLAMBDA_AWSLAMBDARIC_VERSION", "4.2.2")
RIC_VENV = CACHE / f"awslambdaric-{RIC_VERSION}"


def ric_python() -> str:
    """A venv with `awslambdaric` from PyPI, apart from ours; made once, then reused."""
    python = RIC_VENV / "bin" / "python"
    if (RIC_VENV / ".installed").exists():
        return str(python)
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--clear", str(RIC_VENV)], check=True)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"awslambdaric=={RIC_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pip install awslambdaric=={RIC_VERSION} failed: {proc.stderr.strip()[-1000:]}"
        )
    (RIC_VENV / ".installed").touch()
    return str(python)
