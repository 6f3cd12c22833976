"""Metric filters as Prometheus metrics: each batch the ingester stores is matched against
the function's filters, and each match adds the filter's value to a counter.

    klambda_log_metric_filter_total{function, filter, metric}     the values, summed
    klambda_log_metric_filter_matches_total{function, filter}     the matching records

CloudWatch sums a metric filter's values per period; a Prometheus counter keeps the sum,
so `increase(klambda_log_metric_filter_total{metric="Errors"}[5m])` is CloudWatch's Sum
over five minutes and can drive an alert. Every filter's series is there from the start
(at 0), so an alert sees the first match. A value that is missing from a matching record,
not a number, or negative (a counter only grows) adds nothing; `defaultValue` is added for
each record that does not match. Runs on the ingester's thread, off the invoke path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from klambda.api.logconfig import MetricFilter
from klambda.logs.filterpattern import compile_pattern

log = logging.getLogger("klambda.logstore")

# function -> its metric filters now
FiltersOf = Callable[[str], Iterable[MetricFilter]]


class MetricFilters:
    def __init__(self, registry: CollectorRegistry, filters_of: FiltersOf) -> None:
        self.filters_of = filters_of
        self.values = Counter(
            "klambda_log_metric_filter",
            "Sum of the values of a function's metric filter (CloudWatch metric filters)",
            ["function", "filter", "metric"],
            registry=registry,
        )
        self.matches = Counter(
            "klambda_log_metric_filter_matches",
            "Log records that matched a function's metric filter",
            ["function", "filter"],
            registry=registry,
        )

    def declare(self, function: str) -> None:
        """Create the function's series at 0, before any record arrives."""
        for f in self.filters_of(function):
            self.values.labels(function, f.name, f.metric_name)
            self.matches.labels(function, f.name)

    def messages(self, function: str, messages: Iterable[str]) -> None:
        filters = [(f, compile_pattern(f.filter_pattern)) for f in self.filters_of(function)]
        if not filters:
            return
        totals = [0.0] * len(filters)
        counts = [0] * len(filters)
        for message in messages:
            for i, (f, pattern) in enumerate(filters):
                m = pattern.match(message)
                if m is None:
                    if f.default_value:
                        totals[i] += f.default_value
                    continue
                counts[i] += 1
                value = (
                    float(f.metric_value)
                    if not f.metric_value.startswith("$")
                    else m.value(f.metric_value)
                )
                if value is not None and value > 0:
                    totals[i] += value
        for (f, _p), total, count in zip(filters, totals, counts, strict=True):
            if total > 0:
                self.values.labels(function, f.name, f.metric_name).inc(total)
            else:
                self.values.labels(function, f.name, f.metric_name)
            if count:
                self.matches.labels(function, f.name).inc(count)

    def after_batch(self, function: str, chunk: Path) -> None:
        """The ingester's hook: the batch's records are the JSON lines of `chunk`."""
        if not any(True for _ in self.filters_of(function)):
            return
        with open(chunk, encoding="utf-8") as f:
            self.messages(function, (json.loads(line)["m"] for line in f if line.strip()))
