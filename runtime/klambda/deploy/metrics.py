"""klambda's metrics where alarms read them: a router's `/metrics` (its own counters for a
function version) and, when a Prometheus URL is given, the alerts that are firing."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from klambda.deploy.gradual import Stats


def parse(text: str, function: str, version: str) -> Stats:
    """A version's invocations, errors, throttles and duration buckets from the text of
    `/metrics` (every alias and invocation type summed)."""
    invocations = errors = throttles = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if labels.get("function") != function:
                continue
            if s.name == "klambda_throttles_total":
                throttles += s.value  # throttles are counted per function
                continue
            if labels.get("version") != version:
                continue
            if s.name == "klambda_invocations_total":
                invocations += s.value
            elif s.name == "klambda_errors_total":
                errors += s.value
            elif s.name == "klambda_duration_seconds_bucket":
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    return Stats(invocations, errors, throttles, buckets)


def router_stats(endpoint: str, function: str, version: str) -> Stats:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/metrics", timeout=10) as resp:
        return parse(resp.read().decode(), function, version)


def firing_alerts(prometheus_url: str) -> set[str]:
    """The names of Prometheus's alerts that are firing now (GET /api/v1/alerts)."""
    url = prometheus_url.rstrip("/") + "/api/v1/alerts"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    return {
        str(a["labels"].get("alertname"))
        for a in body.get("data", {}).get("alerts", [])
        if a.get("state") == "firing"
    }
