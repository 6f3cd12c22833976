"""RESULTS.md from one run's results: figures, pairs, ratios and the targets they meet."""

from __future__ import annotations

import math
from typing import Any

from bench.stats import fmt, verdict

# a pool cold start's phases in REPORT, in order (environment_start: the fork and the
# environment's connection, besides init)
COLD_PHASES = ("code_download", "specialise", "environment_start", "init", "handler")

HOPS = """\
Hops on the warm hot path (local mode, `klambda up`): **2 process boundaries, 4 one-way
messages**.

1. client → router: gRPC (HTTP/2 over loopback TCP) or REST (HTTP/1.1).
2. router → environment: one INVOKE frame over the environment's SOCK_STREAM socketpair
   (9-byte header, small JSON meta, the payload bytes as sent, never re-encoded).
3. environment → router: LOG frames (if the handler prints) and one RESULT frame.
4. router → client.

In local mode the worker (environment pools, timeouts, START/END/REPORT) runs inside the
router process, so there is no router → worker hop; in cluster mode the design adds one
(router → worker pod over gRPC). The zygote is not on the warm path: it is only asked
for a new environment on a cold start (one SOCK_SEQPACKET message each way + fork).
The bare echo has 1 process boundary (client → echo → client)."""


SOAK_LINK = (
    "`make soak` (bench/soak.py, bounded: 30 minutes unless `SOAK_MINUTES` says otherwise) "
    "runs mixed sync and async load with function errors and timeouts at 70 % of the "
    "saturation it measures first, samples the router's memory, open fds, environments and "
    "p99 as it goes, and writes [SOAK.md](SOAK.md): RSS and fd slopes, the leak check, p99 "
    "per interval. It is a file of its own, so `make bench` does not overwrite it."
)


