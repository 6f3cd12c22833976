"""11. Every core: `klambda up --processes N` beside the single-process bare echo.

The goal: warm no-op throughput at least the saturation of the bare grpc.aio echo (one
process, bench/echo.py), over gRPC and over the REST API, with throttling as exact as in
one process. One run measures, side by side:

- the echo's saturation: ghz at each concurrency over 1 connection (as part 2) and over
  CONNECTIONS connections; the best is the floor. wrk against its aiohttp twin is shown too;
- klambda with N router processes (N = the machine's cores) and with one, at the same
  concurrencies: ghz over min(concurrency, CONNECTIONS) connections (the kernel spreads
  connections, not calls, over the processes), wrk with a connection per caller;
- what each call costs (CPU µs of all router processes, of the environments, of the load
  generator), and the admission decision alone, in this process: the in-memory pools
  against the shared file;
- exactness: 50 callers (a gRPC connection each) call a function with reserved concurrency
  5 that sleeps 20 ms and returns when it ran; the most that ran at once must be exactly 5,
  and the calls must have run on more than one process.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.router.admission import ConcurrencyPools
from klambda.router.sharedpools import SharedPools
from klambda.testing import children, cmdline, eventually

from bench import functions, stats, tools
from bench.lab import Sizes
from bench.procs import Router, cpu_seconds, echo_server, router

CONNECTIONS = 16
RESERVED = 5
CALLERS = 50
SLEEP_S = 0.02


def router_pids(r: Router) -> list[int]:
    assert r.state is not None
    try:
        return list(json.loads((r.state / "endpoint.json").read_text())["processes"])
    except (OSError, ValueError, KeyError):
        return []


def cpu(r: Router) -> tuple[float, float]:
    """CPU seconds so far of (every router process, their environments)."""
    routers = router_pids(r) or [r.pid]
    zygotes = [z for p in routers for z in children(p) if "environment.zygote" in cmdline(z)]
    envs = [e for z in zygotes for e in children(z)]
    return sum(cpu_seconds(p) for p in routers), sum(cpu_seconds(e) for e in envs)


def measured(load: tools.Load, before: tuple[float, float], after: tuple[float, float]) -> Any:
    wall = load.seconds or 1.0
    return {
        "rps": load.rps,
        "ok": load.ok,
        "errors": load.errors,
        "error_sample": load.error_sample,
        "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms,
        "server_cpu": (after[0] - before[0]) / wall,
        "environment_cpu": (after[1] - before[1]) / wall,
        "generator_cpu": load.generator_cpu_s / wall,
        "server_cpu_per_call_us": (after[0] - before[0]) / load.ok * 1e6 if load.ok else None,
        "environment_cpu_per_call_us": (after[1] - before[1]) / load.ok * 1e6 if load.ok else None,
        "generator_cpu_per_call_us": load.generator_cpu_s / load.ok * 1e6 if load.ok else None,
    }


def klambda_runs(r: Router, ghz: str | None, work: Path, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {"grpc": {}, "rest": {}}
    url = f"{r.url}/2015-03-31/functions/noop/invocations"
    for c in sizes.concurrencies:
        conns = min(c, CONNECTIONS)
        if ghz is not None:
            tools.ghz(ghz, r.grpc_target, "noop", c, count=max(200, 20 * c), connections=conns)
            before = cpu(r)
            load = tools.ghz(
                ghz, r.grpc_target, "noop", c, seconds=sizes.load_seconds, connections=conns
            )
            out["grpc"][str(c)] = {**measured(load, before, cpu(r)), "connections": conns}
        tools.wrk(url, c, 1, work)
        before = cpu(r)
        load = tools.wrk(url, c, sizes.load_seconds, work)
        out["rest"][str(c)] = {**measured(load, before, cpu(r)), "connections": c}
    return out


def echo_runs(echo: Any, ghz: str | None, work: Path, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {"grpc": {}, "rest": {}}
    pid = echo.proc.pid

    def server() -> tuple[float, float]:
        return cpu_seconds(pid), 0.0

    for c in sizes.concurrencies:
        if ghz is not None:
            for conns in sorted({1, min(c, CONNECTIONS)}):
                tools.ghz(ghz, echo.grpc_target, "noop", c, count=200, connections=conns)
                before = server()
                load = tools.ghz(
                    ghz, echo.grpc_target, "noop", c, seconds=sizes.load_seconds, connections=conns
                )
                out["grpc"][f"{c}/{conns}"] = {
                    **measured(load, before, server()),
                    "connections": conns,
                }
        url = f"{echo.url}/2015-03-31/functions/noop/invocations"
        before = server()
        load = tools.wrk(url, c, sizes.load_seconds, work)
        out["rest"][str(c)] = {**measured(load, before, server()), "connections": c}
    return out


async def exactness(r: Router, seconds: float) -> dict[str, Any]:
    """CALLERS callers, a connection each, calling the reserved function for `seconds`."""
    outcomes: Counter[str] = Counter()
    spans: list[tuple[float, float]] = []
    ran_on: Counter[int] = Counter()
    end = time.monotonic() + seconds
    payload = json.dumps({"sleep": SLEEP_S}).encode()

    async def caller() -> None:
        opts = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
        async with grpc.aio.insecure_channel(r.grpc_target, options=opts) as channel:
            stub = invoker_pb2_grpc.InvokerStub(channel)
            while time.monotonic() < end:
                try:
                    res = await stub.Invoke(
                        invoker_pb2.InvokeRequest(function_name="reserved", payload=payload),
                        timeout=30,
                    )
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        outcomes["throttled"] += 1
                        await asyncio.sleep(0.001)
                    else:
                        outcomes[f"error {err.code().name}"] += 1
                    continue
                outcomes["ok"] += 1
                body = json.loads(res.payload)
                spans.append((body["start"], body["end"]))
                ran_on[parent(body["zygote"])] += 1

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _t, step in events:  # an end sorts before a start at the same instant
        running += step
        most = max(most, running)
    return {
        "callers": CALLERS,
        "reserved": RESERVED,
        "seconds": seconds,
        "outcomes": dict(outcomes),
        "most_at_once": most,
        "ran_on": {str(k): v for k, v in ran_on.items()},
        "router_processes": router_pids(r),
    }


def parent(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def admission_cost(calls: int) -> dict[str, float]:
    """µs per acquire + release: in memory (one process) and in the shared file."""
    single = ConcurrencyPools()
    single.set_reserved("f", 5)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    for _ in range(calls):
        single.try_acquire("f")
        single.release("f")
    out["in_memory_us"] = (time.perf_counter() - t0) / calls * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        shared = SharedPools(Path(tmp) / "admission.map", 0, create=True)
        shared.set_reserved("f", 5)
        t0 = time.perf_counter()
        for _ in range(calls):
            shared.try_acquire("f")
            shared.release("f")
        out["shared_us"] = (time.perf_counter() - t0) / calls * 1e6
        shared.close()
    return out


def run(work: Path, sizes: Sizes, tool_paths: dict[str, str]) -> dict[str, Any]:
    n = max(2, os.cpu_count() or 1)
    ghz = tool_paths.get("ghz")
    folder = functions.write_processes(work / "functions-processes", RESERVED)
    out: dict[str, Any] = {
        "processes": n,
        "connections": CONNECTIONS,
        "ghz_missing": ghz is None,
    }
    with echo_server(work) as echo:
        out["echo"] = echo_runs(echo, ghz, work, sizes)
        # a shared machine under load can take a while to start N routers and their zygotes
        with router(folder, work, "--processes", str(n), startup_timeout=120) as r:
            eventually(lambda: len(router_pids(r)) == n, f"{n} router processes", timeout=60)
            out["memory_limits"] = next(
                (
                    x.split(":", 1)[1].strip()
                    for x in r.output().splitlines()
                    if "memory limits:" in x
                ),
                "unknown",
            )
            out["klambda_n"] = klambda_runs(r, ghz, work, sizes)
            out["exactness"] = asyncio.run(exactness(r, 1.0 if sizes.load_seconds < 2 else 3.0))
        with router(folder, work, startup_timeout=120) as r:
            out["klambda_1"] = klambda_runs(r, ghz, work, sizes)
    out["admission"] = admission_cost(20_000 if sizes.load_seconds < 2 else 200_000)

    def best(rows: dict[str, Any]) -> float:
        return max((v["rps"] for v in rows.values()), default=0.0)

    grpc_floor = best(out["echo"]["grpc"])
    out["echo_grpc_saturation_rps"] = grpc_floor or None
    out["echo_rest_saturation_rps"] = best(out["echo"]["rest"])
    for key in ("klambda_n", "klambda_1"):
        for proto in ("grpc", "rest"):
            b = best(out[key][proto])
            out[f"{key}_{proto}_best_rps"] = b
            out[f"{key}_{proto}_vs_echo"] = stats.ratio(b, grpc_floor) if grpc_floor else None
    return out
