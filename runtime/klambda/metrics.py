"""Prometheus metrics with Lambda's names and meanings, prefix `klambda_`.

Labels stay bounded (function, version, alias, invocation_type, outcome, reason), never a
request id. Per-invocation updates go through `FunctionMetrics`, a bundle of label-bound
children cached per (function, version, alias), so the hot path does no label lookups.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from klambda.pricing import DEFAULT_PRICES, Prices, gb_seconds

# `_created` series double the counters and histograms for a timestamp nobody graphs
disable_created_metrics()  # type: ignore[no-untyped-call]

# 1 ms to 900 s (Lambda's longest timeout), so p50/p90/p99 come out of histogram_quantile.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
)
# The steps of a cold start take from tens of microseconds (code already at hand) to
# seconds (a big init): 0.1 ms to 60 s.
PHASE_BUCKETS = (0.0001, 0.00025, *(b for b in DURATION_BUCKETS if b <= 60.0))
MEMORY_BUCKETS = tuple(
    float(mb * 1024 * 1024) for mb in (32, 64, 128, 256, 512, 1024, 2048, 4096, 10240)
)
INVOKE = ("function", "version", "alias")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, prices: Prices = DEFAULT_PRICES):
        r = self.registry = registry or CollectorRegistry()
        self.prices = prices
        self.invocations = Counter(
            "klambda_invocations",
            "Invocations that ran the function (not throttled)",
            [*INVOKE, "invocation_type", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "klambda_errors",
            "Invocations that ended in a function error",
            [*INVOKE, "reason"],
            registry=r,
        )
        self.duration = Histogram(
            "klambda_duration_seconds",
            "Handler run time per invocation",
            INVOKE,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.cold_starts = Counter(
            "klambda_cold_starts",
            "Invocations that had to start an environment",
            ["function", "version"],
            registry=r,
        )
        self.init_duration = Histogram(
            "klambda_init_duration_seconds",
            "Environment init (handler module import) time",
            ["function", "version"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.cold_start_phases = Histogram(
            "klambda_cold_start_phase_seconds",
            "Where a cold start's time goes: code_download, specialise and environment_start "
            "(a pool pod in a cluster: the code, the pod made the version's, the "
            "environment's fork and connection), init (the handler module's import), "
            "handler (the first invocation)",
            ["function", "version", "phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.concurrent = Gauge(
            "klambda_concurrent_executions",
            "Invocations running now, per function",
            ["function"],
            registry=r,
        )
        self.account_concurrent = Gauge(
            "klambda_account_concurrent_executions",
            "Invocations running now, all functions",
            registry=r,
        )
        self.unreserved_concurrent = Gauge(
            "klambda_unreserved_concurrent_executions",
            "Invocations running now in functions without reserved concurrency",
            registry=r,
        )
        self.throttles = Counter(
            "klambda_throttles",
            "Invocations refused for lack of concurrency",
            ["function", "reason"],
            registry=r,
        )
        self.recursive_dropped = Counter(
            "klambda_recursive_invocations_dropped",
            "Invocations stopped as the 16th hop of a recursive loop (Lambda's "
            "RecursiveInvocationsDropped)",
            ["function"],
            registry=r,
        )
        self.environments = Gauge(
            "klambda_environments",
            "Live execution environments",
            ["function", "version", "state"],
            registry=r,
        )
        self.billed_gb_seconds = Counter(
            "klambda_billed_gb_seconds", "Billed duration times memory size", INVOKE, registry=r
        )
        self.cost = Counter(
            "klambda_estimated_cost_dollars",
            "Estimated cost before the free tier",
            INVOKE,
            registry=r,
        )
        self.max_memory = Histogram(
            "klambda_max_memory_used_bytes",
            "Peak memory of the environment per invocation",
            ["function", "version"],
            buckets=MEMORY_BUCKETS,
            registry=r,
        )
        self.provisioned_spillover = Counter(
            "klambda_provisioned_spillover_invocations",
            "Invocations of a version with provisioned concurrency served by an on-demand "
            "environment",
            INVOKE,
            registry=r,
        )
        self.provisioned_concurrent = Gauge(
            "klambda_provisioned_concurrent_executions",
            "Provisioned environments running an invocation now",
            ["function", "version"],
            registry=r,
        )
        self.provisioned_utilization = Gauge(
            "klambda_provisioned_concurrency_utilization",
            "Busy provisioned environments / provisioned concurrency (0-1)",
            ["function", "version"],
            registry=r,
        )
        self.provisioned_configured = Gauge(
            "klambda_provisioned_concurrency",
            "Provisioned concurrency configured",
            ["function", "version"],
            registry=r,
        )
        self.function_timeout = Gauge(
            "klambda_function_timeout_seconds",
            "The configured timeout of each version served",
            ["function", "version"],
            registry=r,
        )
        self._bundles: dict[tuple[str, str, str, str], FunctionMetrics] = {}

    def of(self, function: str, version: str, alias: str, invocation_type: str) -> FunctionMetrics:
        key = (function, version, alias, invocation_type)
        fm = self._bundles.get(key)
        if fm is None:
            fm = self._bundles[key] = FunctionMetrics(self, *key)
        return fm


class FunctionMetrics:
    """Label-bound children for one (function, version, alias, invocation type)."""

    def __init__(self, m: Metrics, function: str, version: str, alias: str, itype: str) -> None:
        labels = (function, version, alias)
        self.m = m
        self.success = m.invocations.labels(*labels, itype, "success")
        self.error = m.invocations.labels(*labels, itype, "error")
        self.duration = m.duration.labels(*labels)
        self.billed = m.billed_gb_seconds.labels(*labels)
        self.cost = m.cost.labels(*labels)
        self.max_memory = m.max_memory.labels(function, version)
        self.cold = m.cold_starts.labels(function, version)
        self.spillover = m.provisioned_spillover.labels(*labels)
        self.init = m.init_duration.labels(function, version)
        self._labels = labels
        self._phases: dict[str, Histogram] = {}

    def invoked(
        self,
        ok: bool,
        duration_ms: float,
        memory_mb: int,
        max_memory_mb: int,
        error_reason: str | None,
    ) -> float:
        (self.success if ok else self.error).inc()
        if error_reason is not None:
            self.m.errors.labels(*self._labels, error_reason).inc()
        self.duration.observe(duration_ms / 1000.0)
        gbs = gb_seconds(duration_ms, memory_mb)
        self.billed.inc(gbs)
        prices = self.m.prices
        self.cost.inc(prices.per_million_requests / 1_000_000 + gbs * prices.per_gb_second)
        if max_memory_mb:
            self.max_memory.observe(max_memory_mb * 1024 * 1024)
        return gbs

    def cold_start(
        self, init_ms: float, handler_ms: float, phases: Mapping[str, float] | None = None
    ) -> None:
        self.cold.inc()
        self.init.observe(init_ms / 1000.0)
        steps = {**(phases or {}), "init": init_ms, "handler": handler_ms}
        for phase, ms in steps.items():
            child = self._phases.get(phase)
            if child is None:
                child = self._phases[phase] = self.m.cold_start_phases.labels(
                    self._labels[0], self._labels[1], phase
                )
            child.observe(ms / 1000.0)