def _g(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _x(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}x"


def _missing(results: dict[str, Any], part: str) -> str | None:
    if part in results["parts"]:
        return None
    if part in results["errors"]:
        return f"_{results['errors'][part]}_"
    return "_Not selected in this run._"


def targets(results: dict[str, Any]) -> list[str]:
    p = results["parts"]
    rows = ["| # | target | measured in this run | |", "| --- | --- | --- | --- |"]

    def row(num: str, target: str, measured: str, ok: bool | None) -> None:
        rows.append(f"| {num} | {target} | {measured} | {verdict(ok)} |")

    lat = p.get("latency")
    if lat:
        r = lat["ratio_p50_vs_echo"]
        row(
            "1",
            "warm p50 ≤ 1.5x bare grpc.aio echo p50",
            f"{fmt(lat['noop']['p50_ms'], 3)} ms vs {fmt(lat['echo']['p50_ms'], 3)} ms = {_x(r)}",
            r <= 1.5,
        )
        r = lat["ratio_p99_vs_own_p50"]
        echo_r = lat["echo"]["p99_ms"] / lat["echo"]["p50_ms"]
        row(
            "1",
            "warm p99 ≤ 3x own p50",
            f"{fmt(lat['noop']['p99_ms'], 3)} ms vs {fmt(lat['noop']['p50_ms'], 3)} ms = {_x(r)} "
            f"(the bare echo's own p99/p50 in this run: {_x(echo_r)})",
            r <= 3,
        )
    else:
        row("1", "warm latency", "", None)
    g = p.get("grpc")
    if g:
        r = g["ratio_noop_vs_echo"]
        row(
            "2",
            "warm throughput (no-op, 1,769 MB) ≥ 0.6x echo saturation (gRPC, ghz)",
            f"{fmt(g['noop_best_rps'])} vs {fmt(g['echo_saturation_rps'])} calls/s = {_x(r)}",
            r >= 0.6,
        )
    else:
        row("2", "warm throughput, gRPC", "", None)
    rest = p.get("rest")
    if rest:
        r = rest["ratio_noop_vs_echo"]
        row(
            "2",
            "the same bar over the REST API (wrk), beside a bare aiohttp echo (not an issue "
            "target: aiohttp's floor is far lower than grpc.aio's)",
            f"{fmt(rest['noop_best_rps'])} vs {fmt(rest['echo_saturation_rps'])} calls/s = {_x(r)}",
            r >= 0.6,
        )
    cold = p.get("cold")
    if cold:
        r = cold["ratio_p50_vs_bare"]
        row(
            "3",
            "cold start p50 ≤ 1x `python -I -S -c pass`",
            f"{fmt(cold['cold']['p50_ms'])} ms vs "
            f"{fmt(cold['bare_python']['p50_ms'])} ms = {_x(r)}",
            r <= 1,
        )
    else:
        row("3", "cold start", "", None)
    asy = p.get("async")
    if asy:
        for name, b in asy["backends"].items():
            ev = b["accept"]["event"]
            row(
                "4",
                f"async enqueue ≥ 5,000 events/s, {BACKEND_LABELS[name]}, durability kept",
                f"{fmt(b['best_rps'])} events/s at {b['best_c']} connections ("
                + ", ".join(f"{c}: {fmt(v['rps'])}" for c, v in ev.items())
                + f"); sync no-op REST at {b['best_c']}: "
                f"{fmt(b['accept']['sync'][b['best_c']]['rps'])} calls/s = "
                f"{_x(b['ratio_best_vs_sync'])}",
                b["best_rps"] >= asy["target_rps"],
            )
            row(
                "4",
                f"202 accept p99 ≤ 5 ms, {BACKEND_LABELS[name]}",
                f"{fmt(b['p99_judged_ms'], 3)} ms at {b['p99_judged_at_c']} connections ("
                + ", ".join(f"{c}: {fmt(v['p99_ms'], 3)}" for c, v in ev.items())
                + f"); sync no-op p99 at {b['p99_judged_at_c']}: "
                f"{fmt(b['accept']['sync'][b['p99_judged_at_c']]['p99_ms'], 3)} ms",
                b["p99_judged_ms"] <= asy["target_p99_ms"],
            )
    else:
        row("4", "async enqueue ≥ 5,000/s, 202 p99 ≤ 5 ms", "", None)
    pe = p.get("peer")
    if pe:
        rw, rc = pe["warm"]["ratio_klambda_vs_rie"], pe["cold"]["ratio_klambda_vs_rie"]
        row(
            "5",
            "faster than RIE + awslambdaric, warm (REST, p50)",
            f"{fmt(pe['warm']['klambda']['p50_ms'], 3)} ms vs "
            f"{fmt(pe['warm']['rie']['p50_ms'], 3)} ms = {_x(rw)}",
            rw < 1,
        )
        row(
            "5",
            "faster than RIE + awslambdaric, cold (REST, p50)",
            f"{fmt(pe['cold']['klambda']['p50_ms'])} ms vs "
            f"{fmt(pe['cold']['rie_first_invoke']['p50_ms'])} ms = {_x(rc)}",
            rc < 1,
        )
    else:
        row("5", "peer (RIE)", "", None)
    m = p.get("metrics")
    if m:
        row(
            "",
            "`/metrics` ≤ 10 ms with ~1,000 series",
            f"p50 {fmt(m['scrape']['p50_ms'])} ms, p99 {fmt(m['scrape']['p99_ms'])} ms "
            f"with {m['series']} series",
            m["scrape"]["p50_ms"] <= 10 and m["series"] >= 900,
        )
        shares = m["share_of_router_cpu"]
        worst = max(shares.values()) if shares else None
        row(
            "",
            "metrics cost ≤ 3 % of throughput (no off switch: share of router CPU)",
            f"{fmt(m['updates_per_invoke_us'])} µs per invoke, "
            f"{'n/a' if worst is None else f'{worst * 100:.1f} %'} of the router's CPU per call",
            None if worst is None else worst <= 0.03,
        )
    for num, target, measured, ok in raised_targets(results):
        row(num, target, measured, ok)
    for num, target, measured, ok in logs_targets(results):
        row(num, target, measured, ok)
    for num, target, measured, ok in burst_targets(results):
        row(num, target, measured, ok)
    for num, target, measured, ok in kind_targets(results):
        row(num, target, measured, ok)
    for num, target, measured, ok in processes_targets(results):
        row(num, target, measured, ok)
    return rows


# The second round's goals (issue 19), judged on the same figures as the first round's rows
# above; its throughput goal is the router processes' rows (12) and its scale-out and memory
# goals the burst part's (11, 19).
RAISED_ASYNC_RPS = 10_000.0
RAISED_ASYNC_AT_CONNECTIONS = 64
# (part, its ratio, the bound, the goal, the first round's row of the same figure)
RAISED_RATIOS = (
    ("latency", "ratio_p50_vs_echo", 1.25, "warm p50 ≤ 1.25x bare grpc.aio echo p50", "1"),
    ("latency", "ratio_p99_vs_own_p50", 2.0, "warm p99 ≤ 2x own p50", "1"),
    ("cold", "ratio_p50_vs_bare", 0.35, "cold start p50 ≤ 0.35x `python -I -S -c pass`", "3"),
)


def raised_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    p = results["parts"]
    out: list[tuple[str, str, str, bool | None]] = []
    for part, key, bound, target, first in RAISED_RATIOS:
        if p.get(part):
            r = p[part][key]
            out.append(("19", target, f"{_x(r)} (the row of {first} above)", r <= bound))
    asy = p.get("async")
    for name, b in (asy["backends"] if asy else {}).items():
        ev = {str(c): v for c, v in b["accept"]["event"].items()}
        at = ev.get(str(RAISED_ASYNC_AT_CONNECTIONS))
        label = BACKEND_LABELS[name]
        # judged on every core (`--processes N`, the way the issue asks for), when measured
        pr = (asy.get("processes") or {}).get(name) if asy else None
        one = f"one process: {fmt(b['best_rps'])} at {b['best_c']} (the row of 4 above)"
        if pr:
            pev = {str(c): v for c, v in pr["event"].items()}
            pat = pev.get(str(RAISED_ASYNC_AT_CONNECTIONS))
            rate = (
                f"{fmt(pr['best_rps'])} events/s at {pr['best_c']} connections with "
                f"{pr['processes']} router processes; {one}"
            )
            best = pr["best_rps"]
            p99 = (
                "not measured at that concurrency"
                if pat is None
                else f"{fmt(pat['p99_ms'], 3)} ms ({fmt(pat['rps'])} events/s) with "
                f"{pr['processes']} router processes"
                + ("" if at is None else f"; one process: {fmt(at['p99_ms'], 3)} ms")
            )
            at = pat
        else:
            rate = (
                f"{fmt(b['best_rps'])} events/s at {b['best_c']} connections (the row of 4 above)"
            )
            best = b["best_rps"]
            p99 = (
                "not measured at that concurrency"
                if at is None
                else f"{fmt(at['p99_ms'], 3)} ms ({fmt(at['rps'])} events/s)"
            )
        out.append(
            (
                "19",
                f"async enqueue ≥ {RAISED_ASYNC_RPS:,.0f} durable accepts/s, {label}",
                rate,
                best >= RAISED_ASYNC_RPS,
            )
        )
        out.append(
            (
                "19",
                f"202 accept p99 ≤ {asy['target_p99_ms']:g} ms at "
                f"{RAISED_ASYNC_AT_CONNECTIONS} connections, {label}",
                p99,
                None if at is None else at["p99_ms"] <= asy["target_p99_ms"],
            )
        )
    return out


def kind_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """The cluster path's goals on kind: cold through the pool, a burst, warm."""
    k = results["parts"].get("kind")
    if not k:
        return []
    c, w, wl = k["cold"], k["warm_cluster"], k["warm_local"]
    b = k.get("burst") or {}
    answered = b.get("answered") or {}
    burst_ok = (
        None if not answered else b.get("failed", 0) == 0 and (b.get("p95_vs_cold_p50") or 99) <= 2
    )
    diff = k["warm_difference_p50_ms"]
    return [
        (
            "13",
            "kind: cold start through a warm pool pod, p50 ≤ 50 ms end to end",
            f"{fmt(c['p50_ms'])} ms (REPORT phases p50: "
            + ", ".join(f"{p} {fmt(v, 3)}" for p, v in k["phases_p50_ms"].items())
            + " ms)",
            c["p50_ms"] <= 50,
        ),
        (
            "13",
            "kind: a burst of first calls to as many functions, p95 ≤ 2x the single cold p50",
            f"{b.get('calls', 0) - b.get('failed', 0)} of {b.get('calls', 0)} answered with a "
            f"pool of {b.get('pool_size', '?')}: p95 {fmt(answered.get('p95_ms'))} ms vs "
            f"{fmt(c['p50_ms'])} ms = {_x(b.get('p95_vs_cold_p50'))}",
            burst_ok,
        ),
        (
            "13",
            "kind: warm p50 router → worker pod ≤ local warm p50 + 1 ms",
            f"{fmt(w['p50_ms'], 3)} ms vs {fmt(wl['p50_ms'], 3)} ms (+ {fmt(diff, 3)} ms)",
            diff <= 1,
        ),
        (
            "13",
            "kind: warm p50 router → worker pod ≤ 2 ms",
            f"{fmt(w['p50_ms'], 3)} ms",
            w["p50_ms"] <= 2,
        ),
    ]


def burst_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    b = results["parts"].get("burst")
    if not b:
        return []
    m = b["environment_memory"]
    at_scale = b["environments"] >= 1000
    thr = sum(b["throttled"].values())
    return [
        (
            "11, 19",
            "1,000 new environments of one function within 10 s (Lambda's scaling rule)",
            f"{b['distinct_environments']:,} of {b['environments']:,} in "
            f"{fmt(b['all_started_s'])} s, {thr} throttled",
            (b["goal_met_time"] and thr == 0) if at_scale else None,
        ),
        (
            "11, 19",
            "≤ 2 MB PSS per idle environment at 1,000 environments",
            f"{fmt(m.get('pss_mb_per_environment'))} MB {_unmerged(b)}, judged "
            f"({m.get('count', 0):,} environments; private "
            f"{fmt(m.get('uss_mb_median'))} MB, RSS {fmt(m.get('rss_mb_median'))} MB); "
            f"{_merged_figure(b.get('merged'))}",
            b["goal_met_pss"] if at_scale else None,
        ),
    ]


def _unmerged(b: dict[str, Any]) -> str:
    """What the burst's first memory reading is: unmerged unless the host ran ksmd."""
    run = b.get("ksm_run")
    if run in (None, "0"):
        return "without merging (ksmd off: hosts' default)"
    return f"with the host's ksmd on (/sys/kernel/mm/ksm/run = {run})"


def _merged_figure(k: dict[str, Any] | None) -> str:
    """The burst's PSS with ksmd merging, for the targets row: figure and what it took."""
    if not k:
        return "with KSM: not measured"
    if "skipped" in k:
        return f"with KSM: not measured ({k['skipped']})"
    m = k["environment_memory"]
    return f"with ksmd merging (KSM): {fmt(m.get('pss_mb_per_environment'))} MB, {_ksmd_cost(k)}"


def _per_page(k: dict[str, Any]) -> str:
    cpu, scanned = k.get("ksmd_cpu_s"), k.get("pages_scanned") or 0
    if cpu is None or scanned <= 0:
        return ""
    return f"{scanned:,} pages scanned, {fmt(cpu / scanned * 1e6)} µs of CPU each; "


def _ksmd_cost(k: dict[str, Any]) -> str:
    cpu = k.get("ksmd_cpu_s")
    return (
        f"95 % merged after {fmt(k.get('seconds_to_95'))} s "
        f"({'settled' if k['settled'] else 'not settled'} after {fmt(k['waited_s'])} s, "
        f"{k['full_scans']} full scans, {'n/a' if cpu is None else fmt(cpu)} s of ksmd's CPU)"
    )


def burst_section(results: dict[str, Any]) -> list[str]:
    b = results["parts"].get("burst")
    if not b:
        return [_missing(results, "burst") or ""]
    m, z = b["environment_memory"], b["zygote_memory"]
    cpu = b["cpu_ms_per_environment"]
    by = ", ".join(f"{v:,} by {k} s" for k, v in b["started_by_s"].items())
    throttled = ", ".join(f"{v} {k}" for k, v in b["throttled"].items()) or "none"
    failed = "; ".join(f"{v}: {k}" for k, v in b["failed"].items()) or "none"
    lines = [
        f"{b['environments']:,} calls at once to one {b['memory_mb']} MB function whose handler "
        f"holds each call until {fmt(b['hold_s'])} s after the burst was sent, so each needs an "
        "environment of its own (a cold start); one gRPC channel, one stream per call. The "
        "time is the latest handler start less the moment the calls were sent. Memory is read "
        "from `/proc/<pid>/smaps_rollup` of the environments once every call has answered "
        "(idle): PSS counts the pages they still share with the zygote once in the sum.",
        "",
        "| what | figure |",
        "| --- | --- |",
        f"| environments started (distinct pids) / calls answered | "
        f"{b['distinct_environments']:,} / {b['answered']:,} |",
        f"| time until all had started | {fmt(b['all_started_s'])} s ({by}); handler start "
        f"p50 {fmt(b['start_p50_s'])} s, p99 {fmt(b['start_p99_s'])} s |",
        f"| CPU per new environment: router / zygote | {fmt(cpu.get('router'))} / "
        f"{fmt(cpu.get('zygote'))} ms |",
        f"| throttled (Lambda's reason) | {throttled} |",
        f"| other failures | {failed} |",
        f"| PSS per idle environment (sum / count), {_unmerged(b)} | "
        f"{fmt(m.get('pss_mb_per_environment'))} MB "
        f"({fmt(m.get('pss_mb_total'))} MB for {m.get('count', 0):,}) |",
        f"| private (USS) / RSS / shared per environment, median | "
        f"{fmt(m.get('uss_mb_median'))} / {fmt(m.get('rss_mb_median'))} / "
        f"{fmt(m.get('shared_mb_median'))} MB |",
        f"| zygote PSS / private / RSS | {fmt(z.get('pss_mb_total'))} / "
        f"{fmt(z.get('uss_mb_median'))} / {fmt(z.get('rss_mb_median'))} MB |",
        f"| router PSS before → with the environments idle | "
        f"{fmt(b['router_memory_before'].get('pss_mb_total'))} → "
        f"{fmt(b['router_memory_idle'].get('pss_mb_total'))} MB |",
        f"| router open fds before → peak → idle | {b['router_fds_before']:,} → "
        f"{b['peak_router_fds']:,} → {b['router_fds_idle']:,} |",
    ]
    k = b.get("merged") or {"skipped": "not measured"}
    km = k.get("environment_memory") or {}
    kz = k.get("zygote_memory") or {}
    if "skipped" in k:
        lines.append(f"| PSS per idle environment with ksmd merging (KSM) | {k['skipped']} |")
    else:
        rate = k["rate"]
        lines += [
            f"| PSS per idle environment with ksmd merging (KSM) | "
            f"{fmt(km.get('pss_mb_per_environment'))} MB ({fmt(km.get('pss_mb_total'))} MB "
            f"for {km.get('count', 0):,}); private {fmt(km.get('uss_mb_median'))} MB, median |",
            f"| zygote PSS / private with ksmd merging | {fmt(kz.get('pss_mb_total'))} / "
            f"{fmt(kz.get('uss_mb_median'))} MB |",
            f"| ksmd at {rate['pages_to_scan']:,} pages every {rate['sleep_millisecs']} ms | "
            f"{_ksmd_cost(k)}; {_per_page(k)}{k['merged_pages']:,} pages of the environments "
            f"and the zygote merged, {k['pages_shared']:,} merged pages kept (host-wide) |",
        ]
    after = k.get("private_kb_by_mapping_mean") or {}
    lines += [
        "",
        "Where an idle environment's private pages are (mean of a sample, kB), without and with "
        "ksmd merging:",
        "",
        "| mapping | private kB | with KSM |",
        "| --- | --- | --- |",
        *(
            f"| {name} | {v:,.0f} | {'' if name not in after else f'{after[name]:,.0f}'} |"
            for name, v in b["private_kb_by_mapping_mean"].items()
        ),
        "",
        "The zygote marks its memory and its environments' mergeable (`PR_SET_MEMORY_MERGE`); "
        "ksmd merges it only while `/sys/kernel/mm/ksm/run` is 1, which is the host's "
        "switch and off by default. As root with ksmd off, this part turns it on after the "
        "first readings, at the rate above, until a full scan (the second or later) adds "
        "less than 1 % to the merged pages, turns it off again and reads the same "
        "environments (bench/ksm.py). Merged pages stay merged until written: these are "
        "idle environments.",
    ]
    if b.get("command"):
        lines += ["", f"This part's own run: `{b['command']}` at {b['started']}."]
    return lines


def processes_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    pr = results["parts"].get("processes")
    if not pr:
        return [("12", "throughput on every core, throttling exact", "", None)]
    n = pr["processes"]
    floor = pr.get("echo_grpc_saturation_rps")
    out: list[tuple[str, str, str, bool | None]] = []
    for proto, how in (("grpc", "gRPC, ghz"), ("rest", "REST API, wrk")):
        best = pr[f"klambda_n_{proto}_best_rps"]
        one = pr[f"klambda_1_{proto}_best_rps"]
        r = pr[f"klambda_n_{proto}_vs_echo"]
        out.append(
            (
                "12, 19",
                f"warm throughput (no-op) with {n} router processes ≥ 1.0x the single-process "
                f"bare grpc.aio echo's saturation ({how})",
                f"{fmt(best)} vs {fmt(floor)} calls/s = {_x(r)} (one router process: "
                f"{fmt(one)} calls/s = {_x(stats_ratio(one, floor))})"
                if floor
                else "not measured: ghz is missing, so the echo's gRPC saturation is unknown",
                None if r is None else r >= 1.0,
            )
        )
    ex = pr["exactness"]
    oc = ex["outcomes"]
    spread = len(ex["ran_on"])
    out.append(
        (
            "12",
            f"reserved concurrency {ex['reserved']} under {ex['callers']} concurrent callers: "
            f"exactly {ex['reserved']} running, across {n} processes",
            f"at most {ex['most_at_once']} ran at once; {oc.get('ok', 0):,} ran, "
            f"{oc.get('throttled', 0):,} throttled"
            + "".join(f", {v} {k}" for k, v in oc.items() if k not in ("ok", "throttled"))
            + f"; ran on {spread} of {n} processes",
            ex["most_at_once"] == ex["reserved"] and spread > 1,
        )
    )
    return out


def stats_ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def processes_section(results: dict[str, Any]) -> list[str]:
    pr = results["parts"].get("processes")
    if not pr:
        return [_missing(results, "processes") or ""]
    s = results["sizes"]
    n = pr["processes"]
    floor = pr.get("echo_grpc_saturation_rps") or 0.0
    head = [
        "| target | connections | calls/s | x echo gRPC sat. | p50 ms | p99 ms | errors "
        "| router/server CPU | environments CPU | load gen. CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def rows(table: dict[str, Any], label: str) -> list[str]:
        out = []
        for key, r in table.items():
            c = key.partition("/")[0]
            err = f"{r['errors']}" + (f" ({r['error_sample']})" if r.get("error_sample") else "")
            out.append(
                f"| {label} concurrency {c} | {r['connections']} | {fmt(r['rps'])} "
                f"| {_x(r['rps'] / floor if floor else None)} | {fmt(r['p50_ms'], 3)} "
                f"| {fmt(r['p99_ms'], 3)} | {err} | {fmt(r['server_cpu'])} "
                f"| {fmt(r['environment_cpu'])} | {fmt(r['generator_cpu'])} |"
            )
        return out

    out = [
        f"`klambda up --processes {n}` (a leader and {n - 1} follower(s) on the same ports, "
        "SO_REUSEPORT; admission shared: docs/benchmarks.md) beside `klambda up` (one "
        "process) and the bare echo (one process), no-op at 1,769 MB. Each run lasts "
        f"{s['load_seconds']:g} s after a warm-up. The kernel spreads connections, not calls, "
        f"over the processes: ghz uses up to {pr['connections']} connections (the echo is "
        "measured over 1 and as many; its best is the floor), wrk one per caller. CPU columns "
        "are cores busy (1.00 = one full core of the 2), summed over the router processes.",
        "",
    ]
    if pr.get("ghz_missing"):
        out += ["_gRPC not measured: ghz could not be built (see How it was measured)._", ""]
    out += ["### gRPC (ghz)", "", *head]
    out += rows(pr["echo"]["grpc"], "bare grpc.aio echo,")
    out += rows(pr["klambda_n"]["grpc"], f"klambda, {n} processes,")
    out += rows(pr["klambda_1"]["grpc"], "klambda, 1 process,")
    out += ["", "### REST API (wrk, 1 thread, POST `{}`)", "", *head]
    out += rows(pr["echo"]["rest"], "bare aiohttp echo,")
    out += rows(pr["klambda_n"]["rest"], f"klambda, {n} processes,")
    out += rows(pr["klambda_1"]["rest"], "klambda, 1 process,")
    out += [
        "",
        "### What a call costs (at each best rate)",
        "",
        "| | router processes µs/call | environments µs/call | load generator µs/call |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (("klambda_n", f"{n} processes"), ("klambda_1", "1 process")):
        for proto in ("grpc", "rest"):
            table = pr[key][proto]
            if not table:
                continue
            r = max(table.values(), key=lambda v: v["rps"])
            out.append(
                f"| {proto} ({'ghz' if proto == 'grpc' else 'wrk'}), {label}, concurrency "
                f"{max(table, key=lambda k: table[k]['rps'])} "
                f"| {fmt(r['server_cpu_per_call_us'], 1)} "
                f"| {fmt(r['environment_cpu_per_call_us'], 1)} "
                f"| {fmt(r['generator_cpu_per_call_us'], 1)} |"
            )
    adm = pr["admission"]
    ex = pr["exactness"]
    out += [
        "",
        f"Admission alone (acquire + release, in this process): {fmt(adm['in_memory_us'], 2)} µs "
        f"in memory (one router process), {fmt(adm['shared_us'], 2)} µs in the shared file "
        "under `flock`.",
        "",
        f"**Exactness.** {ex['callers']} gRPC callers (a connection each) for {ex['seconds']:g} s "
        f"call a function with reserved concurrency {ex['reserved']} that sleeps 20 ms and "
        "returns when it ran: "
        f"{', '.join(f'{k}: {v:,}' for k, v in ex['outcomes'].items())}; the most running "
        f"at once (from the handlers' own start and end times): **{ex['most_at_once']}**. "
        "Calls that ran, by router process: "
        + ", ".join(f"pid {k}: {v:,}" for k, v in ex["ran_on"].items())
        + ".",
    ]
    if pr.get("command"):  # measured in a run of its own, not the one this file heads
        out += ["", f"This part's own run: `{pr['command']}` at {pr['started']}."]
    return out


def latency_section(results: dict[str, Any]) -> list[str]:
    lat = results["parts"].get("latency")
    if not lat:
        return [_missing(results, "latency") or ""]
    echo = lat["echo"]["p50_ms"]
    out = [
        "One call at a time from one grpc.aio client in the benchmark process; blocks of "
        f"{results['sizes']['latency_calls']} calls alternate between the targets "
        f"({results['sizes']['latency_rounds']} rounds).",
        "",
        "| path | p50 ms | p99 ms | mean ms | p50 x echo |",
        "| --- | --- | --- | --- | --- |",
    ]
    names = {
        "direct": "handler called in-process (no I/O)",
        "in_process": "klambda's invoke path called in-process (no gRPC: `Invoker.invoke` → "
        "environment → back)",
        "echo": "bare grpc.aio echo, 2 processes",
        "noop": "klambda no-op, 1,769 MB (1 vCPU)",
        "noop-128": "klambda no-op, 128 MB (0.07 vCPU)",
    }
    for key, label in names.items():
        s = lat[key]
        out.append(
            f"| {label} | {fmt(s['p50_ms'], 4)} | {fmt(s['p99_ms'], 4)} | {fmt(s['mean_ms'], 4)} "
            f"| {_x(s['p50_ms'] / echo if echo else None)} |"
        )
    cpu = lat["cpu_per_invoke_us"]
    ip = lat["in_process"]["cpu_per_invoke_us"]
    out += [
        "",
        f"CPU per warm invoke (1,769 MB), full gRPC path: router {fmt(cpu['router'])} µs, "
        f"environment {fmt(cpu['environment'])} µs. The invoke path called in-process: "
        f"{fmt(ip['router'])} µs in the calling process, {fmt(ip['environment'])} µs in the "
        "environment.",
    ]
    return out


def _load_table(rows: dict[str, Any], label: str, sat: float) -> list[str]:
    out = []
    for key, r in rows.items():
        err = f"{r['errors']}" + (f" ({r['error_sample']})" if r.get("error_sample") else "")
        out.append(
            f"| {label.format(key=key)} | {fmt(r['rps'])} | {_x(r['rps'] / sat if sat else None)} "
            f"| {fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} | {err} | {fmt(r['server_cpu'])} "
            f"| {fmt(r['environment_cpu'])} | {fmt(r['generator_cpu'])} |"
        )
    return out


def throughput_section(results: dict[str, Any]) -> list[str]:
    s = results["sizes"]
    head = [
        "| target | calls/s | x echo sat. | p50 ms | p99 ms | errors | router/server CPU "
        "| environments CPU | load gen. CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    out = [
        f"Each run lasts {s['load_seconds']:g} s after a warm-up at the same concurrency "
        "(environments already started). CPU columns are cores busy on average "
        "(1.00 = one full core of the 2). Memory sizes: 1,769 MB is one vCPU after init "
        "(local mode's cgroup CPU quota memoryMB/1769), 128 MB is 0.07 vCPU per environment.",
        "",
        "### gRPC (ghz, 1 connection)",
        "",
    ]
    g = results["parts"].get("grpc")
    if g:
        sat = g["echo_saturation_rps"]
        out += head
        out += _load_table(g["echo"], "bare grpc.aio echo, concurrency {key}", sat)
        for key, r in g["klambda"].items():
            fn, _, c = key.partition("@")
            label = {
                "noop": "no-op 1,769 MB",
                "sleep5": "sleep 5 ms 1,769 MB",
                "noop-128": "no-op 128 MB",
                "sleep5-128": "sleep 5 ms 128 MB",
            }[fn]
            out += _load_table({key: r}, f"klambda {label}, concurrency {c}", sat)
    else:
        out.append(_missing(results, "grpc") or "")
    out += ["", "### REST API (wrk, 1 thread, POST `{}`)", ""]
    rest = results["parts"].get("rest")
    if rest:
        sat = rest["echo_saturation_rps"]
        out += head
        out += _load_table(rest["echo"], "bare aiohttp echo, concurrency {key}", sat)
        out += _load_table(rest["klambda"], "klambda no-op 1,769 MB, concurrency {key}", sat)
    else:
        out.append(_missing(results, "rest") or "")
    return out


def cold_section(results: dict[str, Any]) -> list[str]:
    c = results["parts"].get("cold")
    if not c:
        return [_missing(results, "cold") or ""]
    out = [
        f"Each cold invoke goes to a function never invoked before ({int(c['cold']['n'])} "
        "functions `cold-NNN` in the manifests), so the router forks a new environment from "
        "the zygote, runs init, then invokes; the reply's REPORT line must show an "
        "`Init Duration`. Each is paired with a bare interpreter started just before it. "
        "Measured from the gRPC client: request sent → reply received.",
        "",
        "| what | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (
        ("cold", "klambda cold invoke (no-op, 1,769 MB), end to end"),
        ("init", "… of which Init Duration (in the environment, after fork)"),
        ("bare_python", f"`{c['bare_command']}`"),
    ):
        s = c[key]
        out.append(f"| {label} | {fmt(s['p50_ms'])} | {fmt(s['p99_ms'])} | {fmt(s['mean_ms'])} |")
    nc = c.get("without_cgroups")
    if nc:
        out.append(
            f"| klambda cold invoke on a second router started with `--no-cgroups` (no "
            f"memory/CPU cgroup per environment), taking turns with the first "
            f"| {fmt(nc['cold']['p50_ms'])} | {fmt(nc['cold']['p99_ms'])} "
            f"| {fmt(nc['cold']['mean_ms'])} |"
        )
        if "init" in nc:
            out.append(
                f"| … of which Init Duration | {fmt(nc['init']['p50_ms'])} "
                f"| {fmt(nc['init']['p99_ms'])} | {fmt(nc['init']['mean_ms'])} |"
            )
    out += [
        "",
        f"Cold start p50 / bare interpreter p50 = **{_x(c['ratio_p50_vs_bare'])}**.",
        "",
        "Heavy init: the handler module imports heavy modules at init. *Import alone* is "
        "timed inside a fresh interpreter around the import statement; *interpreter + "
        "import* is the wall time of that fresh interpreter. The zygote has already "
        "imported what the runtime needs (json, decimal, logging, …), so a forked "
        "environment does not pay for those again.",
        "",
        "| handler imports | cold invoke p50 ms | Init Duration p50 ms | import alone p50 ms "
        "| interpreter + import p50 ms | cold / import alone |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for h in c["heavy"].values():
        out.append(
            f"| `{h['modules']}` | {fmt(h['cold']['p50_ms'])} | {fmt(h['init']['p50_ms'])} "
            f"| {fmt(h['import_alone']['p50_ms'])} | {fmt(h['interpreter_and_import']['p50_ms'])} "
            f"| {_x(h['ratio_cold_vs_import'])} |"
        )
    no_cg = [
        f"`{h['modules'].split(',')[0]}…` {fmt(h['cold_without_cgroups']['p50_ms'])} ms"
        for h in c["heavy"].values()
        if "cold_without_cgroups" in h
    ]
    if no_cg:
        out += [
            "",
            "The same heavy cold starts on the `--no-cgroups` router, p50: "
            + ", ".join(no_cg)
            + ".",
        ]
    return out


def peer_section(results: dict[str, Any]) -> list[str]:
    pe = results["parts"].get("peer")
    if not pe:
        return [_missing(results, "peer") or ""]
    c, w = pe["cold"], pe["warm"]
    return [
        f"AWS Lambda Runtime Interface Emulator `{pe['rie_binary'].rsplit('/', 1)[-1]}` "
        f"(built from its Go module) running `python -m awslambdaric app.handler` "
        f"(awslambdaric {pe['awslambdaric']} from PyPI, its own venv), the same no-op "
        "handler file. Both over HTTP (RIE has no gRPC), same clients, same run. RIE runs "
        "one request at a time and gives the runtime no CPU limit; klambda's function is "
        "1,769 MB (one vCPU after init).",
        "",
        "| what | klambda p50 ms | klambda p99 ms | RIE p50 ms | RIE p99 ms "
        "| klambda / RIE (p50) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| cold: first invoke (klambda: a never-invoked function; RIE: a fresh RIE, "
        f"runtime started by the invoke) | {fmt(c['klambda']['p50_ms'])} "
        f"| {fmt(c['klambda']['p99_ms'])} | {fmt(c['rie_first_invoke']['p50_ms'])} "
        f"| {fmt(c['rie_first_invoke']['p99_ms'])} | {_x(c['ratio_klambda_vs_rie'])} |",
        f"| warm, one keep-alive Python client, one call at a time "
        f"| {fmt(w['klambda']['p50_ms'], 3)} | {fmt(w['klambda']['p99_ms'], 3)} "
        f"| {fmt(w['rie']['p50_ms'], 3)} | {fmt(w['rie']['p99_ms'], 3)} "
        f"| {_x(w['ratio_klambda_vs_rie'])} |",
        f"| warm, wrk concurrency 1 | {fmt(w['wrk_klambda']['p50_ms'], 3)} "
        f"| {fmt(w['wrk_klambda']['p99_ms'], 3)} | {fmt(w['wrk_rie']['p50_ms'], 3)} "
        f"| {fmt(w['wrk_rie']['p99_ms'], 3)} "
        f"| {_x(w['wrk_klambda']['p50_ms'] / w['wrk_rie']['p50_ms'])} |",
        "",
        f"wrk at concurrency 1: klambda {fmt(w['wrk_klambda']['rps'])} calls/s, RIE "
        f"{fmt(w['wrk_rie']['rps'])} calls/s. RIE from process start to the first reply "
        f"(its own start + the runtime's): p50 "
        f"{fmt(c['rie_process_start_to_reply']['p50_ms'])} ms.",
    ]


BACKEND_LABELS = {"sqlite": "SQLite", "jetstream": "NATS JetStream"}


def async_section(results: dict[str, Any]) -> list[str]:
    a = results["parts"].get("async")
    if not a:
        return [_missing(results, "async") or ""]
    s = results["sizes"]
    out = [
        "Each backend gets a router of its own. Durability as shipped:",
        "",
    ]
    for name, b in a["backends"].items():
        out.append(f"- {BACKEND_LABELS[name]}: {b['durability']}.")
    out += [
        "",
        f"**Accept rate.** wrk (one thread, `X-Amz-Invocation-Type: Event`, only 202s "
        f"counted) for {s['async_seconds']:g} s at each connection count, then the "
        f"synchronous no-op REST invoke for {s['async_sync_seconds']:g} s at the same count "
        "on the same router. While they run, the dispatcher is held: its "
        f"{next(iter(a['backends'].values()))['workers']} workers are all busy in a function "
        "that waits for a file, so it leases nothing and the rate is the accept path alone. "
        "The events go to a function with reserved concurrency 0 (kept, never run). "
        "CPU columns are cores busy (1.00 = one full core of the 2).",
        "",
        "| backend | connections | events/s (202) | p50 ms | p99 ms | errors "
        "| sync no-op calls/s | sync p99 ms | events / sync | router µs per event "
        "| router µs per sync call | router CPU | nats-server CPU | wrk CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, b in a["backends"].items():
        for c, ev in b["accept"]["event"].items():
            sy = b["accept"]["sync"][c]
            out.append(
                f"| {BACKEND_LABELS[name]} | {c} | {fmt(ev['rps'])} | {fmt(ev['p50_ms'], 3)} "
                f"| {fmt(ev['p99_ms'], 3)} | {ev['errors']} | {fmt(sy['rps'])} "
                f"| {fmt(sy['p99_ms'], 3)} "
                f"| {_x(ev['rps'] / sy['rps'] if sy['rps'] else None)} "
                f"| {fmt(ev['router_cpu_per_call_us'])} | {fmt(sy['router_cpu_per_call_us'])} "
                f"| {fmt(ev['router_cpu'])} "
                f"| {'-' if ev['server_cpu'] is None else fmt(ev['server_cpu'])} "
                f"| {fmt(ev['generator_cpu'])} |"
            )
    procs = a.get("processes") or {}
    if procs:
        n = next(iter(procs.values()))["processes"]
        out += [
            "",
            f"**Accept rate with every core** (`klambda up --processes {n}`, a queue of its "
            "own, the dispatcher held the same way): every router process accepts events "
            "into the one queue (the same SQLite file, under its lock; the same JetStream "
            "stream) and the leader's dispatcher runs them. Router CPU is the sum of the "
            "processes'.",
            "",
            "| backend | processes | connections | events/s (202) | p50 ms | p99 ms | errors "
            "| x one process | router µs per event | router CPU | nats-server CPU | wrk CPU |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, pr in procs.items():
            one_ev = a["backends"][name]["accept"]["event"]
            for c, ev in pr["event"].items():
                base = one_ev.get(c)
                out.append(
                    f"| {BACKEND_LABELS[name]} | {pr['processes']} | {c} | {fmt(ev['rps'])} "
                    f"| {fmt(ev['p50_ms'], 3)} | {fmt(ev['p99_ms'], 3)} | {ev['errors']} "
                    f"| {_x(ev['rps'] / base['rps'] if base and base['rps'] else None)} "
                    f"| {fmt(ev['router_cpu_per_call_us'])} | {fmt(ev['router_cpu'])} "
                    f"| {'-' if ev['server_cpu'] is None else fmt(ev['server_cpu'])} "
                    f"| {fmt(ev['generator_cpu'])} |"
                )
    out += [
        "",
        "The targets table judges the 202 p99 at the smallest connection count that "
        "accepted 5,000 events/s (the load the target names), else at the fastest. "
        "Events accepted in those runs, counted by wrk / by the router "
        "(`klambda_async_events_received_total`; a few were in flight when wrk stopped) / "
        "invoked: "
        + "; ".join(
            f"{BACKEND_LABELS[n]} {b['accept']['accepted']:,} / {b['accept']['received']:,.0f} "
            f"/ {b['accept']['invoked']:,.0f}"
            for n, b in a["backends"].items()
        )
        + ".",
        "",
        f"**End to end.** wrk submits events for {s['async_burst_seconds']:g} s "
        f"({s['async_burst_c']} connection{'s' * (s['async_burst_c'] != 1)}) to a no-op "
        "(`retryAttempts: 0`) that appends (submit time from the payload, its own start "
        "time) to a file, while the dispatcher drains them; the run ends when every event "
        "the router counted as received has run. End-to-end events/s = events / (last "
        "handler start - first submit); the drain rate counts the events that started after "
        "the last submit, over that tail (the dispatcher alone on the router). Submit → "
        "handler start includes the wait in the backlog. *One at a time*: "
        f"{s['async_paced']} events from a Python client, 2 ms apart, with the dispatcher "
        "idle: the path's own delay (202, wake the receiver, lease, invoke).",
        "",
        "| backend | events | accepted/s while draining | 202 p99 ms | end-to-end events/s "
        "| drain events/s | submit → start p50 / p99 ms | router µs per event "
        "| one at a time: 202 p50 / p99 ms | one at a time: submit → start p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, b in a["backends"].items():
        bu, pa = b["burst"], b["paced"]
        out.append(
            f"| {BACKEND_LABELS[name]} | {bu['events']:,} | {fmt(bu['accept_rps'])} "
            f"| {fmt(bu['accept_p99_ms'], 3)} | {fmt(bu['end_to_end_rps'])} "
            f"| {fmt(bu['drain_rps'])} | {fmt(bu['submit_to_start']['p50_ms'])} / "
            f"{fmt(bu['submit_to_start']['p99_ms'])} | {fmt(bu['router_cpu_per_event_us'])} "
            f"| {fmt(pa['accept']['p50_ms'], 3)} / {fmt(pa['accept']['p99_ms'], 3)} "
            f"| {fmt(pa['submit_to_start']['p50_ms'], 3)} / "
            f"{fmt(pa['submit_to_start']['p99_ms'], 3)} |"
        )
    return out


def scale_section(results: dict[str, Any]) -> list[str]:
    sc = results["parts"].get("scale")
    if not sc:
        return [_missing(results, "scale") or ""]
    m = sc["environment_memory"]
    z = sc["zygote_memory"]
    return [
        f"{sc['environments']} provisioned environments of one {sc['memory_mb']} MB no-op "
        "function (alias `live` → version 1), asked for with "
        "`PUT /2019-09-30/functions/scale/provisioned-concurrency?Qualifier=live` and "
        "polled until READY. Memory from `/proc/<pid>/smaps_rollup` of every environment "
        "process (the zygote's children).",
        "",
        "| what | figure |",
        "| --- | --- |",
        f"| time to bring {sc['environments']} up (PUT → READY) | {fmt(sc['bring_up_s'])} s "
        f"({fmt(sc['per_environment_ms'])} ms each, started one after another) |",
        f"| PSS per idle environment (median / mean) | {fmt(m['pss_mb_median'])} / "
        f"{fmt(m['pss_mb_mean'])} MB |",
        f"| USS per idle environment (private pages, median) | {fmt(m['uss_mb_median'])} MB |",
        f"| RSS per idle environment (median, counts shared pages in full) "
        f"| {fmt(m['rss_mb_median'])} MB |",
        f"| PSS of all {m['count']} environments | {fmt(m['pss_mb_total'])} MB |",
        f"| zygote PSS / RSS | {fmt(z['pss_mb_median'])} / {fmt(z['rss_mb_median'])} MB |",
        f"| router PSS before → after | {fmt(sc['router_memory_before']['pss_mb_median'])} → "
        f"{fmt(sc['router_memory_after']['pss_mb_median'])} MB |",
    ]


def pool_section(results: dict[str, Any]) -> list[str]:
    po = results["parts"].get("pool")
    if not po:
        return [_missing(results, "pool") or ""]
    c, lo = po["cold_cluster"], po["cold_local"]
    w, wl = po["warm_cluster"], po["warm_local"]
    ph, pm = po["phases_p50_ms"], po["phases_mean_ms_from_metric"]
    return [
        f"Cold starts in the cluster path on this machine (no kind yet): the tests' control "
        f"plane, the operator keeping a pool of {po['pool_size']} python3.11 pods, the pods' "
        "workers run as processes on a test host in a network namespace (the only emulated "
        "part of a node), a cluster router. Each measured call goes to a function never "
        f"invoked ({int(c['n'])} of them, 128 MB no-ops), through the cluster router (a pool "
        "pod specialised for it) and through a local router (`klambda up`) in turn, with the "
        "same gRPC client. The kind figures (pods, a CNI, a real kubelet) come with the kind "
        "path.",
        "",
        "| | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- |",
        f"| cold, cluster path through a pool pod | {fmt(c['p50_ms'])} | {fmt(c['p99_ms'])} "
        f"| {fmt(c['mean_ms'])} |",
        f"| cold, local (`klambda up`) | {fmt(lo['p50_ms'])} | {fmt(lo['p99_ms'])} "
        f"| {fmt(lo['mean_ms'])} |",
        f"| warm, cluster path (router → worker over the veth) | {fmt(w['p50_ms'], 3)} "
        f"| {fmt(w['p99_ms'], 3)} | {fmt(w['mean_ms'], 3)} |",
        f"| warm, local | {fmt(wl['p50_ms'], 3)} | {fmt(wl['p99_ms'], 3)} "
        f"| {fmt(wl['mean_ms'], 3)} |",
        "",
        f"Cluster cold p50 / local cold p50 = {_x(po['ratio_cold_cluster_vs_local'])}; warm "
        f"p50 difference (cluster - local) {fmt(po['warm_difference_p50_ms'], 3)} ms.",
        "",
        "Where a cluster cold start's time goes (REPORT line of each call, p50; and the mean "
        "of `klambda_cold_start_phase_seconds` at the router):",
        "",
        "| phase | p50 ms | mean ms (metric) |",
        "| --- | --- | --- |",
        *(f"| {name} | {fmt(ph.get(name), 3)} | {fmt(pm.get(name), 3)} |" for name in COLD_PHASES),
        f"| the rest (routing, two gRPC hops, the client) | {fmt(po['unaccounted_p50_ms'], 3)} | |",
    ]


def runtimeapi_section(results: dict[str, Any]) -> list[str]:
    ra = results["parts"].get("runtimeapi")
    if not ra:
        return [_missing(results, "runtimeapi") or ""]
    labels = {
        "fork": "python3.11, forked from the zygote",
        "awslambdaric": "awslambdaric through the Runtime API",
        "tutorial": "AWS's tutorial runtime (bash + curl) through the Runtime API",
    }
    rows = []
    for path in ra["paths"]:
        p = ra[path]
        c, i, w = p["cold"], p["init"], p["warm"]
        rows.append(
            f"| {labels.get(path, path)} | {fmt(c['p50_ms'])} | {fmt(c['p99_ms'])} "
            f"| {fmt(i['p50_ms'])} | {fmt(w['p50_ms'], 3)} | {fmt(w['p99_ms'], 3)} "
            f"| {_x(p.get('cold_p50_over_fork'))} | {_x(p.get('warm_p50_over_fork'))} |"
        )
    n_cold = int(ra["fork"]["cold"]["n"])
    n_warm = int(ra["fork"]["warm"]["n"])
    return [
        "The same no-op handler on the fork path and through the Runtime API (one loopback "
        "listener per environment, the runtime a process of its own started in the "
        f"environment's cgroup), 128 MB, one router's gRPC Invoke: {n_cold} cold starts and "
        f"{n_warm} warm calls per path, the paths in turn (bench/runtimeapi.py)."
        + (f" Measured {ra['measured']}." if ra.get("measured") else ""),
        "",
        "| path | cold p50 ms | cold p99 ms | Init Duration p50 ms | warm p50 ms "
        "| warm p99 ms | cold / fork | warm / fork |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "At 128 MB an environment gets 7 % of a CPU after init, on every path: the bash "
        "runtime's warm figure is two curl processes and a few forks per call at that speed "
        "(as it would be on Lambda); awslambdaric's cold start is a fresh interpreter "
        "importing the client, which the fork path's zygote has already paid for.",
    ]


def kind_section(results: dict[str, Any]) -> list[str]:
    k = results["parts"].get("kind")
    if not k:
        return [_missing(results, "kind") or ""]
    c, w, wl = k["cold"], k["warm_cluster"], k["warm_local"]
    ph, pm = k["phases_p50_ms"], k["phases_mean_ms_from_metric"]
    b, e = k["burst"], k["empty_pool"]
    via = k["cluster"].get("client_target", "127.0.0.1 (docker-proxy)")
    relayed = k.get("warm_cluster_docker_proxy")
    return [
        f"On a real kind cluster (`{k['cluster']['name']}`, one node, klambda's images, the "
        "chart's pool of two python3.11 pods of 128 MB), from the host through the router's "
        f"gRPC NodePort at {via} with one grpc.aio client. Cold: each call goes to a function "
        f"never invoked ({int(c['n'])} of them, 128 MB no-ops) while the pool has two ready "
        "pods. Warm: the three warm paths in turns, 10 blocks each.",
        "",
        "| | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- |",
        f"| cold through a warm pool pod | {fmt(c['p50_ms'])} | {fmt(c['p99_ms'])} "
        f"| {fmt(c['mean_ms'])} |",
        f"| warm, router → worker pod | {fmt(w['p50_ms'], 3)} | {fmt(w['p99_ms'], 3)} "
        f"| {fmt(w['mean_ms'], 3)} |",
        *(
            [
                f"| warm, router → worker pod, through docker's published port on 127.0.0.1 "
                f"| {fmt(relayed['p50_ms'], 3)} | {fmt(relayed['p99_ms'], 3)} "
                f"| {fmt(relayed['mean_ms'], 3)} |"
            ]
            if relayed
            else []
        ),
        f"| warm, local (`klambda up`, same client) | {fmt(wl['p50_ms'], 3)} "
        f"| {fmt(wl['p99_ms'], 3)} | {fmt(wl['mean_ms'], 3)} |",
        f"| cold from an empty pool (`pool.size=0`: the version's Deployment scaled from "
        f"zero, {int(e['cold']['n'])} calls) | {fmt(e['cold']['p50_ms'])} "
        f"| {fmt(e['cold']['p99_ms'])} | {fmt(e['cold']['mean_ms'])} |",
        "",
        f"Warm p50 difference (cluster - local) {fmt(k['warm_difference_p50_ms'], 3)} ms. "
        "Throughput of one worker pod (one environment, the calls in sequence, from the mean "
        f"above): {fmt(1000 / w['mean_ms'])} calls/s through the cluster, "
        f"{fmt(1000 / wl['mean_ms'])} calls/s local.",
        "",
        *(
            f"A burst of {x['calls']} first calls to as many functions at once, with a pool "
            f"of {x.get('pool_size', 2)} ready pods: {x['calls'] - x['failed']} answered, "
            f"p50 {fmt((x.get('answered') or {}).get('p50_ms'))} ms, p95 "
            f"{fmt((x.get('answered') or {}).get('p95_ms'))} ms = "
            f"{_x(x.get('p95_vs_cold_p50'))} the single cold p50; {x['failed']} failed"
            f" ({'; '.join(' '.join(f.split())[:160] for f in x['failures']) or 'none'})."
            + (
                f" Its slowest call: {fmt(x['slowest']['ms'])} ms, of which the pod's phases "
                + ", ".join(f"{p} {fmt(v, 3)}" for p, v in x["slowest"]["phases_ms"].items())
                + f" ms, and the rest (the router, waits, the network) "
                f"{fmt(x['slowest']['rest_ms'])} ms."
                if x.get("slowest")
                else ""
            )
            + "\n"
            for x in (k.get("burst_small_pool"), b)
            if x
        ),
        "",
        "Where a cold start through the pool goes (REPORT line of each call, p50; the mean of "
        "`klambda_cold_start_phase_seconds` at the router):",
        "",
        "| phase | p50 ms | mean ms (metric) |",
        "| --- | --- | --- |",
        *(f"| {name} | {fmt(ph.get(name), 3)} | {fmt(pm.get(name), 3)} |" for name in COLD_PHASES),
        f"| the rest (routing, NodePort, the client, the hops to the pod: Specialise and "
        f"the call over the invoke lane) "
        f"| {fmt(k['unaccounted_p50_ms'], 3)} | |",
        *(
            ["", f"This part's own run: `{k['command']}` at {k['started']} ({k['load']})."]
            if k.get("command")
            else []
        ),
    ]


def metrics_section(results: dict[str, Any]) -> list[str]:
    m = results["parts"].get("metrics")
    if not m:
        return [_missing(results, "metrics") or ""]
    out = [
        "There is no switch to turn metrics off, so throughput with and without them "
        "cannot be compared directly. Measured instead:",
        "",
        f"- `GET /metrics` with **{m['series']} series** ({m['bytes']:,} bytes): p50 "
        f"{fmt(m['scrape']['p50_ms'])} ms, p99 {fmt(m['scrape']['p99_ms'])} ms over "
        f"{int(m['scrape']['n'])} scrapes on a keep-alive connection.",
        f"- The metric updates of one warm invoke (gauges in/out, invocation counter, "
        f"duration histogram, billed GB-s, cost, max memory), run in-process: "
        f"**{fmt(m['updates_per_invoke_us'])} µs** per invoke.",
    ]
    for label, us in m["router_cpu_per_call_us"].items():
        share = m["share_of_router_cpu"].get(label)
        out.append(
            f"- Router CPU per invoke, {label}: {fmt(us)} µs → metrics are "
            f"{'n/a' if share is None else f'{share * 100:.1f} %'} of it (the throughput they "
            "cost while the router's core is the bottleneck)."
        )
    return out


def profile_section(results: dict[str, Any]) -> list[str]:
    pr = results["parts"].get("profile")
    if not pr:
        return [_missing(results, "profile") or ""]
    if "skipped" in pr:
        return [f"_Not profiled: {pr['skipped']}_"]
    out = [
        f"py-spy (`record --nonblocking`, 250 Hz, on-CPU samples only) while "
        f"{pr['driver']} drives the router. Share of each process kind's samples "
        f"({', '.join(f'{k}: {v}' for k, v in pr['samples'].items())}).",
    ]
    out += [
        "",
        "Reading it: `Handle._run` self time is C code run from event-loop callbacks (gRPC's "
        "core through cygrpc, socket calls); `Thread.run` is grpc.aio's polling thread; "
        "`EpollSelector.select` is the loop waiting on sockets. klambda's own functions are "
        "the *total* column.",
    ]
    for kind in ("router", "environment"):
        d = pr.get(kind)
        if not d:
            continue
        out += [
            "",
            f"**{kind}**: top functions by self time, and by total time (self + callees)",
            "",
            "| self | % | total | % |",
            "| --- | --- | --- | --- |",
        ]
        for (sf, sv), (tf, tv) in zip(d["self"][:12], d["total"][:12], strict=False):
            out.append(f"| `{sf}` | {sv * 100:.1f} | `{tf}` | {tv * 100:.1f} |")
    return out


def dominates(results: dict[str, Any]) -> list[str]:
    """What the CPU split says, in words, from this run's figures."""
    g = results["parts"].get("grpc")
    out: list[str] = []
    if g:
        for key in ("noop@50", "noop@10"):
            r = g["klambda"].get(key)
            if r:
                out.append(
                    f"- At {key.replace('@', ', concurrency ')} the router process used "
                    f"{fmt(r['server_cpu'])} cores, the environments {fmt(r['environment_cpu'])}, "
                    f"ghz {fmt(r['generator_cpu'])}: "
                    + (
                        "the router's single Python thread is the bottleneck, not the environments."
                        if r["server_cpu"] > 0.85
                        else "the router is not saturated."
                    )
                )
                break
        e = g["echo"].get("50") or next(iter(g["echo"].values()))
        lat = results["parts"].get("latency")
        row = g["klambda"].get("noop@50")
        if lat and row:
            total = row["server_cpu_per_call_us"]
            grpc_part = e["server_cpu_per_call_us"]
            ours = lat["in_process"]["cpu_per_invoke_us"]["router"]
            rest = total - grpc_part - ours
            out.append(
                f"- Router CPU per call at concurrency 50: {fmt(total)} µs = the grpc.aio server's "
                f"own work (what the bare echo spends per call at its saturation: "
                f"{fmt(grpc_part)} µs, {grpc_part / total * 100:.0f} %) + klambda's invoke path "
                f"(measured in-process: {fmt(ours)} µs, {ours / total * 100:.0f} %) + the rest "
                f"({fmt(rest)} µs, {rest / total * 100:.0f} %: the handoff between gRPC's "
                "callbacks and klambda's task, and running with 50 calls in flight on a "
                "busy event loop)."
            )
        if lat and row:
            return out
        out.append(
            f"- The bare echo at its saturation used {fmt(e['server_cpu'])} cores for "
            f"{fmt(e['server_cpu_per_call_us'])} µs of CPU per call; the router uses "
            + (
                f"{fmt(g['klambda']['noop@50']['server_cpu_per_call_us'])} µs per call"
                if "noop@50" in g["klambda"]
                else "more"
            )
            + " (gRPC server work + klambda's invoke path + the socketpair round trip)."
        )
    return out


def cold_dominates(results: dict[str, Any]) -> list[str]:
    c = results["parts"].get("cold")
    nc = c and c.get("without_cgroups")
    if not nc or "init" not in nc:
        return []
    gap = nc["init"]["p50_ms"] and c["init"]["p50_ms"] - nc["init"]["p50_ms"]
    head = (
        f"- Cold start: p50 {fmt(c['cold']['p50_ms'])} ms with a cgroup per environment "
        f"(Init Duration p50 {fmt(c['init']['p50_ms'])} ms, p99 {fmt(c['init']['p99_ms'])} ms) "
        f"against {fmt(nc['cold']['p50_ms'])} ms without (Init Duration p50 "
        f"{fmt(nc['init']['p50_ms'])} ms, p99 {fmt(nc['init']['p99_ms'])} ms), taking turns. "
    )
    if gap > 3:
        why = (
            "The difference is moving the new process into its cgroup (`cgroup.procs`), "
            "which waits for an RCU grace period"
        )
    else:
        why = (
            "Close at the median in this run: moving the new process into its cgroup "
            "(`cgroup.procs`) waits for an RCU grace period only when no migration happened "
            "just before, which shows in the tail and, in other runs, at the median"
        )
    return [head + why + "; see docs/benchmarks.md for the measurement and the fix."]


def inprocess_profile(results: dict[str, Any]) -> list[str]:
    lat = results["parts"].get("latency")
    if not lat:
        return []
    out = [
        "",
        "cProfile of klambda's invoke path called in-process (wall time, so `send` includes "
        "the moments the kernel runs the woken environment on the caller's core; cProfile "
        "itself slows Python calls, so read shares, not microseconds):",
        "",
        "| function | self % | total % |",
        "| --- | --- | --- |",
    ]
    for row in lat["in_process"]["profile"]:
        out.append(f"| `{row['function']}` | {row['self'] * 100:.1f} | {row['total'] * 100:.1f} |")
    return out


def logs_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(num, target, measured, met) rows of the logs part."""
    lg = results["parts"].get("logs")
    if not lg:
        return []
    ing, mil = lg["ingestion"], lg["million"]
    r = ing["ratio_p50"]
    slowest = max(mil["queries"].items(), key=lambda kv: kv[1]["median_s"])
    return [
        (
            "7",
            "log ingestion moves warm p50 by ≤ 3 % (store on vs off, same run)",
            f"{fmt(ing['store']['p50_ms'], 3)} ms vs {fmt(ing['no_store']['p50_ms'], 3)} ms "
            f"= {_x(r)}",
            r <= 1.03,
        ),
        *(
            [
                (
                    "7",
                    "shipping to the cluster's log engine moves warm p50 by ≤ 3 % (same run)",
                    f"{fmt(sh['shipping']['p50_ms'], 3)} ms vs "
                    f"{fmt(sh['no_shipping']['p50_ms'], 3)} ms = {_x(sh['ratio_p50'])}",
                    sh["ratio_p50"] <= 1.03,
                )
            ]
            if (sh := lg.get("shipping"))
            else []
        ),
        (
            "7",
            f"an Insights query over {mil['records']:,} records ≤ 1 s (local mode)",
            f"slowest median {mil['slowest_s']:.3f} s ({slowest[0]})",
            mil["slowest_s"] <= 1.0,
        ),
    ]


def logs_section(results: dict[str, Any]) -> list[str]:
    missing = _missing(results, "logs")
    if missing:
        return [missing]
    lg = results["parts"]["logs"]
    ing, mil = lg["ingestion"], lg["million"]
    out = [
        "Two routers serve a function that prints a line (four records a call); one ingests "
        "its records into the store every second, the other has the store off. One grpc.aio "
        f"client alternates blocks of calls between them ({ing['calls_each']:,} calls each).",
        "",
        "| router | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (("store", "log store on"), ("no_store", "log store off")):
        row = ing[key]
        out.append(
            f"| {label} | {fmt(row['p50_ms'], 4)} | {fmt(row['p99_ms'], 4)} "
            f"| {fmt(row['mean_ms'], 4)} |"
        )
    sh = lg.get("shipping")
    if sh:
        out += [
            "",
            "The same between a router shipping every record to a real VictoriaLogs (the worker "
            "pods' shipper, `KLAMBDA_LOG_ENGINE_URL`) and one without, both with the store off "
            f"({sh['calls_each']:,} calls each; {sh['records_shipped']:,} records shipped):",
            "",
            "| router | p50 ms | p99 ms | mean ms |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in (("shipping", "shipping on"), ("no_shipping", "shipping off")):
            row = sh[key]
            out.append(
                f"| {label} | {fmt(row['p50_ms'], 4)} | {fmt(row['p99_ms'], 4)} "
                f"| {fmt(row['mean_ms'], 4)} |"
            )
    out += [
        "",
        f"{mil['records']:,} records of ten functions (Text and JSON formats, 50 streams, one "
        f"hour) written as the router writes them in {mil['write_s']:.1f} s, ingested in "
        f"{mil['ingest_s']:.1f} s ({mil['ingest_per_s']:,.0f} records/s; database "
        f"{mil['database_bytes'] / 2**20:.0f} MiB). Each query runs through `run_query` (parse, "
        "compile, DuckDB, statistics), the median of its runs:",
        "",
        "| query | median s | max s | rows |",
        "| --- | --- | --- | --- |",
    ]
    for label, q in mil["queries"].items():
        out.append(
            f"| {label}: `{q['query']}` | {q['median_s']:.3f} | {q['max_s']:.3f} | {q['rows']} |"
        )
    return out


def render(results: dict[str, Any]) -> str:
    mach = results["machine"]
    tools = results.get("tools", {})
    la0 = ", ".join(f"{x:.2f}" for x in mach["load_average_start"])
    la1 = ", ".join(f"{x:.2f}" for x in mach.get("load_average_end", ()))
    lines = [
        "# klambda benchmark results",
        "",
        "<!-- Written by `make bench` (bench/run.py); edits are overwritten. -->",
        "",
        f"Run `{results['command']}` (what `make bench` runs) at {results['started']}, "
        f"commit {mach['commit']}; it took {results['seconds']:.0f} s."
        + (" **Quick smoke run: tiny counts, figures not meaningful.**" * results["quick"]),
        "",
        "Every figure below is a pair or a ratio measured in the same run, because these "
        "machines are shared and noisy: compare the ratios, not absolute numbers across runs. "
        "Analysis of the figures and proposed fixes: [docs/benchmarks.md](../docs/benchmarks.md).",
        "",
        "## Machine",
        "",
        "| cores | CPU | memory | Python | kernel | load average (1, 5, 15 min) start → end "
        "| environment limits |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {mach['cores']} ({mach['cores_usable']} usable) | {mach['cpu_model']} "
        f"| {mach['memory_gib']:.0f} GiB | {mach['python']} | {mach['kernel']} | {la0} → {la1} "
        f"| {mach.get('environment_limits', 'n/a')} |",
        "",
        "## Targets",
        "",
        *targets(results),
        "",
        "## Hot path",
        "",
        HOPS,
        "",
        "## 1. Warm invoke latency",
        "",
        *latency_section(results),
        "",
        "## 2. Warm throughput",
        "",
        *throughput_section(results),
        "",
        "## 3. Cold start",
        "",
        *cold_section(results),
        "",
        "## 4. Async",
        "",
        *async_section(results),
        "",
        "## 5. Peer: AWS Runtime Interface Emulator + awslambdaric",
        "",
        *peer_section(results),
        "",
        "## 6. Scale",
        "",
        *scale_section(results),
        "",
        "## 7. Logs",
        "",
        *logs_section(results),
        "",
        "## 8. Cluster cold start through the warm pool",
        "",
        *pool_section(results),
        "",
        "## 9. The Runtime API path beside the fork path",
        "",
        *runtimeapi_section(results),
        "",
        "## 10. The cluster path on kind",
        "",
        *kind_section(results),
        "",
        "## 11. Burst: new environments of one function at once",
        "",
        *burst_section(results),
        "",
        "## 12. Every core: router processes",
        "",
        *processes_section(results),
        "",
        "## Long run",
        "",
        SOAK_LINK,
        "",
        "## Metrics cost",
        "",
        *metrics_section(results),
        "",
        "## What dominates",
        "",
        *(dominates(results) or ["_Needs the gRPC throughput part._"]),
        *cold_dominates(results),
        *inprocess_profile(results),
        "",
        *profile_section(results),
        "",
        "## How it was measured",
        "",
        "- `make bench` = `make venv setup` then `.venv/bin/python -m bench.run`. Parts can be "
        "selected: `python -m bench.run --parts latency,grpc,rest,metrics,cold,async,peer,"
        "profile,scale,pool,runtimeapi,kind,burst,processes`; `--quick` is the smoke run "
        "(tests/integration/bench/test_bench_smoke.py runs the parts that need no Go build; "
        "the pool part, which starts the Kubernetes control plane, is smoke-run on its own).",
        "- ghz and aws-lambda-rie are built from the Go module proxy by "
        "`bench/build-tools.sh` into `~/.cache/klambda/bin` (once; "
        "this run: "
        + (", ".join(f"{k} → `{v}`" for k, v in tools.get("paths", {}).items()) or "none")
        + (
            "; **failed: "
            + "; ".join(f"{k}: {v}" for k, v in tools.get("errors", {}).items())
            + "**"
            if tools.get("errors")
            else ""
        )
        + "). awslambdaric is pip-installed from PyPI into its own venv under "
        "`~/.cache/klambda`. wrk and nats-server are Debian's (`scripts/setup-system.sh`).",
        "- The router is `klambda up --quiet` (logs still go to the state folder's files, "
        "not echoed to the console) with cgroups on: each environment gets a memory limit "
        "and, after init, a CPU quota of memoryMB/1769 of a CPU.",
        "- The bare echo (`bench/echo.py`) serves the same `klambda.v1.Invoker/Invoke` "
        "messages as the router from a plain `grpc.aio` server (and an aiohttp POST handler "
        "for REST), in its own process, so ghz/wrk command lines are identical.",
        "- ghz's `-z` runs cancel the calls in flight at the end (`the client connection is "
        "closing`, `Canceled`); those are ghz stopping, not errors, and are left out of the "
        "errors column (results.json keeps them as `cancelled`). Calls/s counts successful "
        "calls only.",
        "",
    ]
    errors = {k: v for k, v in results["errors"].items()}
    if errors:
        lines += ["## Errors in this run", ""]
        lines += [f"- {k}: {v}" for k, v in errors.items()]
        lines.append("")
    return "\n".join(lines)
