"""The Queue, Stream, EventSourceMapping and DatabaseProxy CRDs on a real API server: what
the models accept is accepted, with the models' defaults; what they refuse is refused,
naming the field or the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Namespace


def esm(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "EventSourceMapping",
        "metadata": {"name": name},
        "spec": {"function": "process", "source": {"queue": "orders"}, **spec},
    }


def get(ns: Namespace, kind: str, name: str) -> dict[str, Any]:
    out = ns.kubectl("get", kind, name, "-o", "json")
    return dict(json.loads(out.stdout if hasattr(out, "stdout") else out))


@pytest.mark.kube
def test_sources_are_accepted_with_defaults(ns: Namespace) -> None:
    ns.apply(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Queue",
            "metadata": {"name": "orders"},
            "spec": {"redrivePolicy": {"deadLetterQueue": "orders-dlq", "maxReceiveCount": 3}},
        }
    )
    assert get(ns, "queues", "orders")["spec"]["visibilityTimeoutSeconds"] == 30
    stream = {"apiVersion": "klambda.io/v1alpha1", "kind": "Stream", "metadata": {"name": "c"}}
    ns.apply({**stream, "spec": {}})
    assert get(ns, "streams", "c")["spec"] == {"shardCount": 1, "retentionPeriodHours": 24}
    ns.apply(esm("q", functionResponseTypes=["ReportBatchItemFailures"], batchSize=10))
    assert get(ns, "eventsourcemappings", "q")["spec"]["enabled"] is True
    ns.apply(
        esm(
            "pg",
            source={"postgres": {"dsn": "host=db", "tables": ["public.orders"]}},
            startingPosition="LATEST",
            bisectBatchOnFunctionError=True,
        )
    )
    pg = get(ns, "eventsourcemappings", "pg")["spec"]["source"]["postgres"]
    assert pg["streamViewType"] == "NEW_AND_OLD_IMAGES"
    ns.apply(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "DatabaseProxy",
            "metadata": {"name": "app-db"},
            "spec": {"target": {"host": "db", "database": "shop", "user": "app"}},
        }
    )
    proxy = get(ns, "databaseproxies", "app-db")["spec"]
    assert (proxy["poolSize"], proxy["port"], proxy["poolMode"]) == (10, 6432, "transaction")


@pytest.mark.kube
@pytest.mark.parametrize(
    ("case", "spec", "words"),
    [
        ("queue-stream-field", {"startingPosition": "LATEST"}, "apply to stream sources"),
        ("batch-window", {"batchSize": 11}, "needs maximumBatchingWindowInSeconds"),
        ("two-sources", {"source": {"queue": "a", "stream": "b"}}, "exactly one of queue"),
        ("stream-position", {"source": {"stream": "c"}}, "startingPosition is required"),
        ("concurrency", {"maximumConcurrency": 1}, "spec.maximumConcurrency"),
        (
            "pg-at-timestamp",
            {
                "source": {"postgres": {"dsn": "x", "tables": ["t"]}},
                "startingPosition": "AT_TIMESTAMP",
                "startingPositionTimestamp": 1,
            },
            "AT_TIMESTAMP applies to streams",
        ),
        ("response-type", {"functionResponseTypes": ["All"]}, "functionResponseTypes"),
    ],
)
def test_bad_mappings_are_refused(
    ns: Namespace, case: str, spec: dict[str, Any], words: str
) -> None:
    out = ns.try_apply(esm(f"bad-{case}", **spec))
    assert out.returncode != 0
    assert words in out.stderr, out.stderr
