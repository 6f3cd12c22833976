"""Lambda's advanced logging controls, end to end: a function in JSON format at WARN drops
its INFO records (logging and print alike) and writes Lambda's record shapes, compared
with AWS's documented examples; system levels drop platform records."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from klambda.testing import RouterRunner

from . import aws_examples as aws

HANDLER = """
import json
import logging
import os

logger = logging.getLogger()
chatty = logging.getLogger("chatty")
chatty.setLevel(logging.DEBUG)


def handler(event, context):
    logger.debug("debug record")
    logger.info("info record")
    chatty.info("info from a chatty logger")
    logger.warning("warning record", extra={"orderId": 42})
    print("plain print")
    print(json.dumps({"level": "error", "msg": "printed error"}))
    print(json.dumps({"level": "info", "msg": "printed info"}))
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("caught")
    if event.get("fail"):
        raise RuntimeError("unhandled")
    return [os.environ.get("AWS_LAMBDA_LOG_FORMAT"), os.environ.get("AWS_LAMBDA_LOG_LEVEL")]
"""


def manifest(name: str, logging_config: dict[str, str] | None) -> str:
    spec: dict[str, Any] = {
        "runtime": "python3.11",
        "handler": "app.handler",
        "code": {"inline": {"app.py": HANDLER}},
    }
    if logging_config is not None:
        spec["loggingConfig"] = logging_config
    doc = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": name}}
    return json.dumps({**doc, "spec": spec})


FUNCTIONS = {
    "warn": {"logFormat": "JSON", "applicationLogLevel": "WARN"},
    "verbose": {"logFormat": "JSON", "applicationLogLevel": "TRACE", "systemLogLevel": "DEBUG"},
    "quiet": {"logFormat": "JSON", "applicationLogLevel": "FATAL", "systemLogLevel": "WARN"},
    "cold": {"logFormat": "JSON"},
    "text": None,
}


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("jsonlogs")
    fns = tmp / "functions"
    fns.mkdir()
    for name, cfg in FUNCTIONS.items():
        (fns / f"{name}.yaml").write_text(manifest(name, cfg))
    with RouterRunner.up(fns, "-q", workdir=tmp) as r:
        yield r


def tail(router: RouterRunner, name: str, payload: Any = None) -> list[str]:
    status, headers, _ = router.invoke(name, payload, **{"X-Amz-Log-Type": "Tail"})
    assert status == 200
    return base64.b64decode(headers["x-amz-log-result"]).decode().splitlines()


def records(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        assert line.startswith("{"), f"not a JSON record: {line!r}"
        out.append(json.loads(line))
    return out


def messages(recs: list[dict[str, Any]]) -> list[str]:
    return [r.get("message") or r.get("msg") or r.get("type") or "" for r in recs]


def test_warn_drops_info_and_keeps_lambdas_shapes(router: RouterRunner) -> None:
    tail(router, "warn")  # the cold start
    recs = records(tail(router, "warn"))
    assert messages(recs) == [
        "platform.start",
        "warning record",
        "printed error",
        "caught",
        "platform.report",
    ]
    start, warning, printed, caught, report = recs
    assert aws.same_shape(start, aws.PLATFORM_START) == []
    assert aws.same_shape(report, aws.PLATFORM_REPORT) == []
    rid = start["record"]["requestId"]
    assert report["record"]["requestId"] == rid
    assert report["record"]["status"] == "success"
    assert report["record"]["metrics"]["memorySizeMB"] == 128
    assert "initDurationMs" not in report["record"]["metrics"]  # a warm invocation
    # an application record: AWS's keys, plus the `extra` the handler gave
    assert (
        aws.same_shape({k: v for k, v in warning.items() if k != "orderId"}, aws.APPLICATION_INFO)
        == []
    )
    assert (warning["level"], warning["logger"], warning["requestId"]) == ("WARNING", "root", rid)
    assert warning["orderId"] == 42
    assert printed == {"level": "error", "msg": "printed error"}  # print(): as printed
    assert aws.same_shape(caught, aws.APPLICATION_EXCEPTION) == []
    assert (caught["errorType"], caught["errorMessage"]) == ("ValueError", "boom")
    assert caught["location"].endswith("app.py:handler:22")


def test_cold_start_writes_init_start_and_init_duration(router: RouterRunner) -> None:
    status, _, body = router.invoke("cold")
    assert status == 200
    assert json.loads(body) == ["JSON", "INFO"]  # Lambda's variables, the level defaulted
    with urllib.request.urlopen(router.url + "/klambda/v1/logs/cold", timeout=10) as resp:
        lines = resp.read().decode().splitlines()
    assert "plain print" in lines  # INFO, the level in force
    assert not any("debug record" in line for line in lines)
    recs = records([line for line in lines if line != "plain print"])
    assert [r.get("type") or r.get("message") or r.get("msg") for r in recs] == [
        "platform.initStart",
        "platform.start",
        "info record",
        "info from a chatty logger",
        "warning record",
        "printed error",
        "printed info",
        "caught",
        "platform.report",
    ]
    init, report = recs[0], recs[-1]
    assert aws.same_shape(init, aws.PLATFORM_INIT_START) == []
    assert init["record"]["functionName"] == "cold"
    assert init["record"]["initializationType"] == "on-demand"
    assert report["record"]["metrics"]["initDurationMs"] > 0


def test_verbose_keeps_everything_and_the_debug_platform_records(router: RouterRunner) -> None:
    tail(router, "verbose")
    recs = tail(router, "verbose")
    assert "plain print" in recs  # a print() line stays plain text
    parsed = [json.loads(r) for r in recs if r.startswith("{")]
    kinds = [r.get("type") or r.get("level") for r in parsed]
    assert kinds == [
        "platform.start",
        "DEBUG",
        "INFO",
        "INFO",
        "WARNING",
        "error",  # the printed ones, as printed
        "info",
        "ERROR",
        "platform.runtimeDone",
        "platform.report",
    ]
    done = parsed[-2]
    assert aws.same_shape(done, aws.PLATFORM_RUNTIME_DONE) == []


def test_an_unhandled_error_is_one_json_record_at_error(router: RouterRunner) -> None:
    recs = records(tail(router, "warn", {"fail": True}))
    error = [r for r in recs if r.get("errorType") == "RuntimeError"]
    assert len(error) == 1
    assert error[0]["level"] == "ERROR"
    assert error[0]["errorMessage"] == "unhandled"
    assert isinstance(error[0]["stackTrace"], list)
    report = recs[-1]
    assert (report["record"]["status"], report["record"]["errorType"]) == ("error", "RuntimeError")


def test_fatal_and_warn_system_levels_leave_nothing_of_this_handler(router: RouterRunner) -> None:
    assert tail(router, "quiet") == []
    assert tail(router, "quiet", {"fail": True}) == []


def test_text_format_is_unchanged(router: RouterRunner) -> None:
    lines = tail(router, "text")
    assert lines[0].startswith("START RequestId: ")
    assert any(line.startswith("[WARNING]\t") and "warning record" in line for line in lines)
    assert not any("info record" in line for line in lines)  # the root logger's WARNING
    assert any(line.endswith("\tplain print") for line in lines)
    assert lines[-1].startswith("REPORT RequestId: ")
