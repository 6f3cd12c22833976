"""`make bench`: run every benchmark and rewrite bench/RESULTS.md (and results.json).

    python -m bench.run                        everything (what `make bench` runs)
    python -m bench.run --parts latency,cold   only these parts
    python -m bench.run --quick --output X.md  seconds, tiny counts (the smoke test)

Parts: latency (1), grpc and rest (2), cold (3), async (4), peer (5), scale (6), logs
(7), pool (8: cold starts in the cluster path through the warm pool, on this machine),
runtimeapi (9: the Runtime API path, awslambdaric and a bash custom runtime, beside the
fork path), kind (10: the cluster path on a real kind cluster, bench/kind.py: an existing
cluster named by KLAMBDA_BENCH_CLUSTER, else one made by scripts/cluster/up.sh and deleted
after), burst (11: 1,000 new environments of one function at once, and the memory of each
idle one), processes (12: `klambda up --processes N` on every core beside the bare echo),
metrics, profile. `grpc` and `processes` need ghz and `peer` needs aws-lambda-rie: both are
built from their Go modules by bench/build-tools.sh when selected; if a build fails, RESULTS.md says
exactly why and the other parts still run. `pool` needs root and the Kubernetes control
plane that scripts/testenv.sh builds. Every other part needs only Python, wrk, nats-server
(async) and the repo.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    asyncbench,
    burst,
    coldstart,
    functions,
    kind,
    latency,
    load,
    logs,
    machine,
    metrics_cost,
    peer,
    pool,
    processes,
    profile,
    report,
    runtimeapi,
    scale,
    tools,
)
from bench.lab import Lab, Sizes
from bench.procs import ROOT, echo_server, router

PARTS = (
    "latency",
    "grpc",
    "rest",
    "metrics",
    "cold",
    "async",
    "peer",
    "profile",
    "scale",
    "logs",
    "pool",
    "runtimeapi",
    "kind",
    "burst",
    "processes",
)
NEEDS = {"grpc": ["ghz"], "peer": ["aws-lambda-rie"], "processes": ["ghz"]}
# start routers of their own, after the lab's has stopped
OWN_ROUTERS = ("async", "scale", "logs", "pool", "runtimeapi", "kind", "burst", "processes")
# need the Kubernetes control plane (scripts/testenv.sh) and root, for a network namespace
CLUSTER_PARTS = ("pool", "kind")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {','.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="seconds and tiny counts: a smoke run")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument("--json", type=Path, default=None, help="default: results.json beside --output")
    p.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite --output from a results.json of an earlier run",
    )
    args = p.parse_args(argv)
    args.parts = [x for x in args.parts.split(",") if x]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    return args


def run_lab(lab: Lab, parts: list[str], results: dict[str, Any]) -> None:
    done, errors = results["parts"], results["errors"]
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "latency": lambda: asyncio.run(latency.run(lab)),
        "grpc": lambda: load.grpc(lab),
        "rest": lambda: load.rest(lab),
        "cold": lambda: asyncio.run(coldstart.run(lab)),
        "peer": lambda: peer.run(lab),
        "metrics": lambda: metrics_cost.run(lab, router_cpu_per_call(done)),
        "profile": lambda: profile.run(lab),
    }
    for name in parts:
        missing = [t for t in NEEDS.get(name, []) if t not in lab.tools]
        if missing:
            errors[name] = "not measured: " + "; ".join(
                f"{t} could not be built: {lab.tool_errors.get(t, 'unknown')}" for t in missing
            )
            continue
        step(name, steps[name], results)


def step(name: str, fn: Callable[[], dict[str, Any]], results: dict[str, Any]) -> None:
    """Run one part; a failure is recorded (and fails the run) without stopping the others."""
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        results["parts"][name] = fn()
    except Exception as exc:
        results["errors"][name] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    print(f"bench: {name} done in {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)


def router_cpu_per_call(done: dict[str, Any]) -> dict[str, float]:
    """The router's CPU per invocation in the warm runs already measured."""
    out: dict[str, float] = {}
    if "latency" in done:
        out["gRPC, concurrency 1 (Python client)"] = done["latency"]["cpu_per_invoke_us"]["router"]
    for part, key, label in (
        ("grpc", "noop@50", "gRPC, concurrency 50 (ghz)"),
        ("rest", "50", "REST, concurrency 50 (wrk)"),
    ):
        row = done.get(part, {}).get("klambda", {}).get(key)
        if row:
            out[label] = row["server_cpu_per_call_us"]
    return out


