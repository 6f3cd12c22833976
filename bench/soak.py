"""`make soak`: a long run of mixed load against local mode, bounded, and its summary.

    python -m bench.soak                                 30 minutes of load (SOAK_MINUTES)
    python -m bench.soak --minutes 1 --interval 10 --output /tmp/SOAK.md   a short run

A router of its own (`klambda up`, cgroups on, `--keep-warm` short so the idle check
below does not wait ten minutes) serves five functions: a no-op, one that raises, one
that outlives its 1 s timeout, and a no-op and a raiser invoked asynchronously (the
raiser's events are retried, then dropped at their maximum age of 60 s). wrk sends the
mix over Lambda's REST API: per 1,000 calls, 700 sync no-ops, 50 sync errors, 200 async
no-ops and 49 async errors; its Lua script tells the replies apart (200, 200 with
`X-Amz-Function-Error`, 202, 429). The timeouts, one per 1,000 calls, come from a client
of their own at that pace: wrk corrects its latencies for coordinated omission (a 1 s
reply on one connection adds the replies that connection would have had meanwhile, ~100
samples near 1 s), so a timeout sent by wrk would set the p99 of the whole mix alone.

1. Baseline: each function is invoked once, the router is left until only the zygote's
   spare environment remains, and its memory and open fds are read.
2. Saturation: wrk sends the mix as fast as its connections allow for 10 s.
3. Load: the mix at 70 % of that rate (wrk's `delay()` spaces the requests of its
   thread on a clock), in intervals of `--interval` seconds until `--minutes` have
   passed. In the middle of each interval: the router's RSS and PSS
   (/proc/PID/smaps_rollup), its open fds (/proc/PID/fd), the environments (the zygote's
   children); over it, the router's CPU and the p50/p99 and replies by kind.
4. Idle: the load stops; the router is sampled until the environments are back to the
   spare (or `--keep-warm` x 2 + 120 s have passed), then the leak check.

The summary (bench/soakstats.py, pure): least-squares slopes of RSS and fds per hour over
the load samples after the first interval (the first one starts the environments and
fills caches; fds counted besides the two each environment holds), a growth verdict, and
the leak check. It goes to bench/SOAK.md (and
bench/soak.json), which bench/RESULTS.md links and `make bench` leaves alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import functions, machine, soakstats, stats, tools
from bench.burst import open_fds
from bench.procs import ROOT, Router, cpu_seconds, router
from bench.scale import smaps_rollup
from bench.stats import fmt

# per 1,000 calls: (kind, function, invocation type)
MIX = (
    ("sync ok", "soak-ok", "RequestResponse", 700),
    ("sync error", "soak-error", "RequestResponse", 50),
    ("async ok", "soak-async", "Event", 200),
    ("async error", "soak-async-error", "Event", 49),
)
RAISE = "def handler(event, context):\n    raise ValueError('soak')\n"
OVERSTAY = "import time\n\n\ndef handler(event, context):\n    time.sleep(1.5)\n"
TIMEOUTS_PER_1000 = 1  # sent beside wrk, at this share of its rate
LOAD_SHARE = 0.7
SATURATION_SECONDS = 10.0
CONNECTIONS = 16

LUA = """\
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } klambda_soak_timeval;
int gettimeofday(klambda_soak_timeval *tv, void *tz);
]]
local tv = ffi.new("klambda_soak_timeval")
local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local RATE = __RATE__          -- requests a second from this thread; 0: as fast as it can
local MIX = {__MIX__}          -- {weight, path, async}
local TOTAL = 0
for _, m in ipairs(MIX) do TOTAL = TOTAL + m[1] end

ok, fn_error, fn_timeout, accepted, throttled, other = 0, 0, 0, 0, 0, 0
local reqs = {}
local due = nil

init = function(args)
  math.randomseed(os.time())
  for i, m in ipairs(MIX) do
    local h = {["Content-Type"] = "application/json"}
    if m[3] then h["X-Amz-Invocation-Type"] = "Event" end
    reqs[i] = wrk.format("POST", m[2], h, "{}")
  end
end

