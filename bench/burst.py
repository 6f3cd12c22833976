"""11. Burst: N new environments of one function at once, and what each costs idle.

Lambda's scaling rule: each function may gain up to 1,000 environments every 10 seconds;
requests beyond that are throttled (`FunctionInvocationRateLimitExceeded`), and all
functions together stay within the account's concurrency (1,000 by default). The part
starts a router of its own serving one 128 MB function whose handler holds every call
until a moment shared by all of them (`until` in the event, a wall-clock time some
seconds after the burst is sent), so no call can reuse another call's environment: N
calls at once need N environments, each a cold start.

The N calls go out together over one gRPC channel (HTTP/2 streams). Each handler answers
with its pid and the time it started, which is after its environment was forked and
initialised: the latest start, less the moment the first call was sent, is the time
until N environments existed. Throttled calls are counted by Lambda's reason.

Once every call has answered, the environments are idle. Their memory comes from
/proc/<pid>/smaps_rollup: PSS shares each page among the processes that map it (the
pages still shared with the zygote after fork count once in the sum), so the sum of
PSS over the environments divided by their count is what one idle environment costs.
Where the private pages of a few environments live (the heap, anonymous mappings, the
stack, libraries) comes from /proc/<pid>/smaps, to say what grows them.

Then the same memory once the kernel has merged the environments' identical pages: the
zygote marks them mergeable, and as root, where ksmd is off (the host's default), the part
turns it on until merging settles and reads the memory again (bench/ksm.py). The goal is
judged on the first figure, what a host has without ksmd; the merged one is beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from klambda.proto import invoker_pb2, invoker_pb2_grpc

from bench import functions, ksm, stats
from bench.lab import Sizes
from bench.procs import Router, cpu_seconds, router
from bench.scale import smaps_rollup

# the handler holds its call until `until` (time.time()), then reports itself
HOLD = (
    "import os\nimport time\n\n\n"
    "def handler(event, context):\n"
    "    start = time.time()\n"
    "    time.sleep(max(0.0, event['until'] - start))\n"
    "    return {'pid': os.getpid(), 'start': start}\n"
)
# Lambda's window: this many new environments of one function within 10 s
GOAL_ENVIRONMENTS = 1000
GOAL_SECONDS = 10.0
GOAL_PSS_MB = 2.0
SAMPLED_SMAPS = 20  # environments whose mappings are read one by one


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """The router's environments and open fds, every `interval` seconds, with their peaks."""

    def __init__(self, r: Router, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.r = r
        self.interval = interval
        self.stop = threading.Event()
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, environments, fds)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(
                (time.monotonic(), len(self.r.environments()), open_fds(self.r.pid))
            )
            self.stop.wait(self.interval)


async def _burst(target: str, name: str, count: int, hold_s: float) -> dict[str, Any]:
    channel = grpc.aio.insecure_channel(target)
    stub = invoker_pb2_grpc.InvokerStub(channel)  # type: ignore[no-untyped-call]
    starts: list[float] = []
    pids: set[int] = set()
    throttled: Counter[str] = Counter()
    failed: Counter[str] = Counter()

    async def one(until: float) -> None:
        req = invoker_pb2.InvokeRequest(
            function_name=name, payload=json.dumps({"until": until}).encode()
        )
        try:
            res = await stub.Invoke(req, timeout=hold_s + 120)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                meta = dict(err.trailing_metadata() or ())
                throttled[str(meta.get("reason", "unknown"))] += 1
            else:
                failed[f"{err.code().name}: {err.details()}"[:200]] += 1
            return
        if res.status_code != 200 or res.function_error:
            failed[f"{res.status_code} {res.payload[:200]!r}"] += 1
            return
        body = json.loads(res.payload)
        starts.append(body["start"])
        pids.add(int(body["pid"]))

    try:
        await stub.Invoke(  # the channel connected before the clock starts
            invoker_pb2.InvokeRequest(function_name="warmup", payload=b"{}"), timeout=30
        )
        sent = time.time()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(sent + hold_s) for _ in range(count)))
        wall = time.perf_counter() - t0
    finally:
        await channel.close()
    ordered = sorted(s - sent for s in starts)
    return {
        "sent_epoch": sent,
        "answered": len(starts),
        "distinct_environments": len(pids),
        "pids": sorted(pids),
        "throttled": dict(throttled),
        "failed": dict(failed),
        "all_started_s": ordered[-1] if ordered else float("nan"),
        "started_by_s": {
            str(t): sum(1 for x in ordered if x <= t) for t in (1, 2, 5, 10) if t < hold_s
        },
        "start_p50_s": stats.percentile(ordered, 50),
        "start_p99_s": stats.percentile(ordered, 99),
        "wall_s": wall,
    }


def _kind(path: str) -> str:
    if path == "[heap]":
        return "heap"
    if path == "[stack]":
        return "stack"
    if not path or path.startswith("[anon"):
        return "anonymous (obmalloc arenas, mmap'd blocks)"
    if path.startswith("["):
        return "other"
    name = os.path.basename(path)
    if name.startswith("python") or name.startswith("libpython"):
        return "the interpreter's binary"
    if ".so" in name:
        return "shared libraries"
    return "files"


