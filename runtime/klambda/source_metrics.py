"""Metrics of event source mappings, per mapping (a declared object: bounded labels).

klambda_esm_batches_total{mapping,function,outcome}
    batches invoked: OK, PartialFailure, FunctionError, InvalidResponse, Throttled
klambda_esm_records_total{mapping,function,outcome}
    records: succeeded (deleted), failed (left for redelivery), filtered (dropped by
    filterCriteria, deleted as Lambda does)
klambda_esm_concurrent_batches{mapping,function}
    batches the mapping may run at once (Lambda's scaling rule, capped)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

LABELS = ["mapping", "function"]


class SourceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.batches = Counter(
            "klambda_esm_batches",
            "Batches an event source mapping invoked",
            [*LABELS, "outcome"],
            registry=r,
        )
        self.records = Counter(
            "klambda_esm_records",
            "Records an event source mapping handled",
            [*LABELS, "outcome"],
            registry=r,
        )
        self.concurrent = Gauge(
            "klambda_esm_concurrent_batches",
            "Batches an event source mapping may run at once",
            LABELS,
            registry=r,
        )
        self.iterator_age = Gauge(
            "klambda_iterator_age_seconds",
            "Age of the last record an event source mapping invoked its function with",
            LABELS,
            registry=r,
        )
