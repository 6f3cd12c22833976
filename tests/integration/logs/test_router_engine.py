"""A router with a log engine (KLAMBDA_LOG_ENGINE_URL, what the chart sets when
logs.engine.enabled): real invocations' records shipped to a real VictoriaLogs, and
`klambda logs query`, the REST API and `klambda logs NAME --since` answered by the engine,
not by the router's own store."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from klambda.testing import CLI, RouterRunner, eventually

from tests.logengine import VictoriaLogs, victoria_logs

from .test_query_api import manifest, query, rows


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaLogs]:
    with victoria_logs(tmp_path_factory.mktemp("engine") / "data") as vl:
        yield vl


@pytest.fixture(scope="module")
def router(
    tmp_path_factory: pytest.TempPathFactory, engine: VictoriaLogs
) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("router")
    fns = tmp / "functions"
    fns.mkdir()
    (fns / "alpha.yaml").write_text(manifest("alpha"))
    (fns / "beta.yaml").write_text(manifest("beta", {"logFormat": "JSON"}))
    gamma = json.loads(manifest("gamma"))
    gamma["spec"]["metricFilters"] = [
        {"name": "errors", "filterPattern": "ERROR -Retrying", "metricName": "Errors"}
    ]
    (fns / "gamma.yaml").write_text(json.dumps(gamma))
    # the router's own store off: every answer below can only come from the engine
    env = {
        "KLAMBDA_LOG_ENGINE_URL": engine.url,
        "KLAMBDA_LOG_STORE": "0",
        "KLAMBDA_LOG_METRIC_FILTER_SECONDS": "1",
    }
    with RouterRunner.up(fns, "-q", workdir=tmp, env=env) as r:
        for name, failures in (("alpha", 2), ("beta", 3), ("gamma", 2)):
            for i in range(4):
                payload = {"fail": i < failures, "card": f"{name}-{i}"}
                assert r.invoke(name, payload)[0] == 200
        yield r


def _flush(engine: VictoriaLogs) -> None:
    with urllib.request.urlopen(f"{engine.url}/internal/force_flush", timeout=10):
        pass


def test_a_query_across_two_functions_from_the_engine(
    router: RouterRunner, engine: VictoriaLogs
) -> None:
    q = "filter @message like /ERROR/ | stats count(*) as errors by @log | sort @log"

    def counted() -> list[dict[str, str]]:
        _flush(engine)
        body = {"queryString": q, "since": "10m", "functions": ["alpha", "beta"]}
        status, out = query(router, body)
        assert status == 200, out
        return rows(out)

    expected = [
        {"@log": "000000000000:/aws/lambda/alpha", "errors": "2"},
        {"@log": "000000000000:/aws/lambda/beta", "errors": "3"},
    ]
    # the records are shipped as they are written: wait for every one, not the first of each
    seen: list[list[dict[str, str]]] = []
    eventually(
        lambda: seen.append(counted()) or seen[-1] == expected,
        "every error of both functions in the engine",
    )
    assert seen[-1] == expected
    out = subprocess.run(
        [
            *CLI,
            "logs",
            "query",
            'filter @type = "platform.report" or @type = "REPORT" '
            "| stats count(*) as n, count_distinct(@requestId) as requests by @log | sort @log",
            "--since",
            "10m",
            "--function",
            "alpha",
            "--function",
            "beta",
            "--endpoint",
            router.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    table = [line.split() for line in out.stdout.splitlines()]
    assert table == [
        ["@log", "n", "requests"],
        ["000000000000:/aws/lambda/alpha", "4", "4"],
        ["000000000000:/aws/lambda/beta", "4", "4"],
    ]


def test_json_records_and_history_from_the_engine(
    router: RouterRunner, engine: VictoriaLogs
) -> None:
    expected = [{"message": f"ERROR charging card beta-{i}"} for i in range(3)]

    def errors() -> list[dict[str, str]]:
        _flush(engine)
        status, out = query(
            router,
            {
                "queryString": 'filter level = "ERROR" | fields message | sort message',
                "functions": ["beta"],
                "since": "10m",
            },
        )
        assert status == 200, out
        return rows(out)

    eventually(lambda: errors() == expected, "beta's three errors in the engine")
    history = subprocess.run(
        [
            *CLI,
            "logs",
            "alpha",
            "--since",
            "10m",
            "--filter-pattern",
            "ERROR",
            "--endpoint",
            router.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert len(lines) == 2
    assert all("ERROR charging card alpha-" in line for line in lines)
    recent = subprocess.run(
        [*CLI, "logs", "alpha", "--limit", "3", "--endpoint", router.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recent.returncode == 0, recent.stderr
    # without --since: the last hour's, from the engine (this router keeps none in memory
    # in a cluster); the last three records of the last invocation: its line, END, REPORT
    assert [line.split()[0] for line in recent.stdout.splitlines()] == ["[INFO]", "END", "REPORT"]


def test_metric_filters_count_from_the_engine(router: RouterRunner, engine: VictoriaLogs) -> None:
    def errors() -> bool:
        _flush(engine)
        with urllib.request.urlopen(router.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        want = 'klambda_log_metric_filter_total{filter="errors",function="gamma",metric="Errors"}'
        [line] = [line for line in text.splitlines() if line.startswith(want)]
        assert float(line.split()[-1]) == 2.0, line
        return True

    eventually(errors, "gamma's two ERROR records counted from the engine", timeout=30)


def test_follow_streams_what_the_engine_receives(router: RouterRunner) -> None:
    seen: list[str] = []

    def follow() -> None:
        url = router.url + "/klambda/v1/logs/alpha?follow=1"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=30) as resp:
            for raw in resp:
                seen.append(raw.decode().rstrip("\n"))
                if "alpha-followed" in seen[-1]:
                    return

    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(follow)
        time.sleep(1.0)  # the tail is open
        assert router.invoke("alpha", {"card": "alpha-followed"})[0] == 200
        done.result(timeout=40)
    assert any(line.endswith("charged alpha-followed") for line in seen), seen


def test_a_mistake_names_its_position(router: RouterRunner) -> None:
    status, out = query(router, {"queryString": "stats stddev(@duration)", "since": "1h"})
    assert status == 400
    assert out["error"] == "MalformedQueryException"
    assert "line 1, column 7: stddev()" in out["message"]