def private_by_mapping(pid: int) -> dict[str, float]:
    """kB private (dirty + clean) of `pid`, by the kind of mapping holding it."""
    out: Counter[str] = Counter()
    kind = "other"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            kind = _kind(head[5].strip() if len(head) > 5 else "")
        elif line.startswith(("Private_Dirty:", "Private_Clean:")):
            out[kind] += int(line.split()[1])
    return dict(out)


def memory(pids: list[int]) -> dict[str, Any]:
    rows = []
    for pid in pids:
        with contextlib.suppress(OSError):
            rows.append(smaps_rollup(pid))
    if not rows:
        return {"count": 0}
    pss = [r["Pss"] / 1024 for r in rows]
    uss = [(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / 1024 for r in rows]
    return {
        "count": len(rows),
        "pss_mb_total": sum(pss),
        "pss_mb_per_environment": sum(pss) / len(rows),
        "pss_mb_median": statistics.median(pss),
        "uss_mb_median": statistics.median(uss),
        "rss_mb_median": statistics.median(r["Rss"] / 1024 for r in rows),
        "shared_mb_median": statistics.median(
            (r.get("Shared_Clean", 0) + r.get("Shared_Dirty", 0)) / 1024 for r in rows
        ),
    }


def mapping_means(pids: list[int]) -> dict[str, float]:
    """Mean private kB of `pids` by the kind of mapping, largest first."""
    by_mapping: Counter[str] = Counter()
    for pid in pids:
        with contextlib.suppress(OSError):
            by_mapping.update(private_by_mapping(pid))
    return {k: v / max(1, len(pids)) for k, v in by_mapping.most_common()}


def merged(
    envs: list[int], zygotes: list[int], sample: list[int], timeout: float
) -> dict[str, Any]:
    """The idle environments' memory once ksmd has merged what it can, or why not."""
    why = ksm.unavailable() or (None if envs else "no idle environments to read")
    if why is None and not ksm.marked(envs[0]):
        why = "the environments are not marked mergeable (KLAMBDA_MEMORY_MERGE=0, or Linux < 6.4)"
    if why is not None:
        return {"skipped": why}
    out = ksm.merge([*envs, *zygotes], timeout)
    out["environment_memory"] = memory(envs)
    out["zygote_memory"] = memory(zygotes)
    out["private_kb_by_mapping_mean"] = mapping_means(sample)
    out["goal_met_pss"] = out["environment_memory"].get("pss_mb_per_environment", 99.0) <= (
        GOAL_PSS_MB
    )
    return out


def run(work: Path, sizes: Sizes) -> dict[str, Any]:
    count = sizes.burst
    folder = functions.write_manifests(
        work / "burst-fns",
        [
            functions.function("burst", HOLD, functions.SMALL_MB, timeout_s=900),
            functions.function("warmup", functions.NOOP, functions.SMALL_MB),
        ],
    )
    ksm_run = ksm.run_state()  # "0" (or None): the first readings are unmerged
    with router(folder, work) as r:
        before = {"fds": open_fds(r.pid), "router": memory([r.pid])}
        zygotes = r.zygotes()
        cpu0 = cpu_seconds(r.pid), sum(cpu_seconds(z) for z in zygotes)
        sampler = Sampler(r)
        sampler.start()
        try:
            burst = asyncio.run(_burst(r.grpc_target, "burst", count, sizes.burst_hold_s))
        finally:
            sampler.stop.set()
            sampler.join()
        # the held calls cost nothing while they wait: this is the starts' CPU (and the
        # answers'), spread over the environments
        cpu1 = cpu_seconds(r.pid), sum(cpu_seconds(z) for z in zygotes)
        started = max(1, burst["distinct_environments"])
        cpu_ms = {
            "router": (cpu1[0] - cpu0[0]) / started * 1000,
            "zygote": (cpu1[1] - cpu0[1]) / started * 1000,
        }
        # A measurement pause, not a readiness guess: the environments that just answered
        # go back to waiting on their sockets before their memory is read.
        time.sleep(1.0)
        live = set(r.environments())
        envs = [p for p in burst.pop("pids") if p in live]
        sample = envs[:: max(1, len(envs) // SAMPLED_SMAPS)][:SAMPLED_SMAPS]
        out: dict[str, Any] = {
            "environments": count,
            "memory_mb": functions.SMALL_MB,
            "ksm_run": ksm_run,
            "hold_s": sizes.burst_hold_s,
            **burst,
            "cpu_ms_per_environment": cpu_ms,
            "peak_environments": max((s[1] for s in sampler.samples), default=0),
            "peak_router_fds": max((s[2] for s in sampler.samples), default=0),
            "router_fds_before": before["fds"],
            "router_fds_idle": open_fds(r.pid),
            "environment_memory": memory(envs),
            "private_kb_by_mapping_mean": mapping_means(sample),
            "zygote_memory": memory(zygotes),
            "router_memory_before": before["router"],
            "router_memory_idle": memory([r.pid]),
        }
        # last: merging changes what every reading above would be
        out["merged"] = merged(envs, zygotes, sample, sizes.burst_merge_timeout_s)
        out["goal_met_time"] = (
            out["distinct_environments"] >= min(count, GOAL_ENVIRONMENTS)
            and out["all_started_s"] <= GOAL_SECONDS
        )
        out["goal_met_pss"] = out["environment_memory"].get("pss_mb_per_environment", 99.0) <= (
            GOAL_PSS_MB
        )
        return out
