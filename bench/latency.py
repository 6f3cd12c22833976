"""1. Warm invoke latency at concurrency 1: klambda beside a bare grpc.aio echo.

The same grpc.aio client, one call at a time, alternates blocks of calls between the bare
echo (another process, the same `Invoke` messages) and the router (client -> router ->
environment over a socketpair -> back), so both see the same noise. A direct in-process
call of the handler is the other floor: what the handler itself costs.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from klambda.environment.context import LambdaContext

from bench import clients, functions, inprocess, stats
from bench.lab import Lab


def direct_call(folder: Path, n: int) -> dict[str, float]:
    """The no-op handler called in this process, with a Lambda context: its floor."""
    path = functions.write_handler(folder, functions.NOOP) / "app.py"
    spec = importlib.util.spec_from_file_location("bench_noop_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.handler
    ctx = LambdaContext(
        request_id="bench",
        deadline=time.time() + 30,
        function_name="noop",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:noop",
        memory_limit_in_mb=1769,
        log_group_name="/aws/lambda/noop",
        log_stream_name="bench",
    )
    event: dict[str, Any] = {}
    perf = time.perf_counter
    out = []
    for _ in range(n):
        t0 = perf()
        handler(event, ctx)
        out.append(perf() - t0)
    return stats.summary_ms(out)


async def run(lab: Lab) -> dict[str, Any]:
    s = lab.sizes
    router = lab.router
    echo = clients.GrpcInvoker(lab.echo.grpc_target)
    kl = clients.GrpcInvoker(router.grpc_target)
    targets = {"echo": (echo, "noop"), "noop": (kl, "noop"), "noop-128": (kl, "noop-128")}
    samples: dict[str, list[float]] = {k: [] for k in targets}
    cpu = {"router_s": 0.0, "environment_s": 0.0}
    try:
        for client, fn in targets.values():  # warm: environments started, channels open
            await client.timed(fn, 50)
        for _ in range(s.latency_rounds):
            for key, (client, fn) in targets.items():
                if key == "noop":
                    r0, e0 = router.cpu()
                samples[key] += await client.timed(fn, s.latency_calls)
                if key == "noop":
                    r1, e1 = router.cpu()
                    cpu["router_s"] += r1 - r0
                    cpu["environment_s"] += e1 - e0
    finally:
        await echo.close()
        await kl.close()
    out: dict[str, Any] = {k: stats.summary_ms(v) for k, v in samples.items()}
    out["direct"] = direct_call(lab.work / "direct", s.direct_calls)
    out["in_process"] = await inprocess.run(lab, s.latency_rounds * s.latency_calls)
    calls = len(samples["noop"])
    out["cpu_per_invoke_us"] = {
        "router": cpu["router_s"] / calls * 1e6,
        "environment": cpu["environment_s"] / calls * 1e6,
    }
    out["ratio_p50_vs_echo"] = stats.ratio(out["noop"]["p50_ms"], out["echo"]["p50_ms"])
    out["ratio_p99_vs_own_p50"] = stats.ratio(out["noop"]["p99_ms"], out["noop"]["p50_ms"])
    return out
