"""2. Warm throughput at concurrency 1, 10, 50: gRPC with ghz, the REST API with wrk.

Each run is preceded by a short warm-up at the same concurrency (so every environment it
needs is already started: cold starts are part 3) and followed by the bare echo at the
same concurrency. CPU seconds of the router, of the environments and of the load
generator are read around each run, so the table says where the two cores went.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench import stats, tools
from bench.lab import Lab
from bench.procs import cpu_seconds

HANDLERS = ("noop", "sleep5", "noop-128", "sleep5-128")


def _measured(lab: Lab, run: Callable[[], tools.Load], server_pid: int | None) -> dict[str, Any]:
    router = lab.router
    if server_pid is None:
        r0, e0 = router.cpu()
    else:
        r0, e0 = cpu_seconds(server_pid), 0.0
    load = run()
    if server_pid is None:
        r1, e1 = router.cpu()
    else:
        r1, e1 = cpu_seconds(server_pid), 0.0
    out: dict[str, Any] = asdict(load)
    out["rps"] = load.rps
    wall = load.seconds or 1.0
    out["server_cpu"] = (r1 - r0) / wall  # cores busy: 1.0 is one full core
    out["environment_cpu"] = (e1 - e0) / wall
    out["generator_cpu"] = load.generator_cpu_s / wall
    out["server_cpu_per_call_us"] = (r1 - r0) / load.ok * 1e6 if load.ok else float("nan")
    return out


def grpc(lab: Lab) -> dict[str, Any]:
    ghz = lab.tools["ghz"]
    s = lab.sizes
    out: dict[str, Any] = {"klambda": {}, "echo": {}}
    for fn in HANDLERS:
        for c in s.concurrencies:
            tools.ghz(ghz, lab.router.grpc_target, fn, c, count=max(200, 20 * c))
            out["klambda"][f"{fn}@{c}"] = _measured(
                lab,
                lambda fn=fn, c=c: tools.ghz(  # type: ignore[misc]
                    ghz, lab.router.grpc_target, fn, c, seconds=s.load_seconds
                ),
                None,
            )
    for c in s.concurrencies:
        tools.ghz(ghz, lab.echo.grpc_target, "noop", c, count=200)
        out["echo"][str(c)] = _measured(
            lab,
            lambda c=c: tools.ghz(  # type: ignore[misc]
                ghz, lab.echo.grpc_target, "noop", c, seconds=s.load_seconds
            ),
            lab.echo.proc.pid,
        )
    echo_sat = max(v["rps"] for v in out["echo"].values())
    noop_best = max(out["klambda"][f"noop@{c}"]["rps"] for c in s.concurrencies)
    out["echo_saturation_rps"] = echo_sat
    out["noop_best_rps"] = noop_best
    out["ratio_noop_vs_echo"] = stats.ratio(noop_best, echo_sat)
    return out


def rest(lab: Lab) -> dict[str, Any]:
    s = lab.sizes
    out: dict[str, Any] = {"klambda": {}, "echo": {}}
    kl_url = f"{lab.router.url}/2015-03-31/functions/noop/invocations"
    echo_url = f"{lab.echo.url}/2015-03-31/functions/noop/invocations"
    for c in s.concurrencies:
        tools.wrk(kl_url, c, 1, lab.work)
        out["klambda"][str(c)] = _measured(
            lab,
            lambda c=c: tools.wrk(kl_url, c, s.load_seconds, lab.work),  # type: ignore[misc]
            None,
        )
        out["echo"][str(c)] = _measured(
            lab,
            lambda c=c: tools.wrk(echo_url, c, s.load_seconds, lab.work),  # type: ignore[misc]
            lab.echo.proc.pid,
        )
    echo_sat = max(v["rps"] for v in out["echo"].values())
    noop_best = max(v["rps"] for v in out["klambda"].values())
    out["echo_saturation_rps"] = echo_sat
    out["noop_best_rps"] = noop_best
    out["ratio_noop_vs_echo"] = stats.ratio(noop_best, echo_sat)
    return out
