"""Logs: what the log store costs the invoke path, and how fast it answers.

1. Ingestion beside the hot path. Two routers serve the same function (it prints a line,
   so every call writes START, the line, END and REPORT): one with the log store
   ingesting every second, one with it off (`KLAMBDA_LOG_STORE=0`; its records still go
   to the same files). One grpc.aio client alternates blocks of calls between them, so
   both see the same noise; the store's p50 over the other's is the cost.
2. Queries over a million records. A million records of ten functions (Text and JSON
   formats, fifty streams, one hour) are written as the router writes them, ingested the
   way the router ingests them (timed: records per second), and each query of a set runs
   a few times through the same path as `klambda logs query` (parse, compile, DuckDB,
   statistics); the median of each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from klambda import logformat
from klambda.logs import insights, lines
from klambda.logstore import Ingester, LogStore
from klambda.logstore.query import run_query

from bench import clients, functions, stats
from bench.lab import Sizes
from bench.procs import router

PRINTER = "def handler(event, context):\n    print('handled', event.get('n'))\n    return None\n"

QUERIES = {
    "errors by 5-minute bin (regex)": "filter @message like /ERROR/ | stats count() by bin(5m)",
    "REPORT stats by function": 'filter @type = "REPORT" or @type = "platform.report" '
    "| stats avg(@duration), pct(@duration, 99), max(@maxMemoryUsed) by @log",
    "parse a regex, group": "parse @message /action=(?<action>[a-z]+)/ "
    "| stats count(*) as n by action | sort n desc",
    "parse a glob, count distinct": 'parse @message "user=* " as user '
    "| stats count_distinct(user) as users",
    "a JSON field": 'filter level = "ERROR" | stats count(*) as n by @log',
    "one request, newest first": 'filter @requestId = "r0012345" '
    "| fields @timestamp, @message | sort @timestamp desc | limit 20",
    "distinct requests per stream": "stats count_distinct(@requestId) as n by @logStream "
    "| sort n desc | limit 10",
    "latest 20 records (default)": "limit 20",
}


async def _alternate(on: str, off: str, rounds: int, calls: int) -> dict[str, list[float]]:
    a, b = clients.GrpcInvoker(on), clients.GrpcInvoker(off)
    samples: dict[str, list[float]] = {"store": [], "no_store": []}
    try:
        await a.timed("printer", 100)
        await b.timed("printer", 100)
        for i in range(rounds):
            order = [("store", a), ("no_store", b)]
            for key, client in order if i % 2 == 0 else reversed(order):
                samples[key] += await client.timed("printer", calls)
    finally:
        await a.close()
        await b.close()
    return samples


def ingestion_cost(work: Path, sizes: Sizes) -> dict[str, Any]:
    folder = work / "log-functions"
    folder.mkdir(parents=True, exist_ok=True)
    doc = functions.function("printer", PRINTER, functions.FULL_VCPU_MB)
    (folder / "printer.yaml").write_text(yaml.safe_dump(doc))
    # twice latency's calls, in blocks half as long: the machine's load drifts less within one
    rounds, calls = sizes.latency_rounds * 4, max(1, sizes.latency_calls // 2)
    with (
        router(folder, work / "store-on", env={"KLAMBDA_LOG_INGEST_SECONDS": "1"}) as on,
        router(folder, work / "store-off", env={"KLAMBDA_LOG_STORE": "0"}) as off,
    ):
        samples = asyncio.run(_alternate(on.grpc_target, off.grpc_target, rounds, calls))
        time.sleep(2.5)  # the last batch
        stored = on.state / "logs.duckdb" if on.state else None
    out: dict[str, Any] = {k: stats.summary_ms(v) for k, v in samples.items()}
    out["calls_each"] = len(samples["store"])
    out["ratio_p50"] = stats.ratio(out["store"]["p50_ms"], out["no_store"]["p50_ms"])
    out["store_file_bytes"] = stored.stat().st_size if stored and stored.exists() else None
    return out


def write_records(folder: Path, n: int, seed: int = 7) -> int:
    """n records of ten functions over the last hour, as the router writes them."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    start = now - 3600
    names = [f"fn{i}" for i in range(10)]
    files = {name: open(folder / lines.live_name(name), "w") for name in names}  # noqa: SIM115
    json_fmt = logformat.platform("JSON", "INFO")
    written = 0
    rid_n = 0
    try:
        while written < n:
            name = rnd.choice(names)
            stream = f"2026/01/01/[$LATEST]{name}s{rnd.randrange(5)}"
            rid = f"r{rid_n:07d}"
            rid_n += 1
            t = start + 3600 * written / n
            duration = rnd.expovariate(1 / 20)
            error = rnd.random() < 0.02
            who = f"user=u{rnd.randrange(1000)} action={rnd.choice(['buy', 'view', 'pay'])}"
            f = files[name]
            if int(name[2:]) % 2 == 0:  # Text format
                recs = [
                    logformat.start(rid, "$LATEST"),
                    f"[INFO]\t{logformat.timestamp(t)}\t{rid}\t{who}",
                    f"[ERROR]\t{logformat.timestamp(t)}\t{rid}\tERROR payment failed"
                    if error
                    else logformat.end(rid),
                    logformat.report(rid, duration, 512, 40 + rnd.randrange(20)),
                ]
            else:
                level = "ERROR" if error else "INFO"
                app = {"timestamp": logformat.timestamp(t), "level": level, "message": who,
                       "logger": "root", "requestId": rid}  # fmt: skip
                recs = [
                    json_fmt.start(rid, "$LATEST") or "",
                    json.dumps(app),
                    json_fmt.report(rid, duration, 512, 40 + rnd.randrange(20)) or "",
                ]
            for i, text in enumerate(recs):
                f.write(lines.encode(t + i * 0.0001, stream, rid, text))
            written += len(recs)
    finally:
        for f in files.values():
            f.close()
    return written


def queries(work: Path, sizes: Sizes) -> dict[str, Any]:
    folder = work / "million"
    t0 = time.perf_counter()
    written = write_records(folder / "logs", sizes.log_records)
    write_s = time.perf_counter() - t0
    store = LogStore(folder / "logs.duckdb")
    try:
        t0 = time.perf_counter()
        Ingester(store, folder / "logs").ingest_once()
        ingest_s = time.perf_counter() - t0
        count = store.count()
        end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        begin = end - dt.timedelta(hours=2)
        timed: dict[str, Any] = {}
        insights.parse("limit 1")  # the grammar is built once per process, not per query
        for label, q in QUERIES.items():
            runs = []
            rows = 0
            for _ in range(sizes.log_query_runs):
                result = run_query(store, q, [], begin, end)
                runs.append(result.seconds)
                rows = len(result.rows)
            timed[label] = {
                "query": q,
                "median_s": statistics.median(runs),
                "max_s": max(runs),
                "rows": rows,
                "scanned": result.scanned,
            }
    finally:
        store.close()
    return {
        "records": count,
        "written": written,
        "write_s": write_s,
        "ingest_s": ingest_s,
        "ingest_per_s": count / ingest_s if ingest_s else None,
        "database_bytes": (folder / "logs.duckdb").stat().st_size,
        "queries": timed,
        "slowest_s": max(v["median_s"] for v in timed.values()),
    }


def run(work: Path, sizes: Sizes) -> dict[str, Any]:
    return {"ingestion": ingestion_cost(work, sizes), "million": queries(work, sizes)}
