"""3. Cold starts through the router, beside starting a bare interpreter.

Each measured request goes to a function that was never invoked (`cold-000`, `cold-001`,
... in the manifests), so the router must start an environment for it: fork from the
zygote, apply limits, import the handler (init), invoke, answer. Nothing is killed or
waited out to get there. Every cold invoke is paired with a `python -I -S -c pass` started
right before it, so both see the same machine. The REPORT line returned with the reply
(`LogType: Tail`) must carry an `Init Duration`, which proves the start was cold.

The same for handlers that import heavy modules at init, beside the time of that import
alone in a fresh interpreter (measured inside it, so without the interpreter's own start)
and the wall time of a fresh interpreter doing only that import.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

from bench import clients, functions, stats
from bench.lab import Lab, Sizes
from bench.procs import router

INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
BARE = [sys.executable, "-I", "-S", "-c", "pass"]


def timed_process(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout


def import_alone(modules: str, site: bool) -> list[str]:
    flags = ["-I"] if site else ["-I", "-S"]
    code = f"import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
    return [sys.executable, *flags, "-c", code]


async def cold_invoke(client: clients.GrpcInvoker, name: str) -> tuple[float, float]:
    reply = await client.invoke(name, tail=True)
    m = INIT.search(reply.log_result)
    if m is None:
        raise RuntimeError(f"{name}: no Init Duration in its REPORT, so it was not a cold start")
    return reply.seconds, float(m.group(1)) / 1000


async def run(lab: Lab) -> dict[str, Any]:
    """Cold starts on the lab's router, each paired with a bare interpreter, and in turn on
    a second router started with --no-cgroups (what the per-environment cgroups add: mkdir,
    memory limit, moving the process in). A fresh router has invoked nothing, so the same
    function names are cold there too."""
    s = lab.sizes
    with router(lab.functions, lab.work, "--no-cgroups") as plain:
        client = clients.GrpcInvoker(lab.router.grpc_target)
        other = clients.GrpcInvoker(plain.grpc_target)
        try:
            return await _measure(s, client, other)
        finally:
            await client.close()
            await other.close()


async def _measure(
    s: Sizes, client: clients.GrpcInvoker, other: clients.GrpcInvoker
) -> dict[str, Any]:
    await client.invoke("noop")  # channels open before the first timed call
    await other.invoke("noop")
    timed_process(BARE)
    cold, init, bare, no_cg, no_cg_init = [], [], [], [], []
    for name in functions.cold_names("cold", s.cold):
        bare.append(timed_process(BARE)[0])
        total, init_s = await cold_invoke(client, name)
        cold.append(total)
        init.append(init_s)
        total, init_s = await cold_invoke(other, name)
        no_cg.append(total)
        no_cg_init.append(init_s)
    heavy: dict[str, Any] = {}
    for prefix, modules, site in (
        ("heavy-std", functions.HEAVY_STDLIB_MODULES, False),
        ("heavy-boto3", "boto3", True),
    ):
        h_cold, h_init, alone, alone_wall, h_no_cg = [], [], [], [], []
        argv = import_alone(modules, site)
        for name in functions.cold_names(prefix, s.heavy):
            wall, printed = timed_process(argv)
            alone_wall.append(wall)
            alone.append(float(printed))
            total, init_s = await cold_invoke(client, name)
            h_cold.append(total)
            h_init.append(init_s)
            h_no_cg.append((await cold_invoke(other, name))[0])
        heavy[prefix] = {
            "modules": modules,
            "cold": stats.summary_ms(h_cold),
            "init": stats.summary_ms(h_init),
            "cold_without_cgroups": stats.summary_ms(h_no_cg),
            "import_alone": stats.summary_ms(alone),
            "interpreter_and_import": stats.summary_ms(alone_wall),
            "command": " ".join(argv[:-1]) + f" -c 'import {modules}'",
            "ratio_cold_vs_import": stats.ratio(
                stats.percentile(h_cold, 50), stats.percentile(alone, 50)
            ),
            "ratio_cold_vs_interpreter_and_import": stats.ratio(
                stats.percentile(h_cold, 50), stats.percentile(alone_wall, 50)
            ),
        }
    return {
        "cold": stats.summary_ms(cold),
        "init": stats.summary_ms(init),
        "bare_python": stats.summary_ms(bare),
        "bare_command": " ".join(BARE),
        "ratio_p50_vs_bare": stats.ratio(stats.percentile(cold, 50), stats.percentile(bare, 50)),
        "without_cgroups": {"cold": stats.summary_ms(no_cg), "init": stats.summary_ms(no_cg_init)},
        "heavy": heavy,
    }
