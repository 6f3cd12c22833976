"""9. The Runtime API path beside the fork path: the same no-op handler as a forked Python
environment (`python3.11`), under awslambdaric through the Runtime API (`provided.al2023`
whose bootstrap execs `python -m awslambdaric`), and AWS's tutorial custom runtime (bash
and curl, examples/custom-runtime). Cold: functions never invoked, one call each, the three
paths in turn so they share the machine's state; the REPORT line must carry an Init
Duration. Warm: one function per path, its environment started first, then sequential
calls in rounds, the paths in turn. All through one router's gRPC Invoke.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from bench import clients, stats
from bench.lab import Sizes
from bench.procs import ROOT, router

INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
TUTORIAL = ROOT / "examples" / "custom-runtime" / "tutorial"
NOOP = "def handler(event, context):\n    return {}\n"
PATHS = ("fork", "awslambdaric", "tutorial")


def _code(path: str) -> tuple[str, str, dict[str, str]]:
    """(runtime, handler, inline files) of the no-op function on `path`."""
    if path == "fork":
        return "python3.11", "app.handler", {"app.py": NOOP}
    if path == "awslambdaric":
        boot = f'#!/bin/sh\nexec {sys.executable} -m awslambdaric "$_HANDLER"\n'
        return "provided.al2023", "app.handler", {"app.py": NOOP, "bootstrap": boot}
    files = {name: (TUTORIAL / name).read_text() for name in ("bootstrap", "function.sh")}
    return "provided.al2023", "function.handler", files


def write(folder: Path, cold: int) -> Path:
    docs = []
    for path in PATHS:
        runtime, handler, files = _code(path)
        for name in [f"ra-{path}-warm"] + [f"ra-{path}-{i:03d}" for i in range(cold)]:
            docs.append(
                {
                    "apiVersion": "klambda.io/v1alpha1",
                    "kind": "Function",
                    "metadata": {"name": name},
                    "spec": {
                        "runtime": runtime,
                        "handler": handler,
                        "memoryMB": 128,
                        "timeoutSeconds": 10,
                        "code": {"inline": files},
                    },
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


async def _measure(target: str, sizes: Sizes) -> dict[str, Any]:
    client = clients.GrpcInvoker(target)
    cold: dict[str, list[float]] = {p: [] for p in PATHS}
    init: dict[str, list[float]] = {p: [] for p in PATHS}
    warm: dict[str, list[float]] = {p: [] for p in PATHS}
    try:
        for i in range(sizes.runtime_api_cold):
            for path in PATHS:
                reply = await client.invoke(f"ra-{path}-{i:03d}", tail=True)
                m = INIT.search(reply.log_result)
                if m is None:
                    raise RuntimeError(f"ra-{path}-{i:03d}: no Init Duration: not a cold start")
                cold[path].append(reply.seconds)
                init[path].append(float(m.group(1)) / 1000)
        for path in PATHS:
            await client.invoke(f"ra-{path}-warm")
        rounds = 5
        for _ in range(rounds):
            for path in PATHS:
                warm[path] += await client.timed(
                    f"ra-{path}-warm", max(1, sizes.runtime_api_warm // rounds)
                )
    finally:
        await client.close()
    out: dict[str, Any] = {"paths": list(PATHS)}
    for path in PATHS:
        out[path] = {
            "cold": stats.summary_ms(cold[path]),
            "init": stats.summary_ms(init[path]),
            "warm": stats.summary_ms(warm[path]),
        }
    fork = out["fork"]
    for path in PATHS[1:]:
        out[path]["warm_p50_over_fork"] = stats.ratio(
            out[path]["warm"]["p50_ms"], fork["warm"]["p50_ms"]
        )
        out[path]["cold_p50_over_fork"] = stats.ratio(
            out[path]["cold"]["p50_ms"], fork["cold"]["p50_ms"]
        )
    return out


def run(work: Path, sizes: Sizes) -> dict[str, Any]:
    folder = write(work / "runtimeapi-functions", sizes.runtime_api_cold)
    with router(folder, work / "runtimeapi") as r:
        return asyncio.run(_measure(r.grpc_target, sizes))
