"""Metrics of triggers, per trigger: what each one fired, what failed, how HTTP answered.

    klambda_trigger_events_total{function,alias,trigger,type}
        events a trigger produced: schedule ticks fired, topic messages delivered to a
        subscription, HTTP requests routed to the function (HttpApi, FunctionUrl)
    klambda_trigger_failures_total{function,alias,trigger,type,reason}
        asynchronous events given up (RetriesExhausted, EventAgeExceeded: they are in the
        DLQ), events that could not be queued (QueueError), HTTP requests the function did
        not answer well (FunctionError, Timeout, Throttled, BadResponse), requests an
        AWS_IAM function URL refused (Forbidden)
    klambda_trigger_filtered_total{function,alias,trigger}
        topic messages a subscription's filter policy kept from the function
    klambda_trigger_http_responses_total{function,alias,trigger,status_class}
        HTTP answers by class: 2xx, 3xx, 4xx, 5xx
    klambda_trigger_http_duration_seconds{function,alias,trigger}
        request received -> response (a streamed one: its end), histogram
    klambda_trigger_schedule_delay_seconds{function,alias,trigger}
        a schedule's tick -> its event queued, histogram

`alias` is "" for triggers of `$LATEST`. Labels stay bounded: triggers are declared, at
most 32 per object. Shared by the dispatcher (async outcomes) and the router's trigger
components, on the router's registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

HTTP_BUCKETS = (
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
    300.0,
    900.0,
)
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
LABELS = ["function", "alias", "trigger", "type"]


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "klambda_trigger_events", "Events a trigger produced", LABELS, registry=r
        )
        self.failures = Counter(
            "klambda_trigger_failures",
            "Trigger events that failed (given up, not queued, or answered badly)",
            [*LABELS, "reason"],
            registry=r,
        )
        self.filtered = Counter(
            "klambda_trigger_filtered",
            "Topic messages a subscription's filter policy kept from the function",
            ["function", "alias", "trigger"],
            registry=r,
        )
        self.http_responses = Counter(
            "klambda_trigger_http_responses",
            "HTTP responses of HttpApi routes and function URLs, by status class",
            ["function", "alias", "trigger", "status_class"],
            registry=r,
        )
        self.http_duration = Histogram(
            "klambda_trigger_http_duration_seconds",
            "HTTP request received to response started, for HttpApi routes and function URLs",
            ["function", "alias", "trigger"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.schedule_delay = Histogram(
            "klambda_trigger_schedule_delay_seconds",
            "A schedule's tick to its event queued",
            ["function", "alias", "trigger"],
            buckets=DELAY_BUCKETS,
            registry=r,
        )
