"""A small in-memory time series per function, sampled from the router's Prometheus metrics.

The router reads its counters every few seconds (never on the invoke path) into a `Sample`
per function: cumulative counts summed over versions and aliases, the duration histogram's
cumulative buckets, and the gauges as they stand. Consecutive samples give a `Point` per
interval: invocations, errors, success rate, throttles, cold starts, cost, and the
duration's p50/p90/p99 from the buckets' increase, computed as Prometheus'
`histogram_quantile` does (linear within a bucket) so the console and Grafana agree.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import Metric

# metric family -> the Sample field its samples add to (counters are summed per function)
COUNTERS = {
    "klambda_invocations_total": "invocations",
    "klambda_errors_total": "errors",
    "klambda_throttles_total": "throttles",
    "klambda_cold_starts_total": "cold_starts",
    "klambda_estimated_cost_dollars_total": "cost",
}
GAUGES = {
    "klambda_concurrent_executions": "concurrent",
    "klambda_provisioned_concurrent_executions": "provisioned_busy",
    "klambda_provisioned_concurrency": "provisioned",
}
DURATION_BUCKET = "klambda_duration_seconds_bucket"


@dataclass(frozen=True)
class Sample:
    """One function's metrics at time `t` (epoch seconds): counters are cumulative."""

    t: float
    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    cold_starts: float = 0.0
    cost: float = 0.0
    concurrent: float = 0.0
    provisioned_busy: float = 0.0
    provisioned: float = 0.0
    # the duration histogram: (upper bound in seconds, cumulative count), +Inf last
    buckets: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Point:
    """What happened in one interval (`t` is its end)."""

    t: float
    invocations: float
    errors: float
    throttles: float
    cold_starts: float
    cost: float
    concurrent: float
    provisioned_utilization: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None

    @property
    def success_rate(self) -> float | None:
        """Lambda's console: (invocations - errors) / invocations, in percent."""
        if self.invocations <= 0:
            return None
        return 100.0 * max(0.0, self.invocations - self.errors) / self.invocations


def snapshot(families: Iterable[Metric], t: float) -> dict[str, Sample]:
    """Every function's `Sample` from a registry's `collect()`."""
    values: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in families:
        for s in family.samples:
            function = s.labels.get("function")
            if function is None:
                continue
            name = COUNTERS.get(s.name) or GAUGES.get(s.name)
            if name is not None:
                row = values.setdefault(function, {})
                row[name] = row.get(name, 0.0) + s.value
            elif s.name == DURATION_BUCKET:
                le = float(s.labels["le"])
                row_b = buckets.setdefault(function, {})
                row_b[le] = row_b.get(le, 0.0) + s.value
    out = {}
    for function in values.keys() | buckets.keys():
        b = tuple(sorted((buckets.get(function) or {}).items()))
        out[function] = Sample(t=t, buckets=b, **values.get(function, {}))
    return out


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative `buckets` ((bound, count), +Inf last), as Prometheus'
    histogram_quantile: linear within the bucket it falls in, the highest finite bound
    when it falls in +Inf; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _delta_buckets(new: Sample, old: Sample) -> list[tuple[float, float]]:
    before = dict(old.buckets)
    return [(le, max(0.0, c - before.get(le, 0.0))) for le, c in new.buckets]


def point(new: Sample, old: Sample) -> Point:
    """The interval between two samples of one function."""

    def inc(name: str) -> float:  # a counter's increase; a restart counts from zero
        a, b = getattr(old, name), getattr(new, name)
        return float(b - a if b >= a else b)

    d = _delta_buckets(new, old)

    def ms(q: float) -> float | None:
        v = quantile(q, d)
        return None if v is None else v * 1000.0

    return Point(
        t=new.t,
        invocations=inc("invocations"),
        errors=inc("errors"),
        throttles=inc("throttles"),
        cold_starts=inc("cold_starts"),
        cost=inc("cost"),
        concurrent=new.concurrent,
        provisioned_utilization=(
            new.provisioned_busy / new.provisioned if new.provisioned > 0 else None
        ),
        p50_ms=ms(0.5),
        p90_ms=ms(0.9),
        p99_ms=ms(0.99),
    )


@dataclass
class History:
    """The last `keep` samples of each function (a function gone from the metrics keeps
    its history until it ages out)."""

    keep: int = 360
    samples: dict[str, deque[Sample]] = field(default_factory=dict)
    last_t: float | None = None

    def add(self, by_function: Mapping[str, Sample]) -> None:
        for function, sample in by_function.items():
            series = self.samples.get(function)
            if series is None:
                series = self.samples[function] = deque(maxlen=self.keep)
                # counters start at zero: a function first seen now had nothing at the
                # previous sample, so its first invocations count in the first interval
                series.append(Sample(t=sample.t if self.last_t is None else self.last_t))
            series.append(sample)
        if by_function:
            self.last_t = max(s.t for s in by_function.values())

    def points(self, function: str) -> list[Point]:
        series = list(self.samples.get(function) or ())
        return [point(b, a) for a, b in itertools.pairwise(series)]

    def latest(self, function: str) -> Sample | None:
        series = self.samples.get(function)
        return series[-1] if series else None

    def window(self, function: str) -> Point | None:
        """The whole kept window as one interval (totals and percentiles over it)."""
        series = self.samples.get(function)
        if not series or len(series) < 2:
            return None
        return point(series[-1], series[0])
