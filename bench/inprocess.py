"""klambda's invoke path without any server in front: `Invoker.invoke` called in-process.

A `Router` is started inside the benchmark process (as `klambda up` starts one), and its
one invoke path is called directly: admission, pools, the socketpair round trip to a
real environment forked from the zygote, logs, metrics. Beside the bare echo (gRPC with
nothing behind it) this splits the full path's cost into the server's part and klambda's.
cProfile then tells which of klambda's functions the CPU per invoke goes to.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from typing import Any

from klambda.router.server import Router
from klambda.settings import RouterSettings
from klambda.testing import children, cmdline

from bench import stats
from bench.lab import Lab
from bench.procs import cpu_seconds


def _environment_cpu() -> float:
    zygotes = [p for p in children(os.getpid()) if "klambda.environment.zygote" in cmdline(p)]
    return sum(cpu_seconds(e) for z in zygotes for e in children(z))


def _profile_rows(prof: cProfile.Profile, top: int = 15) -> list[dict[str, Any]]:
    """The functions with the most self time, as shares of all profiled time."""
    st = pstats.Stats(prof)
    entries = st.stats.items()  # type: ignore[attr-defined]
    whole = sum(tt for _key, (_cc, _nc, tt, _ct, _callers) in entries) or 1.0
    rows = []
    for (file, line, fn), (_cc, _nc, tt, ct, _callers) in entries:
        short = file.split("runtime/", 1)[-1].split("site-packages/", 1)[-1]
        if "/lib/python3" in short:  # the standard library: asyncio/base_events.py
            short = short.split("/lib/python3", 1)[1].partition("/")[2]
        rows.append(
            {
                "function": fn if file == "~" else f"{fn} ({short}:{line})",
                "self": tt / whole,
                "total": ct / whole,
            }
        )
    rows.sort(key=lambda r: r["self"], reverse=True)
    return rows[:top]


async def run(lab: Lab, calls: int) -> dict[str, Any]:
    settings = RouterSettings.from_env(
        grpc_port=0, http_port=0, state_dir=lab.work / "inprocess-state", echo_logs=False
    )
    router = Router(settings, lab.functions)
    await router.start()
    try:
        invoker = router.invoker
        assert invoker is not None
        for _ in range(200):
            await invoker.invoke("noop", b"{}")
        samples = []
        perf = time.perf_counter
        cpu0, env0 = time.process_time(), _environment_cpu()
        for _ in range(calls):
            t0 = perf()
            await invoker.invoke("noop", b"{}")
            samples.append(perf() - t0)
        cpu, env = time.process_time() - cpu0, _environment_cpu() - env0
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            await invoker.invoke("noop", b"{}")
        prof.disable()
    finally:
        await router.stop()
    out: dict[str, Any] = stats.summary_ms(samples)
    out["cpu_per_invoke_us"] = {"router": cpu / calls * 1e6, "environment": env / calls * 1e6}
    out["profile"] = _profile_rows(prof)
    return out
