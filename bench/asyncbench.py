"""4. Async: the enqueue (202) rate and latency, and the end-to-end rate and latency
through the dispatcher, on both queue backends.

Each backend gets a router of its own, started as shipped: SQLite is the default queue
URL, a file in the router's state folder, `synchronous=FULL` (a 202 is answered after
the WAL is fsynced); JetStream is a real `nats-server -js` started here (file storage,
one replica) and `KLAMBDA_QUEUE_URL=nats://...`, publishes acknowledged by the stream.

- **Accept rate** (wrk, one thread, `X-Amz-Invocation-Type: Event`, only 202s counted
  as accepted, anything else is an error) at a few connection counts, each followed by
  the synchronous no-op REST invoke at the same count on the same router, the reference.
  While it runs the dispatcher is held: all its workers are busy in a function
  that waits for a file, so it leases nothing and the figure is the accept path alone.
  The events go to a function with reserved concurrency 0, so they are kept and would
  never run anyway. The accept rate *with* the dispatcher draining beside it is the
  burst below.
- **Accept rate with every core**: the same event runs against `klambda up --processes
  N` (N = the cores, at least 2) on a queue of its own: every router process accepts
  events into the one queue (the same SQLite file, the same stream); the leader's
  dispatcher is held the same way.
- **End to end**: wrk submits events for a few seconds to a no-op function that appends
  (submit time from the payload, its own start time) to a file, until every event the
  router received has run; the figure is their number over the time from the first
  submit to the last handler start, with each event's submit → handler start
  latency (under a burst: its wait in the backlog included). The same latency for
  events sent one at a time from a Python client, with the dispatcher idle, is the
  path's own delay: 202, wake the receiver, lease, invoke.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klambda.settings import RouterSettings
from klambda.testing import eventually

from bench import clients, functions, stats, tools
from bench.lab import Sizes
from bench.processes import cpu as all_cpu
from bench.processes import router_pids
from bench.procs import Router, cpu_seconds, router
from tests.integration.queue.natsserver import nats_server

BACKENDS = ("sqlite", "jetstream")
SINK = "async-sink"  # reserved concurrency 0: accepted events are kept, never run
RECORD = "async-record"  # no-op that records (submit time, start time)
HOLD = "async-hold"  # waits for a file: holds the dispatcher's workers
INVOKE = "/2015-03-31/functions/{}/invocations"

_SUMMARY = """\
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
done = function(summary, latency, requests)
  local accepted = 0
  for _, t in ipairs(threads) do accepted = accepted + t:get("accepted") end
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\":%d,\\"accepted\\":%d,\\"duration_us\\":%d," ..
    "\\"socket_errors\\":%d,\\"non2xx\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}\\n",
    summary.requests, accepted, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""

ACCEPT_SCRIPT = (
    """\
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Amz-Invocation-Type"] = "Event"
accepted = 0
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 end
end
"""
    + _SUMMARY
)

# Each request carries its submit time (CLOCK_REALTIME, µs, as the handler's time.time()).
BURST_SCRIPT = (
    """\
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } klambda_timeval;
int gettimeofday(klambda_timeval *tv, void *tz);
]]
local tv = ffi.new("klambda_timeval")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Amz-Invocation-Type"] = "Event"
accepted = 0
function request()
  ffi.C.gettimeofday(tv, nil)
  local t = tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
  return wrk.format(nil, nil, nil, string.format('{"t":%.0f}', t))
end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 end
end
"""
    + _SUMMARY
)

RECORD_SOURCE = """\
import os
import time

_OUT = os.open({path!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def handler(event, context):
    now = time.time_ns() // 1000
    os.write(_OUT, f"{{event['t']}} {{now}}\\n".encode())
"""

HOLD_SOURCE = """\
import os
import time


def handler(event, context):
    open(os.path.join({held!r}, context.aws_request_id), "w").close()
    while not os.path.exists({release!r}):
        time.sleep(0.05)
"""


@dataclass
class Files:
    """What one backend's router serves and where its handlers write."""

    root: Path
    records: Path = field(init=False)
    held: Path = field(init=False)
    release: Path = field(init=False)

    def __post_init__(self) -> None:
        self.records = self.root / "records.txt"
        self.held = self.root / "held"
        self.release = self.root / "release"


