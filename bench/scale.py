"""6. Scale: N idle environments of one function, their memory and time to start.

A router of its own serves one 128 MB no-op function. The benchmark publishes version 1,
points alias `live` at it and asks for N provisioned environments through Lambda's REST
API (`PUT /2019-09-30/functions/scale/provisioned-concurrency?Qualifier=live`), then polls
until the status is READY: that time is the bring-up. Memory is read from
/proc/<pid>/smaps_rollup of every environment process (the zygote's children): PSS
shares the pages they still share with the zygote (copy-on-write after fork) fairly
among them, RSS counts them in full in every process, USS is what each owns alone.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

from klambda.testing import StopWaiting, eventually

from bench import functions
from bench.lab import Sizes
from bench.procs import Router, router


def _call(url: str, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def smaps_rollup(pid: int) -> dict[str, int]:
    """kB figures of /proc/<pid>/smaps_rollup."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0])
    return out


def _memory(pids: list[int]) -> dict[str, float]:
    rows = [smaps_rollup(p) for p in pids]
    pss = [r["Pss"] / 1024 for r in rows]
    rss = [r["Rss"] / 1024 for r in rows]
    uss = [(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / 1024 for r in rows]
    return {
        "count": len(rows),
        "pss_mb_median": statistics.median(pss),
        "pss_mb_mean": statistics.fmean(pss),
        "rss_mb_median": statistics.median(rss),
        "uss_mb_median": statistics.median(uss),
        "pss_mb_total": sum(pss),
    }


def bring_up(r: Router, count: int, timeout: float = 600) -> float:
    base = f"{r.url}/2015-03-31/functions/scale"
    version = _call(f"{base}/versions", "POST", {"Description": "bench"})["Version"]
    _call(f"{base}/aliases", "POST", {"Name": "live", "FunctionVersion": version})
    pc = f"{r.url}/2019-09-30/functions/scale/provisioned-concurrency?Qualifier=live"

    def ready() -> bool:
        status = _call(pc, "GET")
        if status["Status"] == "FAILED":
            raise StopWaiting(f"provisioned concurrency failed: {status}")
        return bool(status["Status"] == "READY")

    t0 = time.perf_counter()
    _call(pc, "PUT", {"ProvisionedConcurrentExecutions": count})
    eventually(ready, f"{count} provisioned environments READY", timeout=timeout, interval=0.02)
    return time.perf_counter() - t0


def run(work: Path, sizes: Sizes) -> dict[str, Any]:
    folder = functions.write_scale(work / "scale-fns")
    with router(folder, work) as r:
        base = _memory([r.pid])
        zygote = r.zygotes()
        seconds = bring_up(r, sizes.scale)
        # A measurement pause, not a readiness guess: the environments that just sent READY
        # finish their first steps before their memory is read.
        time.sleep(0.5)

        def all_there() -> list[int]:
            envs = r.environments()
            if len(envs) < sizes.scale:
                raise RuntimeError(f"{len(envs)} found so far")
            return envs

        envs = eventually(all_there, f"{sizes.scale} environment processes", timeout=10)
        return {
            "environments": sizes.scale,
            "memory_mb": functions.SMALL_MB,
            "bring_up_s": seconds,
            "per_environment_ms": seconds / sizes.scale * 1000,
            "environment_memory": _memory(envs),
            "zygote_memory": _memory(zygote),
            "router_memory_before": base,
            "router_memory_after": _memory([r.pid]),
        }
