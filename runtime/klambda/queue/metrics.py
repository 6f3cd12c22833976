"""Metrics of asynchronous invocation, with Lambda's meanings.

    klambda_async_events_received_total{function}     events accepted (AsyncEventsReceived)
    klambda_async_event_age_seconds{function}         accepted -> each invocation attempt
                                                      (AsyncEventAge), histogram
    klambda_async_events_dropped_total{function,reason}
                                                      events given up without success
                                                      (AsyncEventsDropped); reason is the
                                                      condition: RetriesExhausted or
                                                      EventAgeExceeded. They are in the DLQ.
    klambda_dead_letter_errors_total{function}        a DLQ or destination write that
                                                      failed (DeadLetterErrors and
                                                      DestinationDeliveryFailures)
    klambda_dlq_depth{function}                       dead letters waiting, gauge
    klambda_async_retries_total{function,reason}      retries scheduled; reason function_error,
                                                      throttled or service_error

Give it the router's registry so they are served on the same `/metrics`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# From 10 ms (a busy local queue) to 6 hours (Lambda's longest maximum event age).
AGE_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    10800.0,
    21600.0,
)


class AsyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.received = Counter(
            "klambda_async_events_received",
            "Asynchronous events accepted into the queue",
            ["function"],
            registry=r,
        )
        self.event_age = Histogram(
            "klambda_async_event_age_seconds",
            "Time from accepting an asynchronous event to each attempt to invoke it",
            ["function"],
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.dropped = Counter(
            "klambda_async_events_dropped",
            "Asynchronous events given up without success (sent to the DLQ)",
            ["function", "reason"],
            registry=r,
        )
        self.dead_letter_errors = Counter(
            "klambda_dead_letter_errors",
            "Failed writes of an event to its DLQ or a destination",
            ["function"],
            registry=r,
        )
        self.dlq_depth = Gauge(
            "klambda_dlq_depth",
            "Dead letters waiting to be redriven",
            ["function"],
            registry=r,
        )
        self.retries = Counter(
            "klambda_async_retries",
            "Retries of asynchronous events scheduled",
            ["function", "reason"],
            registry=r,
        )

    def set_dlq_depths(self, depths: dict[str, int], known: set[str]) -> None:
        """Set the gauge from a backend's count; functions that had dead letters and have
        none now go to 0 rather than keep a stale value."""
        for fn in known | set(depths):
            self.dlq_depth.labels(fn).set(depths.get(fn, 0))
