"""Insights queries as a user runs them: `klambda logs query ... --function a --function b`
and the REST API, over records a running router ingested from real invocations."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from klambda.testing import CLI, RouterRunner, eventually

HANDLER = """
import logging
logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    if event.get("fail"):
        logging.error("ERROR charging card %s", event["card"])
    else:
        logging.info("charged %s", event.get("card"))
    return "ok"
"""


def manifest(name: str, logging_config: dict[str, str] | None = None) -> str:
    spec: dict[str, Any] = {
        "runtime": "python3.11",
        "handler": "app.handler",
        "code": {"inline": {"app.py": HANDLER}},
    }
    if logging_config:
        spec["loggingConfig"] = logging_config
    doc = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": name}}
    return json.dumps({**doc, "spec": spec})


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("query")
    fns = tmp / "functions"
    fns.mkdir()
    (fns / "alpha.yaml").write_text(manifest("alpha"))
    (fns / "beta.yaml").write_text(manifest("beta", {"logFormat": "JSON"}))
    (fns / "gamma.yaml").write_text(manifest("gamma"))
    with RouterRunner.up(fns, "-q", workdir=tmp, env={"KLAMBDA_LOG_INGEST_SECONDS": "0.2"}) as r:
        for name, failures in (("alpha", 2), ("beta", 3), ("gamma", 1)):
            for i in range(4):
                payload = {"fail": i < failures, "card": f"{name}-{i}"}
                assert r.invoke(name, payload)[0] == 200
        yield r


def query(router: RouterRunner, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        router.url + "/klambda/v1/logs/query",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {"error": err.headers.get("x-amzn-ErrorType"), **json.loads(err.read())}


def rows(out: dict[str, Any]) -> list[dict[str, str]]:
    return [{c["field"]: c["value"] for c in row} for row in out["results"]]


def test_a_query_across_two_functions(router: RouterRunner) -> None:
    q = "filter @message like /ERROR/ | stats count(*) as errors by @log | sort @log"

    def counted() -> list[dict[str, str]]:
        status, out = query(router, {"queryString": q, "since": "10m"})
        assert status == 200, out
        got = rows(out)
        assert [r["errors"] for r in got] == ["2", "3", "1"]
        return got

    eventually(counted, "every function's errors in the store")
    out = subprocess.run(
        [
            *CLI,
            "logs",
            "query",
            q,
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
    table = out.stdout.splitlines()
    assert table[0].split() == ["@log", "errors"]
    assert [line.split() for line in table[1:]] == [
        ["000000000000:/aws/lambda/alpha", "2"],
        ["000000000000:/aws/lambda/beta", "3"],
    ]
    assert "row(s)" in out.stderr


def test_json_and_text_records_answer_the_same_questions(router: RouterRunner) -> None:
    status, out = query(
        router,
        {
            "queryString": "filter ispresent(@duration) | stats count(*) as n, "
            "count_distinct(@requestId) as requests by @type | sort @type",
            "functions": ["alpha", "beta"],
            "since": 600,
        },
    )
    assert status == 200, out
    assert rows(out) == [
        {"@type": "REPORT", "n": "4", "requests": "4"},
        {"@type": "platform.report", "n": "4", "requests": "4"},
    ]
    status, out = query(
        router,
        {"queryString": 'filter level = "ERROR" | fields message', "functions": ["beta"]},
    )
    assert status == 200, out
    assert sorted(r["message"] for r in rows(out)) == [
        f"ERROR charging card beta-{i}" for i in range(3)
    ]


def test_mistakes_are_refused_naming_the_position(router: RouterRunner) -> None:
    status, out = query(router, {"queryString": "filter @message like"})
    assert status == 400
    assert out["error"] == "MalformedQueryException"
    assert out["message"].startswith("line 1, column 21: the query ends too soon")
    status, out = query(router, {"queryString": "stats count(*)", "functions": ["nope"]})
    assert (status, out["error"]) == (404, "ResourceNotFoundException")
    status, out = query(router, {"queryString": "stats count(*)", "since": "forever"})
    assert (status, out["error"]) == (400, "InvalidParameterValueException")
    cli = subprocess.run(
        [*CLI, "logs", "query", "stats avg(", "--endpoint", router.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1
    assert "MalformedQueryException: line 1, column 11" in cli.stderr