request = function()
  local r = math.random() * TOTAL
  for i, m in ipairs(MIX) do
    r = r - m[1]
    if r <= 0 then return reqs[i] end
  end
  return reqs[1]
end

if RATE > 0 then
  delay = function()
    local t = now()
    if due == nil or due < t - 1 then due = t end
    due = due + 1 / RATE
    local ms = (due - t) * 1000
    if ms < 0 then return 0 end
    return ms
  end
end

response = function(status, headers, body)
  if status == 200 then
    if headers["X-Amz-Function-Error"] then
      if string.find(body, "Task timed out", 1, true) then
        fn_timeout = fn_timeout + 1
      else
        fn_error = fn_error + 1
      end
    else
      ok = ok + 1
    end
  elseif status == 202 then accepted = accepted + 1
  elseif status == 429 then throttled = throttled + 1
  else other = other + 1 end
end

local threads = {}
setup = function(thread) table.insert(threads, thread) end

done = function(summary, latency, requests)
  local c = {ok = 0, fn_error = 0, fn_timeout = 0, accepted = 0, throttled = 0, other = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (th:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"socket_errors\\":%d," ..
    "\\"p50_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d,\\"ok\\":%d,\\"fn_error\\":%d," ..
    "\\"fn_timeout\\":%d,\\"accepted\\":%d,\\"throttled\\":%d,\\"other\\":%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    c.ok, c.fn_error, c.fn_timeout, c.accepted, c.throttled, c.other))
end
"""


def lua(rate: float) -> str:
    mix = ", ".join(
        f'{{{w}, "/2015-03-31/functions/{fn}/invocations", {str(kind == "Event").lower()}}}'
        for _, fn, kind, w in MIX
    )
    return LUA.replace("__RATE__", f"{rate:.3f}").replace("__MIX__", mix)


def write_functions(folder: Path) -> Path:
    docs = [
        functions.function("soak-ok", functions.NOOP, functions.FULL_VCPU_MB),
        functions.function("soak-error", RAISE, functions.FULL_VCPU_MB),
        functions.function("soak-timeout", OVERSTAY, functions.SMALL_MB, timeout_s=1),
        functions.function("soak-async", functions.NOOP, functions.FULL_VCPU_MB),
        functions.function("soak-async-error", RAISE, functions.FULL_VCPU_MB),
    ]
    spec: Any = docs[-1]["spec"]
    spec["maxEventAgeSeconds"] = 60
    return functions.write_manifests(folder, docs)


def sample(r: Router, t0: float) -> dict[str, Any]:
    roll = smaps_rollup(r.pid)
    zygotes = r.zygotes()
    return {
        "t_s": time.monotonic() - t0,
        "rss_mb": roll["Rss"] / 1024,
        "pss_mb": roll["Pss"] / 1024,
        "fds": open_fds(r.pid),
        "environments": len(r.environments()),
        "zygotes": len(zygotes),
        "cpu_s": cpu_seconds(r.pid),
        "load_average_1m": os.getloadavg()[0],  # the machine is shared
    }


class Timeouts(threading.Thread):
    """Calls of the function that outlives its timeout, one every `period` seconds."""

    def __init__(self, r: Router, period: float) -> None:
        super().__init__(daemon=True)
        self.r = r
        self.period = period
        self.stop = threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.seconds: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            status, _headers, body = self.r.invoke("soak-timeout")
            took = time.perf_counter() - t0
            self.seconds.append(took)
            timed_out = status == 200 and b"Task timed out" in body
            self.outcomes["timeout" if timed_out else f"HTTP {status}"] += 1
            self.stop.wait(max(0.0, self.period - took))

    def take(self) -> dict[str, Any]:
        """The outcomes and p50 seconds since the last take."""
        out = {"outcomes": dict(self.outcomes), "p50_s": stats.percentile(self.seconds, 50)}
        self.outcomes.clear()
        self.seconds.clear()
        return out


def run_wrk(r: Router, work: Path, rate: float, seconds: float) -> dict[str, Any]:
    script = work / f"soak-{rate:.0f}.lua"
    script.write_text(lua(rate))
    d, cpu = tools.wrk_json(script, r.url, CONNECTIONS, seconds)
    d["seconds"] = d["duration_us"] / 1e6
    d["rps"] = d["requests"] / d["seconds"] if d["seconds"] else 0.0
    d["wrk_cpu_s"] = cpu
    return d


def wait_idle(r: Router, t0: float, limit_s: float, every: float) -> list[dict[str, Any]]:
    """Samples until only the zygotes' spares are left, or `limit_s` has passed."""
    out = [sample(r, t0)]
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        s = out[-1]
        if s["environments"] <= s["zygotes"]:
            break
        time.sleep(every)
        out.append(sample(r, t0))
    return out


def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    folder = write_functions(work / "soak-fns")
    keep = str(args.keep_warm)
    with router(folder, work, "--keep-warm", keep) as r:
        t0 = time.monotonic()
        for _, fn, kind, _w in MIX:
            r.invoke(fn, **({"X-Amz-Invocation-Type": "Event"} if kind == "Event" else {}))
        r.invoke("soak-timeout")
        idle_limit = args.keep_warm * 2 + 120
        baseline = wait_idle(r, t0, idle_limit, 2.0)[-1]
        run_wrk(r, work, 0, 3)  # warm-up: environments for the connections
        sat = run_wrk(r, work, 0, SATURATION_SECONDS)
        rate = sat["rps"] * LOAD_SHARE
        load_start = time.monotonic()
        deadline = load_start + args.minutes * 60
        intervals: list[dict[str, Any]] = []
        cpu = cpu_seconds(r.pid)
        timeouts = Timeouts(r, 1000 / TIMEOUTS_PER_1000 / rate)
        timeouts.start()
        while True:
            left = deadline - time.monotonic()
            if left < 1:
                break
            seconds = min(args.interval, left)
            # read in the middle of the interval, under the load: at its end wrk's
            # connections are closing
            mid: list[dict[str, Any]] = []
            reader = threading.Timer(seconds / 2, lambda m=mid: m.append(sample(r, t0)))
            reader.start()
            w = run_wrk(r, work, rate, seconds)
            reader.join()
            w["timeouts"] = timeouts.take()
            s = mid[0] if mid else sample(r, t0)
            now_cpu = cpu_seconds(r.pid)
            s["router_cores"] = (now_cpu - cpu) / w["seconds"] if w["seconds"] else 0.0
            cpu = now_cpu
            intervals.append({"wrk": w, "sample": s})
            print(
                f"soak: {s['t_s']:.0f}s {w['rps']:.0f}/s p99 {w['p99_us'] / 1000:.1f} ms "
                f"RSS {s['rss_mb']:.1f} MB fds {s['fds']} environments {s['environments']}",
                file=sys.stderr,
                flush=True,
            )
        timeouts.stop.set()
        timeouts.join()
        load_end = time.monotonic()
        idle = wait_idle(r, t0, idle_limit, 5.0)
        asyncs = {
            name: r.metric(f"klambda_{name}_total")
            for name in ("async_events_received", "async_events_dropped", "async_retries")
        }
    end = idle[-1]
    spares = max(1, end["zygotes"])
    check = soakstats.leak_check(end["environments"], spares, 0, end["fds"], baseline["fds"])
    points = [iv["sample"] for iv in intervals]
    steady = points[1:] if len(points) > 2 else points
    rss = soakstats.growth([(p["t_s"], p["rss_mb"]) for p in steady], share=0.02, floor=2.0)
    # each environment holds two of the router's fds (its socket, its /proc stat): what
    # is left besides them must not grow as environments come and go
    fds = soakstats.growth(
        [(p["t_s"], float(p["fds"] - 2 * p["environments"])) for p in steady],
        share=0.02,
        floor=4.0,
    )
    return {
        "minutes": args.minutes,
        "interval_s": args.interval,
        "keep_warm_s": args.keep_warm,
        "connections": CONNECTIONS,
        "mix": [{"kind": k, "function": f, "type": t, "per_1000": w} for k, f, t, w in MIX]
        + [
            {
                "kind": "sync timeout (own client)",
                "function": "soak-timeout",
                "type": "RequestResponse",
                "per_1000": TIMEOUTS_PER_1000,
            }
        ],
        "saturation": sat,
        "rate": rate,
        "load_seconds": load_end - load_start,
        "baseline": baseline,
        "intervals": intervals,
        "idle": idle,
        "idle_seconds": end["t_s"] - (load_end - t0),
        "async": asyncs,
        "rss_growth": asdict(rss),
        "fd_growth": asdict(fds),
        "fd_slope_per_hour": soakstats.slope_per_hour(
            [(p["t_s"], float(p["fds"])) for p in steady]
        ),
        "pss_slope_per_hour": soakstats.slope_per_hour([(p["t_s"], p["pss_mb"]) for p in steady]),
        "environment_slope_per_hour": soakstats.slope_per_hour(
            [(p["t_s"], float(p["environments"])) for p in steady]
        ),
        "leak": {
            **asdict(check),
            "verdict": check.verdict,
            "environments_leak": check.environments_leak,
            "fds_leak": check.fds_leak,
        },
    }


def render(res: dict[str, Any]) -> str:
    sat, base = res["saturation"], res["baseline"]
    ivs = res["intervals"]
    total = {
        k: sum(iv["wrk"][k] for iv in ivs)
        for k in ("requests", "ok", "fn_error", "fn_timeout", "accepted", "throttled", "other")
    }
    total["socket_errors"] = sum(iv["wrk"]["socket_errors"] for iv in ivs)
    timeouts: Counter[str] = Counter()
    for iv in ivs:
        timeouts.update(iv["wrk"]["timeouts"]["outcomes"])
    timeout_p50 = [iv["wrk"]["timeouts"]["p50_s"] for iv in ivs]
    rss, fdg, leak = res["rss_growth"], res["fd_growth"], res["leak"]
    last = ivs[-1]["sample"] if ivs else base
    end = res["idle"][-1]
    mix = ", ".join(f"{m['per_1000']} {m['kind']}" for m in res["mix"])
    lines = [
        "# klambda long run (soak)",
        "",
        "<!-- Written by `make soak` (bench/soak.py); edits are overwritten. -->",
        "",
        f"Run `{res['command']}` at {res['started']}, commit {res['machine']['commit']}: "
        f"{res['load_seconds'] / 60:.1f} minutes of load"
        + (" (**shorter than the default 30**)" if res["minutes"] < 30 else "")
        + f", then {res['idle_seconds']:.0f} s idle. Machine: {res['machine']['cores']} cores, "
        f"load average at the start "
        f"{', '.join(f'{x:.2f}' for x in res['machine']['load_average_start'])}, at the end "
        f"{', '.join(f'{x:.2f}' for x in res['load_average_end'])}.",
        "",
        f"Mix per 1,000 calls over the REST API (wrk, {res['connections']} connections): {mix}. "
        f"Saturation of the mix, measured first: {fmt(sat['rps'])} calls/s (p99 "
        f"{fmt(sat['p99_us'] / 1000)} ms); the load ran at {fmt(res['rate'])} calls/s, "
        f"70 % of it. `klambda up --keep-warm {res['keep_warm_s']}`, cgroups on.",
        "",
        "## Summary",
        "",
        "| what | figure | |",
        "| --- | --- | --- |",
        f"| router RSS: baseline → end of load → after idle | {fmt(base['rss_mb'])} → "
        f"{fmt(last['rss_mb'])} → {fmt(end['rss_mb'])} MB | |",
        f"| RSS slope (least squares, samples after the first interval) | "
        f"{rss['slope_per_hour']:+.2f} MB/hour ({rss['over_run']:+.2f} MB over the run; "
        f"tolerated {rss['allowed']:.2f}) | {'**grows**' if rss['grows'] else 'flat'} |",
        f"| PSS slope | {res['pss_slope_per_hour']:+.2f} MB/hour | |",
        f"| open fds: baseline → end of load → after idle | {base['fds']} → {last['fds']} → "
        f"{end['fds']} | |",
        f"| fd slope, all / besides the environments' two each | "
        f"{res['fd_slope_per_hour']:+.2f} / {fdg['slope_per_hour']:+.2f} fds/hour (the latter "
        f"{fdg['over_run']:+.2f} over the run; tolerated {fdg['allowed']:.1f}) | "
        f"{'**grows**' if fdg['grows'] else 'flat'} |",
        f"| environments: end of load → after idle (the spare counts) | "
        f"{last['environments']} → {end['environments']} (allowed "
        f"{leak['environments_allowed']}); slope under load "
        f"{res['environment_slope_per_hour']:+.2f}/hour | |",
        f"| leak check after {res['idle_seconds']:.0f} s idle | {leak['verdict']} | "
        f"{'**leak**' if leak['environments_leak'] or leak['fds_leak'] else 'ok'} |",
        f"| calls from wrk | {total['requests']:,}: {total['ok']:,} ok, {total['fn_error']:,} "
        f"function errors, {total['accepted']:,} accepted (202), {total['throttled']:,} "
        f"throttled, {total['other'] + total['fn_timeout']:,} other, "
        f"{total['socket_errors']:,} socket errors | |",
        "| calls that outlive the 1 s timeout (their own client) | "
        + (", ".join(f"{v:,} {k}" for k, v in timeouts.items()) or "none")
        + f"; p50 of the intervals' p50s {fmt(stats.percentile(timeout_p50, 50), 3)} s | |",
        f"| async events received / retried / dropped (router counters) | "
        f"{res['async']['async_events_received']:,.0f} / "
        f"{res['async']['async_retries']:,.0f} / {res['async']['async_events_dropped']:,.0f} | |",
        "",
        "## Per interval",
        "",
        "| end (s) | calls/s | p50 ms | p99 ms | max ms | errors / 429 / other | timeouts "
        "| router cores | RSS MB | PSS MB | fds | environments | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for iv in ivs:
        w, s = iv["wrk"], iv["sample"]
        lines.append(
            f"| {s['t_s']:.0f} | {w['rps']:,.0f} | {w['p50_us'] / 1000:.2f} | "
            f"{w['p99_us'] / 1000:.2f} | {w['max_us'] / 1000:.0f} | {w['fn_error']} / "
            f"{w['throttled']} / {w['other'] + w['socket_errors'] + w['fn_timeout']} | "
            f"{w['timeouts']['outcomes'].get('timeout', 0)} | "
            f"{s['router_cores']:.2f} | {s['rss_mb']:.1f} | {s['pss_mb']:.1f} | {s['fds']} | "
            f"{s['environments']} | {fmt(s.get('load_average_1m'))} |"
        )
    lines += [
        "",
        "Idle samples after the load (seconds since the router started: environments, fds, "
        "RSS MB): "
        + ", ".join(
            f"{s['t_s']:.0f}: {s['environments']}, {s['fds']}, {s['rss_mb']:.1f}"
            for s in res["idle"]
        )
        + ".",
        "",
        "Latencies are wrk's (corrected for coordinated omission) over the calls it sent; "
        "the timeouts, sent beside it by a client of their own, are counted apart. Every "
        "figure comes from this one run on a shared machine.",
        "",
    ]
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("SOAK_MINUTES", "30")),
        help="minutes of load (default 30, or SOAK_MINUTES)",
    )
    p.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--keep-warm", type=int, default=30, help="the router's --keep-warm")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "SOAK.md")
    p.add_argument(
        "--render",
        type=Path,
        metavar="SOAK_JSON",
        help="measure nothing: rewrite --output from the soak.json of an earlier run",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.render:
        args.output.write_text(render(json.loads(args.render.read_text())))
        return 0
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    mach = machine.describe()
    with tempfile.TemporaryDirectory(prefix="klambda-soak-") as tmp:
        res = soak(args, Path(tmp))
    res["command"] = shlex.join([os.path.relpath(sys.executable, ROOT), "-m", "bench.soak", *argv])
    res["started"] = started
    res["machine"] = mach
    res["load_average_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_name("soak.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    args.output.write_text(render(res))
    print(f"soak: wrote {args.output}: {res['leak']['verdict']}", file=sys.stderr)
    return 1 if res["leak"]["environments_leak"] or res["leak"]["fds_leak"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