def main(args: argparse.Namespace) -> int:
    t_start = time.monotonic()
    sizes = Sizes.quick() if args.quick else Sizes()
    parts = [p for p in PARTS if p in args.parts]
    results: dict[str, Any] = {
        "command": shlex.join(
            [os.path.relpath(sys.executable, ROOT), "-m", "bench.run", *sys.argv[1:]]
        ),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "quick": args.quick,
        "selected": parts,
        "sizes": sizes.__dict__,
        "machine": machine.describe(),
        "parts": {},
        "errors": {},
    }
    needed = sorted({t for p in parts for t in NEEDS.get(p, [])})
    built = tools.build(needed) if needed else tools.Built()
    results["tools"] = {"paths": built.paths, "errors": built.errors, "build_s": built.seconds}
    if "profile" in parts and "ghz" not in built.paths:
        ghz = tools.BIN / "ghz"
        if ghz.exists():
            built.paths["ghz"] = str(ghz)
    with tempfile.TemporaryDirectory(prefix="klambda-bench-") as tmp:
        work = Path(tmp)
        lab_parts = [p for p in parts if p not in OWN_ROUTERS]
        if lab_parts:
            folder = functions.write_lab(
                work / "functions",
                cold=sizes.cold,
                heavy=sizes.heavy,
                rest_cold=sizes.peer_cold,
                series=sizes.series_functions,
            )
            with echo_server(work) as echo, router(folder, work) as r:
                results["machine"]["environment_limits"] = limits_mode(r.log)
                lab = Lab(work, sizes, r, echo, folder, dict(built.paths), dict(built.errors))
                run_lab(lab, lab_parts, results)
        if "async" in parts:
            step("async", lambda: asyncbench.run(work, sizes), results)
        if "scale" in parts:
            step("scale", lambda: scale.run(work, sizes), results)
        if "logs" in parts:
            step("logs", lambda: logs.run(work, sizes), results)
        if "pool" in parts:
            step("pool", lambda: pool.run(work, sizes), results)
        if "runtimeapi" in parts:
            step("runtimeapi", lambda: runtimeapi.run(work, sizes), results)
        if "kind" in parts:
            step("kind", lambda: kind.run(work, sizes), results)
        if "burst" in parts:
            step("burst", lambda: burst.run(work, sizes), results)
        if "processes" in parts:
            step("processes", lambda: processes.run(work, sizes, dict(built.paths)), results)
            mode = results["parts"].get("processes", {}).get("memory_limits")
            if mode and "environment_limits" not in results["machine"]:
                results["machine"]["environment_limits"] = (
                    "cgroups: memory limit, CPU quota memoryMB/1769 after init"
                    if mode == "cgroups"
                    else f"{mode}: no CPU limit"
                )
    results["machine"]["load_average_end"] = os.getloadavg()
    results["seconds"] = time.monotonic() - t_start
    json_path = args.json or args.output.with_name("results.json")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    args.output.write_text(report.render(results))
    print(f"bench: wrote {args.output} in {results['seconds']:.0f}s", file=sys.stderr)
    failed = {k: v for k, v in results["errors"].items() if not v.startswith("not measured")}
    for k, v in failed.items():
        print(f"bench: {k} failed: {v}", file=sys.stderr)
    return 1 if failed else 0


def limits_mode(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if "memory limits:" in line:
            mode = line.split("memory limits:", 1)[1].strip()
            if mode == "cgroups":
                return "cgroups: memory limit, CPU quota memoryMB/1769 after init"
            return f"{mode}: no CPU limit"
    return "unknown"


def render_only(source: Path, output: Path) -> int:
    output.write_text(report.render(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    sys.exit(render_only(args.render, args.output) if args.render else main(args))
