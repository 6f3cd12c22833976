"""Metric filters end to end: a function's log records, matched against its filters as
they are ingested, become Prometheus counters on /metrics; `klambda logs --filter-pattern`
selects records with the same patterns."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from klambda.testing import CLI, RouterRunner, eventually

HANDLER = """
import json, logging
logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    request = f'"GET {event["path"]} HTTP/1.1"'
    print(f"{event['ip']} - {event['user']} {request} {event['status']} {event['bytes']}")
    logging.info("served", extra={"latency": event["latency"], "status": event["status"]})
    if event["status"] >= 500:
        logging.error("ERROR upstream failed")
    return "ok"
"""

FILTERS = [
    {
        "name": "server-errors",
        "filterPattern": "[ip, dash, user, request, status = 5*, bytes]",
        "metricName": "ServerErrors",
    },
    {
        "name": "bytes",
        "filterPattern": "[ip, dash, user, request, status, bytes]",
        "metricName": "BytesServed",
        "metricValue": "$bytes",
    },
    {
        "name": "slow",
        "filterPattern": '{ $.latency > 500 && $.level = "INFO" }',
        "metricName": "SlowRequests",
        "metricValue": "$.latency",
    },
    {
        "name": "errors",
        "filterPattern": "ERROR -retrying",
        "metricName": "Errors",
        "defaultValue": 0,
    },
    {"name": "never", "filterPattern": "%^nothing matches this$%", "metricName": "Never"},
]
REQUESTS = [
    {"ip": "198.18.0.1", "user": "ada", "path": "/a", "status": 200, "bytes": 100, "latency": 20},
    {"ip": "198.18.0.2", "user": "bob", "path": "/b", "status": 503, "bytes": 42, "latency": 900},
    {"ip": "198.18.0.1", "user": "ada", "path": "/c", "status": 500, "bytes": 7, "latency": 600},
    {"ip": "198.18.0.3", "user": "cy", "path": "/d", "status": 404, "bytes": 1000, "latency": 5},
]


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("metricfilters")
    fns = tmp / "functions"
    fns.mkdir()
    spec: dict[str, Any] = {
        "runtime": "python3.11",
        "handler": "app.handler",
        "code": {"inline": {"app.py": HANDLER}},
        "loggingConfig": {"logFormat": "JSON"},
        "metricFilters": FILTERS,
    }
    doc = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": "web"}}
    (fns / "web.yaml").write_text(json.dumps({**doc, "spec": spec}))
    with RouterRunner.up(fns, "-q", workdir=tmp, env={"KLAMBDA_LOG_INGEST_SECONDS": "0.2"}) as r:
        yield r


def value(router: RouterRunner, metric: str) -> float:
    return router.metric("klambda_log_metric_filter_total", function="web", metric=metric)


def test_filters_count_and_sum_what_they_match(router: RouterRunner) -> None:
    metrics = router.metrics()
    for f in FILTERS:  # every series exists before any record
        assert f'filter="{f["name"]}",function="web",metric="{f["metricName"]}"' in metrics
    for req in REQUESTS:
        assert router.invoke("web", req)[0] == 200

    def counted() -> bool:
        assert value(router, "ServerErrors") == 2
        assert value(router, "BytesServed") == 1149
        assert value(router, "SlowRequests") == 1500
        assert value(router, "Errors") == 2
        return True

    eventually(counted, "the metric filters' counters")
    assert value(router, "Never") == 0
    matches = router.metric("klambda_log_metric_filter_matches_total", filter="errors")
    assert matches == 2


def test_filter_pattern_on_the_command_line(router: RouterRunner) -> None:
    for req in REQUESTS:
        router.invoke("web", req)

    def klambda(*args: str) -> list[str]:
        out = subprocess.run(
            [*CLI, "logs", "web", *args, "--endpoint", router.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    def server_errors() -> list[str]:
        pattern = "[ip, dash, user, request, status = 5*, bytes]"
        got = klambda("--since", "10m", "--filter-pattern", pattern)
        assert len(got) >= 4
        return got

    lines = eventually(server_errors, "server errors in the store")
    assert all(" 50" in line for line in lines)
    slow = klambda("--since", "10m", "--filter-pattern", "{ $.latency >= 600 }", "--limit", "1")
    assert len(slow) == 1
    assert json.loads(slow[0])["latency"] in (600, 900)
    recent = klambda("--filter-pattern", '?"ERROR upstream" ?" 404 "')
    assert recent
    assert all("ERROR upstream" in line or " 404 " in line for line in recent)
    bad = subprocess.run(
        [*CLI, "logs", "web", "--filter-pattern", "{ $.x = }", "--endpoint", router.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "MalformedQueryException" in bad.stderr
    assert "column 9" in bad.stderr