def write_functions(files: Files) -> Path:
    files.held.mkdir(parents=True, exist_ok=True)
    sink = functions.function(SINK, functions.NOOP, functions.FULL_VCPU_MB)
    record = functions.function(
        RECORD, RECORD_SOURCE.format(path=str(files.records)), functions.FULL_VCPU_MB
    )
    hold = functions.function(
        HOLD,
        HOLD_SOURCE.format(held=str(files.held), release=str(files.release)),
        functions.SMALL_MB,
        timeout_s=600,
    )
    for doc in (sink, record, hold):
        doc["spec"]["retryAttempts"] = 0  # type: ignore[index]
    sink["spec"]["reservedConcurrency"] = 0  # type: ignore[index]
    docs = [functions.function("noop", functions.NOOP, functions.FULL_VCPU_MB), sink, record, hold]
    return functions.write_manifests(files.root / "functions", docs)


@dataclass
class Backend:
    name: str
    env: dict[str, str]
    durability: str
    server_pid: int | None = None  # nats-server, when there is one


@contextlib.contextmanager
def backend(name: str, folder: Path) -> Iterator[Backend]:
    if name == "sqlite":
        yield Backend(
            name,
            {},
            "the router's default queue: sqlite:///<state>/queue.db, WAL, synchronous=FULL "
            "(202 after the WAL is fsynced), on " + filesystem(folder),
        )
        return
    with nats_server(folder) as nats:
        yield Backend(
            name,
            {"KLAMBDA_QUEUE_URL": nats.url},
            "nats-server -js (file storage, 1 replica, the server's own periodic sync; "
            "202 after the stream acknowledged the publish), on " + filesystem(folder),
            nats.proc.pid,
        )


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (fsync is free on a tmpfs)."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        inside = str(path) == parts[1] or str(path).startswith(parts[1].rstrip("/") + "/")
        if len(parts) > 2 and inside and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return f"{kind} ({best})"


def counter(router_: Router, name: str, function: str) -> float:
    """One counter of the router's /metrics, summed over the series of `function`."""
    http = clients.HttpInvoker(router_.http_port)
    try:
        _, text = http.get("/metrics")
    finally:
        http.close()
    total = 0.0
    pattern = re.compile(rf'^{name}\{{[^}}]*function="{re.escape(function)}"[^}}]*\}} (\S+)$')
    for line in text.decode().splitlines():
        m = pattern.match(line)
        if m:
            total += float(m.group(1))
    return total


def read_records(path: Path, offset: int = 0) -> list[tuple[int, int]]:
    """(submit µs, handler start µs) of each event recorded after byte `offset`."""
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    lines = data[: data.rfind(b"\n") + 1].splitlines()  # a line being written is left out
    return [(int(a), int(b)) for a, b in (line.split() for line in lines)]


def wait_records(path: Path, offset: int, want: int, timeout: float) -> list[tuple[int, int]]:
    def enough() -> list[tuple[int, int]]:
        recs = read_records(path, offset)
        if len(recs) < want:
            raise RuntimeError(f"{len(recs)} of {want} ran so far")
        return recs

    return eventually(enough, f"{want} accepted events to run", timeout=timeout)


def latencies(recs: list[tuple[int, int]]) -> dict[str, float]:
    return stats.summary_ms([(start - sub) / 1e6 for sub, start in recs])


