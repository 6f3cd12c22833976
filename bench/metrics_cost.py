"""The cost of metrics: there is no switch to turn them off, so it is measured two ways.

- `/metrics` scrape time once the registry holds about 1,000 series (functions are
  invoked, each adding its invocation, duration, cost and memory series, until the
  count is reached), timed over a keep-alive connection.
- The metric updates one invocation makes on the router's hot path (the function's
  concurrency gauge in and out, the FunctionMetrics bundle), run in this process,
  against the router's own CPU time per invocation measured in the warm benchmarks: the
  share of the router's work that metrics are, which is the throughput they cost while
  the router is the bottleneck.
"""

from __future__ import annotations

import time
from typing import Any

from klambda.metrics import Metrics

from bench import clients, functions, stats
from bench.lab import Lab


def series_count(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def hot_path_updates_us(n: int = 20_000) -> float:
    """Microseconds of the metric updates one warm invoke makes (see router/invoke.py)."""
    m = Metrics()
    fm = m.of("noop", "$LATEST", "", "RequestResponse")
    gauge = m.concurrent.labels("noop")
    perf = time.perf_counter
    t0 = perf()
    # as Invoker._invoke_now and _account do: the per-function gauge child is cached, the
    # account and unreserved gauges are callbacks read at scrape time, not set per invoke
    for _ in range(n):
        gauge.inc()
        fm.invoked(True, 0.05, 1769, 20, None)
        gauge.dec()
    return (perf() - t0) / n * 1e6


def run(lab: Lab, router_cpu_per_call_us: dict[str, float]) -> dict[str, Any]:
    s = lab.sizes
    http = clients.HttpInvoker(lab.router.http_port)
    try:
        _, text = http.get("/metrics")
        count = series_count(text)
        for name in functions.cold_names("series", s.series_functions):
            if count >= s.series_target:
                break
            http.invoke(name)
            _, text = http.get("/metrics")
            count = series_count(text)
        http.get("/metrics")
        times = [http.get("/metrics")[0] for _ in range(s.scrapes)]
        _, text = http.get("/metrics")
    finally:
        http.close()
    per_invoke = hot_path_updates_us()
    shares = {k: per_invoke / v for k, v in router_cpu_per_call_us.items() if v and v == v}
    return {
        "series": series_count(text),
        "bytes": len(text),
        "scrape": stats.summary_ms(times),
        "updates_per_invoke_us": per_invoke,
        "router_cpu_per_call_us": router_cpu_per_call_us,
        "share_of_router_cpu": shares,
    }
