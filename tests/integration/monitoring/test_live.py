"""The dashboard and the alerts against live data: a real `klambda up` router under load
(synchronous and asynchronous, with failures reaching the DLQ),
scraped every second by a real Prometheus that evaluates the chart's alert rules.

Every panel query must return data and every alert whose condition klambda can produce today
must fire. What klambda does not export yet is listed below with the reason, and checked to
be really absent: when a feature lands and its metric appears, the test fails until the
panel or alert is moved to the live lists.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from klambda.testing import RouterRunner, eventually

from tests.integration.monitoring import dashboard
from tests.integration.monitoring.prometheus import Prometheus, prometheus

FUNCTIONS = Path(__file__).parent / "functions"

NO_EVENT_SOURCES = "event sources are not built yet: nothing exports klambda_iterator_age_seconds"
NO_DLQ_ERRORS = (
    "a dead-letter write that fails cannot be produced on a healthy local queue; "
    "the promtool unit tests cover the alert"
)

# metrics no load here can produce: panel queries over them are checked to be empty
PENDING_METRICS = {
    "klambda_iterator_age_seconds": NO_EVENT_SOURCES,
    "klambda_dead_letter_errors_total": NO_DLQ_ERRORS,
}
# (alert, function) pairs the load below produces
LIVE_ALERTS = {
    ("KlambdaFunctionThrottled", "stopped"),
    ("KlambdaFunctionErrorRateHigh", "fails"),
    ("KlambdaFunctionSuccessRateLow", "fails"),
    ("KlambdaFunctionTimeouts", "slow"),
    ("KlambdaFunctionDurationNearTimeout", "slow"),
    ("KlambdaDeadLetterQueueNotEmpty", "fails"),
    ("KlambdaAsyncEventsDropped", "fails"),
}
PENDING_ALERTS = {
    "KlambdaDeadLetterErrors": NO_DLQ_ERRORS,
    "KlambdaIteratorAgeHigh": NO_EVENT_SOURCES,
}
# alerts whose metrics exist but whose condition takes longer than a test to produce
NOT_PRODUCED = {
    "KlambdaAsyncEventAgeHigh": "needs events waiting over 5 minutes; promtool unit tests cover it",
}
# fast async retries, so failed events reach the DLQ within the load
ASYNC_ENV = {"KLAMBDA_ASYNC_RETRY_BASE_SECONDS": "0.2"}


def pending(promql: str) -> str | None:
    return next((why for m, why in PENDING_METRICS.items() if m in promql), None)


LOAD_SECONDS = 8.0


def call(r: RouterRunner, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Lambda's REST control API of the router."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(r.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def http(r: RouterRunner, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """A plain HTTP request to the router (HTTP API routes, topics)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(r.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def provision_live_alias(r: RouterRunner) -> None:
    """ok version 1 behind alias `live` with one provisioned environment."""
    assert call(r, "POST", "/2015-03-31/functions/ok/versions", {})[1]["Version"] == "1"
    body = {"Name": "live", "FunctionVersion": "1"}
    assert call(r, "POST", "/2015-03-31/functions/ok/aliases", body)[0] in (200, 201)
    path = "/2019-09-30/functions/ok/provisioned-concurrency?Qualifier=live"
    status, cfg = call(r, "PUT", path, {"ProvisionedConcurrentExecutions": 1})
    assert status == 202, cfg

    def ready() -> bool:
        cfg = call(r, "GET", path)[1]
        assert cfg["Status"] == "READY", cfg
        return True

    eventually(ready, "the provisioned environment of ok:live READY")


def drive_load(r: RouterRunner, seconds: float) -> None:
    """Successes, errors, throttles, timeouts (each a cold start after), spillover."""
    stop = time.monotonic() + seconds

    def timeouts() -> None:
        while time.monotonic() < stop:
            assert r.invoke("slow")[0] == 200  # a timeout is a function error, not an HTTP one

    slow = threading.Thread(target=timeouts)
    slow.start()
    with ThreadPoolExecutor(3) as pool:
        while time.monotonic() < stop:
            # two at once on an alias with one provisioned environment: one spills over
            live = list(pool.map(lambda _: r.invoke("ok:live", {"sleep": 0.2}), range(2)))
            assert [s for s, _h, _b in live] == [200, 200]
            assert r.invoke("ok")[0] == 200
            status, headers, _b = r.invoke("fails")
            assert (status, headers.get("x-amz-function-error")) == (200, "Unhandled")
            assert r.invoke("stopped")[0] == 429
            for fn in ("ok", "fails"):
                event = r.invoke(fn, {}, **{"X-Amz-Invocation-Type": "Event"})
                assert event[0] == 202
            assert http(r, "GET", "/http/ok")[0] == 200
            assert http(r, "GET", "/http/fails")[0] == 500
            for kind in ("paid", "refunded"):  # the second is filtered out
                attrs = {"kind": {"DataType": "String", "StringValue": kind}}
                message = {"Message": "m", "MessageAttributes": attrs}
                assert http(r, "POST", "/klambda/v1/topics/orders/messages", message)[0] == 200
            time.sleep(0.1)
    slow.join()


def for_zero(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules with `for: 0s`: the test shows each condition holds on live data; the
    `for` durations are covered by the promtool unit tests."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    return rules


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterRunner, Prometheus]]:
    tmp = tmp_path_factory.mktemp("monitoring")
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(for_zero(dashboard.load_rules())))
    with RouterRunner.up(FUNCTIONS, "-q", workdir=tmp, env=ASYNC_ENV) as r:
        provision_live_alias(r)
        with prometheus(tmp, [f"127.0.0.1:{r.http_port}"], [rules]) as prom:
            eventually(prom.targets_up, "prometheus to scrape the router", timeout=15)
            drive_load(r, LOAD_SECONDS)
            loaded = time.time()
            eventually(
                lambda: prom.caught_up(loaded),
                "a scrape and a rule evaluation after the load",
                timeout=15,
                interval=0.2,
            )
            yield r, prom