def paced(r: Router, files: Files, n: int, workers: int) -> dict[str, Any]:
    """n events one at a time from a Python client, 2 ms apart: the dispatcher is idle."""
    http = clients.HttpInvoker(r.http_port)
    accept = []
    try:
        for _ in range(2 * workers):  # environments started before anything is timed
            http.event(RECORD, b'{"t": 0}')
        wait_records(files.records, 0, 2 * workers, 30)
        offset = files.records.stat().st_size
        for _ in range(n):
            body = json.dumps({"t": time.time_ns() // 1000}).encode()
            accept.append(http.event(RECORD, body))
            time.sleep(0.002)
    finally:
        http.close()
    recs = wait_records(files.records, offset, n, 30)
    return {"events": n, "accept": stats.summary_ms(accept), "submit_to_start": latencies(recs)}


def burst(s: Sizes, r: Router, be: Backend, files: Files) -> dict[str, Any]:
    """Events as fast as wrk sends them for a few seconds, the dispatcher draining them
    meanwhile; then until the last one has run."""
    script = files.root / "burst.lua"
    script.write_text(BURST_SCRIPT)
    offset = files.records.stat().st_size if files.records.exists() else 0
    received0 = counter(r, "klambda_async_events_received_total", RECORD)
    cpu0 = cpu_seconds(r.pid), sum(cpu_seconds(e) for e in r.environments())
    srv0 = cpu_seconds(be.server_pid) if be.server_pid else 0.0
    t0 = time.monotonic()
    url = r.url + INVOKE.format(RECORD)
    d, gen_cpu = tools.wrk_json(script, url, s.async_burst_c, s.async_burst_seconds)
    submitted = time.monotonic() - t0
    # A few requests were in flight when wrk stopped: the router's count is the truth.
    recs = wait_records(files.records, offset, d["accepted"], 120)
    received = counter(r, "klambda_async_events_received_total", RECORD) - received0
    recs = wait_records(files.records, offset, int(received), 30)
    wall = time.monotonic() - t0
    cpu1 = cpu_seconds(r.pid), sum(cpu_seconds(e) for e in r.environments())
    srv1 = cpu_seconds(be.server_pid) if be.server_pid else 0.0
    first_submit = min(sub for sub, _ in recs)
    last_submit = max(sub for sub, _ in recs)
    last_start = max(start for _, start in recs)
    e2e_s = (last_start - first_submit) / 1e6
    after = sum(1 for _, start in recs if start > last_submit)
    drain_s = (last_start - last_submit) / 1e6
    return {
        "events": len(recs),
        "received": received,
        "concurrency": s.async_burst_c,
        "accept_rps": d["accepted"] / (d["duration_us"] / 1e6),
        "accept_p50_ms": d["p50_us"] / 1000,
        "accept_p99_ms": d["p99_us"] / 1000,
        "errors": d["requests"] - d["accepted"] + d["socket_errors"],
        "submit_s": (last_submit - first_submit) / 1e6,
        "end_to_end_s": e2e_s,
        "end_to_end_rps": len(recs) / e2e_s if e2e_s > 0 else float("nan"),
        "drain_after_last_submit_s": drain_s,
        # the dispatcher alone, once wrk had stopped: events started after the last submit
        # (None when the dispatcher kept up and the tail is too short to time)
        "drain_rps": after / drain_s if after >= len(recs) / 10 and drain_s > 0 else None,
        "submit_to_start": latencies(recs),
        "router_cpu_per_event_us": (cpu1[0] - cpu0[0]) / len(recs) * 1e6,
        "environment_cpu_per_event_us": (cpu1[1] - cpu0[1]) / len(recs) * 1e6,
        "server_cpu_per_event_us": (srv1 - srv0) / len(recs) * 1e6 if be.server_pid else None,
        "generator_cpu": gen_cpu / submitted,
        "wall_s": wall,
    }


def hold_dispatcher(r: Router, files: Files, workers: int) -> None:
    """Occupy every dispatcher worker with an invocation that waits for `files.release`."""
    http = clients.HttpInvoker(r.http_port)
    try:
        for _ in range(workers):
            http.event(HOLD)
    finally:
        http.close()
    eventually(
        lambda: len(list(files.held.iterdir())) >= workers,
        f"the dispatcher to start {workers} {HOLD} invocations",
        interval=0.02,
    )


def measured(
    r: Router, be: Backend, run: Any, cpu: Callable[[], tuple[float, float]] | None = None
) -> dict[str, Any]:
    """`cpu`: (routers, environments) CPU seconds so far; the router process's by default."""
    cpu = cpu or r.cpu
    r0, e0 = cpu()
    n0 = cpu_seconds(be.server_pid) if be.server_pid else 0.0
    load, extra = run()
    r1, e1 = cpu()
    n1 = cpu_seconds(be.server_pid) if be.server_pid else 0.0
    wall = load["seconds"] or 1.0
    return {
        **load,
        **extra,
        "rps": load["ok"] / wall,
        "router_cpu": (r1 - r0) / wall,
        "environment_cpu": (e1 - e0) / wall,
        "server_cpu": (n1 - n0) / wall if be.server_pid else None,
        "generator_cpu": load["generator_cpu_s"] / wall,
        "router_cpu_per_call_us": (r1 - r0) / load["ok"] * 1e6 if load["ok"] else float("nan"),
    }


def event_run(s: Sizes, r: Router, files: Files, c: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """wrk sending events to the sink at `c` connections; only 202s count."""
    script = files.root / "accept.lua"
    script.write_text(ACCEPT_SCRIPT)
    d, cpu = tools.wrk_json(script, r.url + INVOKE.format(SINK), c, s.async_seconds)
    load = {
        "ok": d["accepted"],
        "errors": d["requests"] - d["accepted"] + d["socket_errors"],
        "seconds": d["duration_us"] / 1e6,
        "p50_ms": d["p50_us"] / 1000,
        "p99_ms": d["p99_us"] / 1000,
        "generator_cpu_s": cpu,
    }
    return load, {}


def accept(s: Sizes, r: Router, be: Backend, files: Files) -> dict[str, Any]:
    noop_url = r.url + INVOKE.format("noop")

    def sync_run(c: int) -> tuple[dict[str, Any], dict[str, Any]]:
        load = tools.wrk(noop_url, c, s.async_sync_seconds, files.root)
        return {k: getattr(load, k) for k in load.__dataclass_fields__}, {}

    tools.wrk(noop_url, max(s.async_concurrencies), 1, files.root)  # environments started
    received0 = counter(r, "klambda_async_events_received_total", SINK)
    out: dict[str, Any] = {"event": {}, "sync": {}}
    for c in s.async_concurrencies:
        out["event"][str(c)] = measured(r, be, lambda c=c: event_run(s, r, files, c))
        out["sync"][str(c)] = measured(r, be, lambda c=c: sync_run(c))
    out["accepted"] = sum(v["ok"] for v in out["event"].values())
    out["received"] = counter(r, "klambda_async_events_received_total", SINK) - received0
    out["invoked"] = counter(r, "klambda_invocations_total", SINK)
    return out


def one_backend(work: Path, s: Sizes, name: str) -> dict[str, Any]:
    files = Files(work / f"async-{name}")
    folder = write_functions(files)
    workers = RouterSettings.from_env().async_workers
    # the sink records each event in a file of the run's, out of a sandboxed handler's reach
    unsandboxed = {"KLAMBDA_SANDBOX": "0"}
    with (
        backend(name, files.root) as be,
        router(folder, files.root, env={**be.env, **unsandboxed}) as r,
    ):
        try:
            out: dict[str, Any] = {"durability": be.durability, "workers": workers}
            out["paced"] = paced(r, files, s.async_paced, workers)
            out["burst"] = burst(s, r, be, files)
            hold_dispatcher(r, files, workers)
            out["accept"] = accept(s, r, be, files)
        finally:
            files.release.touch()
            time.sleep(0.2)  # the held invocations return before the router stops
    return out


def processes_accept(work: Path, s: Sizes, name: str, processes: int) -> dict[str, Any]:
    """The accept rate of `klambda up --processes N` (every process accepts events into
    the one queue; the leader's dispatcher, held as above, runs them)."""
    files = Files(work / f"async-{name}-processes")
    folder = write_functions(files)
    workers = RouterSettings.from_env().async_workers
    with (
        backend(name, files.root) as be,
        router(
            folder,
            files.root,
            "--processes",
            str(processes),
            env={**be.env, "KLAMBDA_SANDBOX": "0"},
            startup_timeout=60,
        ) as r,
    ):
        eventually(
            lambda: len(router_pids(r)) == processes, f"{processes} router processes", timeout=60
        )
        try:
            hold_dispatcher(r, files, workers)
            event_run(s, r, files, max(s.async_concurrencies))  # warm: every process's path
            out: dict[str, Any] = {"processes": processes, "event": {}}
            for c in s.async_concurrencies:
                out["event"][str(c)] = measured(
                    r, be, lambda c=c: event_run(s, r, files, c), cpu=lambda: all_cpu(r)
                )
        finally:
            files.release.touch()
            time.sleep(0.2)
    return out


def summarize(out: dict[str, Any]) -> None:
    """Best accept rate per backend, beside the sync no-op at the same concurrency."""
    for p in out.get("processes", {}).values():
        ev = p["event"]
        p["best_c"] = max(ev, key=lambda c: ev[c]["rps"])
        p["best_rps"] = ev[p["best_c"]]["rps"]
    for b in out["backends"].values():
        ev, sy = b["accept"]["event"], b["accept"]["sync"]
        best = max(ev, key=lambda c: ev[c]["rps"])
        b["best_c"] = best
        b["best_rps"] = ev[best]["rps"]
        b["ratio_best_vs_sync"] = stats.ratio(ev[best]["rps"], sy[best]["rps"])
        # The p99 target is judged where the rate target is: at the smallest concurrency
        # that accepted >= 5,000 events/s, else at the best one.
        at = next((c for c in ev if ev[c]["rps"] >= TARGET_RPS), best)
        b["p99_judged_at_c"] = at
        b["p99_judged_ms"] = ev[at]["p99_ms"]


TARGET_RPS = 5000.0
TARGET_P99_MS = 5.0


def run(work: Path, s: Sizes) -> dict[str, Any]:
    processes = max(2, os.cpu_count() or 1)
    out: dict[str, Any] = {
        "backends": {name: one_backend(work, s, name) for name in BACKENDS},
        "processes": {name: processes_accept(work, s, name, processes) for name in BACKENDS},
        "target_rps": TARGET_RPS,
        "target_p99_ms": TARGET_P99_MS,
        "cpu_count": os.cpu_count(),
    }
    summarize(out)
    return out
