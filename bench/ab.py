"""Two runtimes side by side: is a change to the hot path faster, measured in one run?

    python -m bench.ab OTHER_RUNTIME [--seconds 5] [--rounds 3]
    python -m bench.ab OTHER_RUNTIME --cold-only [--cold 20] [--no-cgroups]

OTHER_RUNTIME is a folder holding another `klambda` package (e.g. a copy of `runtime/`
with a change applied). Router A runs this checkout's runtime, router B the other one
(through PYTHONPATH, which wins over the editable install); the two take turns, round
after round, at the same measurements: warm latency at concurrency 1 (grpc.aio client),
throughput at concurrency 50 (ghz), cold starts. Prints a Markdown table; writes nothing.
`--cold-only` measures cold starts alone (no ghz needed), each of A's paired with one of
B's; `--no-cgroups` starts both routers without a cgroup per environment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import clients, coldstart, functions, load, stats, tools
from bench.lab import Lab, Sizes
from bench.procs import Router, echo_server, router


async def latency(r: Router, n: int) -> list[float]:
    client = clients.GrpcInvoker(r.grpc_target)
    try:
        await client.timed("noop", 50)
        return await client.timed("noop", n)
    finally:
        await client.close()


async def cold(r: Router, names: list[str]) -> list[float]:
    client = clients.GrpcInvoker(r.grpc_target)
    try:
        await client.invoke("noop")
        return [(await coldstart.cold_invoke(client, name))[0] for name in names]
    finally:
        await client.close()


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    p.add_argument("other", type=Path, help="folder holding the other `klambda` package")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--cold", type=int, default=10, help="cold starts per side and round")
    p.add_argument("--cold-only", action="store_true", help="cold starts alone, no ghz")
    p.add_argument("--no-cgroups", action="store_true", help="routers without cgroups")
    args = p.parse_args()
    if not (args.other / "klambda" / "__init__.py").exists():
        p.error(f"{args.other} holds no klambda package")
    router_args = ["--no-cgroups"] if args.no_cgroups else []
    if args.cold_only:
        print(cold_only(args.other, args.cold * args.rounds, router_args))
        return 0
    built = tools.build(["ghz"])
    if "ghz" not in built.paths:
        p.error(f"ghz: {built.errors.get('ghz')}")
    sizes = Sizes(load_seconds=args.seconds, concurrencies=(50,))
    acc: dict[str, dict[str, list[float]]] = {
        side: {"lat": [], "rps": [], "cpu": [], "cold": []} for side in "AB"
    }
    with tempfile.TemporaryDirectory(prefix="klambda-ab-") as tmp:
        work = Path(tmp)
        n_cold = args.cold * args.rounds
        folder = functions.write_lab(
            work / "functions", cold=n_cold, heavy=0, rest_cold=0, series=0
        )
        env_b = {"PYTHONPATH": str(args.other.resolve())}
        with (
            echo_server(work) as echo,
            router(folder, work, *router_args) as ra,
            router(folder, work, *router_args, env=env_b) as rb,
        ):
            names = functions.cold_names("cold", n_cold)
            for rnd in range(args.rounds):
                for side, r in (("A", ra), ("B", rb)):
                    a = acc[side]
                    lab = Lab(work, sizes, r, echo, folder, dict(built.paths))
                    a["lat"] += asyncio.run(latency(r, args.calls))
                    chunk = names[rnd * args.cold : (rnd + 1) * args.cold]
                    a["cold"] += asyncio.run(cold(r, chunk))
                    tools.ghz(built.paths["ghz"], r.grpc_target, "noop", 50, count=1000)
                    row = load._measured(
                        lab,
                        lambda r=r: tools.ghz(  # type: ignore[misc]
                            built.paths["ghz"], r.grpc_target, "noop", 50, seconds=args.seconds
                        ),
                        None,
                    )
                    a["rps"].append(row["rps"])
                    a["cpu"].append(row["server_cpu_per_call_us"])
                    print(f"round {rnd + 1} {side}: {row['rps']:.0f} calls/s", file=sys.stderr)
    print(table(acc, args.other))
    return 0


def cold_only(other: Path, n: int, router_args: list[str]) -> str:
    """`n` cold starts on each router, taking turns one by one."""
    with tempfile.TemporaryDirectory(prefix="klambda-ab-") as tmp:
        work = Path(tmp)
        folder = functions.write_lab(work / "functions", cold=n, heavy=0, rest_cold=0, series=0)
        env_b = {"PYTHONPATH": str(other.resolve())}
        with (
            router(folder, work, *router_args) as ra,
            router(folder, work, *router_args, env=env_b) as rb,
        ):
            a, b = asyncio.run(_cold_pairs(ra, rb, functions.cold_names("cold", n)))
    rows = [
        (f"cold start p{q} ms", stats.percentile(a, q) * 1000, stats.percentile(b, q) * 1000)
        for q in (50, 90)
    ]
    out = [f"| {n} cold starts each | A: this checkout | B: {other} | B / A |"]
    out.append("| --- | --- | --- | --- |")
    for label, x, y in rows:
        out.append(f"| {label} | {stats.fmt(x, 3)} | {stats.fmt(y, 3)} | {stats.ratio(y, x):.2f} |")
    return "\n".join(out)


async def _cold_pairs(ra: Router, rb: Router, names: list[str]) -> tuple[list[float], list[float]]:
    ca, cb = clients.GrpcInvoker(ra.grpc_target), clients.GrpcInvoker(rb.grpc_target)
    try:
        await ca.invoke("noop")
        await cb.invoke("noop")
        a: list[float] = []
        b: list[float] = []
        for i, name in enumerate(names):  # who goes first alternates
            first, second = ((ca, a), (cb, b)) if i % 2 == 0 else ((cb, b), (ca, a))
            coldstart.timed_process(coldstart.BARE)  # spaced as in the `cold` part
            for client, out in (first, second):
                out.append((await coldstart.cold_invoke(client, name))[0])
        return a, b
    finally:
        await ca.close()
        await cb.close()


def table(acc: dict[str, dict[str, list[float]]], other: Path) -> str:
    def med(xs: list[float]) -> float:
        return stats.percentile(xs, 50)

    rows: list[tuple[str, Any, Any]] = [
        ("warm p50 ms (c=1)", med(acc["A"]["lat"]) * 1000, med(acc["B"]["lat"]) * 1000),
        (
            "warm p99 ms (c=1)",
            stats.percentile(acc["A"]["lat"], 99) * 1000,
            stats.percentile(acc["B"]["lat"], 99) * 1000,
        ),
        ("calls/s (ghz c=50, median of rounds)", med(acc["A"]["rps"]), med(acc["B"]["rps"])),
        ("router CPU µs per call (c=50)", med(acc["A"]["cpu"]), med(acc["B"]["cpu"])),
        ("cold start p50 ms", med(acc["A"]["cold"]) * 1000, med(acc["B"]["cold"]) * 1000),
    ]
    out = [f"| | A: this checkout | B: {other} | B / A |", "| --- | --- | --- | --- |"]
    for label, a, b in rows:
        out.append(f"| {label} | {stats.fmt(a, 3)} | {stats.fmt(b, 3)} | {stats.ratio(b, a):.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