def test_the_pending_lists_name_real_queries_and_alerts() -> None:
    queries = " ".join(t.promql for t in dashboard.targets())
    assert all(m in queries for m in PENDING_METRICS)
    live = {a for a, _f in LIVE_ALERTS}
    assert set(PENDING_ALERTS) | set(NOT_PRODUCED) | live == set(dashboard.alerts())
    assert not set(PENDING_ALERTS) & live
    assert not set(NOT_PRODUCED) & live


def test_every_live_panel_returns_data(live: tuple[RouterRunner, Prometheus]) -> None:
    _r, prom = live

    def every_panel_has_data() -> bool:
        empty = [
            f"{t.panel} [{t.ref}]: {t.promql}"
            for t in dashboard.targets()
            if not pending(t.promql) and not prom.finite_values(t.promql)
        ]
        assert not empty, "panels without data:\n" + "\n".join(empty)
        return True

    eventually(every_panel_has_data, "data in every live panel", timeout=15, interval=0.5)


def test_the_load_shows_in_the_panels(live: tuple[RouterRunner, Prometheus]) -> None:
    _r, prom = live
    by_fn = "sum by (function) (rate(klambda_{}_total[1m]))"
    assert {s["metric"]["function"] for s in prom.query(by_fn.format("throttles") + " > 0")} == {
        "stopped"
    }
    errors = {s["metric"]["function"] for s in prom.query(by_fn.format("errors") + " > 0")}
    assert errors == {"fails", "slow"}
    spill = prom.query("sum by (alias) (rate(klambda_provisioned_spillover_invocations_total[1m]))")
    assert [s["metric"]["alias"] for s in spill if float(s["value"][1]) > 0] == ["live"]
    versions = {s["metric"]["version"] for s in prom.query("klambda_invocations_total")}
    assert {"1", "$LATEST"} <= versions


def test_pending_queries_have_no_data(live: tuple[RouterRunner, Prometheus]) -> None:
    _r, prom = live
    appeared = [
        f"{t.panel}: {t.promql}"
        for t in dashboard.targets()
        if pending(t.promql) and prom.query(t.promql)
    ]
    assert not appeared, "these now have data: move them out of PENDING_METRICS\n" + "\n".join(
        appeared
    )


def test_alerts_klambda_can_produce_fire(live: tuple[RouterRunner, Prometheus]) -> None:
    _r, prom = live

    def firing() -> set[tuple[str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("function", ""))
            for a in prom.alerts()
            if a["state"] == "firing"
        }

    def all_live_alerts_fire() -> set[tuple[str, str]]:
        now = firing()
        assert now >= LIVE_ALERTS, f"not firing: {LIVE_ALERTS - now}"
        return now

    now = eventually(all_live_alerts_fire, "the live alerts to fire", timeout=15, interval=0.5)
    # and nothing fires for the healthy function
    assert not {a for a, fn in now if fn == "ok"}


def test_pending_alerts_lack_a_metric(live: tuple[RouterRunner, Prometheus]) -> None:
    _r, prom = live
    known = set(prom.api("/api/v1/label/__name__/values"))
    for name in PENDING_ALERTS:
        expr = dashboard.alerts()[name]["expr"]
        missing = set(re.findall(r"\bklambda_[a-z_]+\b", expr)) - known
        assert missing, f"{name}: every metric of {expr!r} exists now: move it to LIVE_ALERTS"


def test_alerts_not_produced_here_have_their_metrics_and_stay_quiet(
    live: tuple[RouterRunner, Prometheus],
) -> None:
    _r, prom = live
    known = set(prom.api("/api/v1/label/__name__/values"))
    firing = {a["labels"]["alertname"] for a in prom.alerts() if a["state"] == "firing"}
    for name in NOT_PRODUCED:
        expr = dashboard.alerts()[name]["expr"]
        assert set(re.findall(r"\bklambda_[a-z_]+\b", expr)) <= known, name
        assert name not in firing
