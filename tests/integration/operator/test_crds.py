"""The CRDs of crds/ on a real API server: bad input is refused there, naming the field,
before any operator sees it; Versions cannot be edited except provisionedConcurrency."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Namespace, alias_manifest, function_manifest, version_manifest

REFUSED = [
    ("memory", {"memoryMB": 64}, "spec.memoryMB"),
    ("timeout", {"timeoutSeconds": 1000}, "spec.timeoutSeconds"),
    ("handler", {"handler": "apphandler"}, "spec.handler"),
    ("reserved-env", {"environment": {"AWS_REGION": "eu-west-1"}}, "reserved variable"),
    ("env-4kb", {"environment": {"A": "x" * 2100, "B": "y" * 2100}}, "4096 bytes"),
    ("env-name", {"environment": {"1BAD": "x"}}, "environment variable names"),
    ("two-codes", {"code": {"inline": {"a.py": ""}, "image": "x"}}, "exactly one of"),
    ("runtime", {"runtime": "nodejs20.x"}, "spec.runtime"),
    # triggers: the schema and CEL rules of the `events` map and `functionUrl`
    ("event-name", {"events": {"bad name": {"type": "HttpApi", "path": "/"}}}, "events: names"),
    ("event-type", {"events": {"t": {"type": "Pigeon"}}}, "spec.events.t.type"),
    ("schedule-missing", {"events": {"t": {"type": "Schedule"}}}, "schedule is required"),
    (
        "schedule-syntax",
        {"events": {"t": {"type": "Schedule", "schedule": "daily"}}},
        "schedule must be rate",
    ),
    (
        "cron-five-fields",
        {"events": {"t": {"type": "Schedule", "schedule": "cron(0 3 * * ?)"}}},
        "schedule must be rate",
    ),
    (
        "path-on-topic",
        {"events": {"t": {"type": "SNS", "topic": "t", "path": "/x"}}},
        "path is required for type HttpApi",
    ),
    (
        "input-on-route",
        {"events": {"t": {"type": "HttpApi", "path": "/", "input": "{}"}}},
        "belong to type Schedule",
    ),
    (
        "default-method",
        {"events": {"t": {"type": "HttpApi", "path": "$default", "method": "GET"}}},
        "$default route",
    ),
    (
        "retries-on-route",
        {"events": {"t": {"type": "HttpApi", "path": "/", "retryAttempts": 1}}},
        "asynchronous triggers",
    ),
    ("url-auth", {"functionUrl": {"authType": "IAM"}}, "spec.functionUrl.authType"),
    (
        "stage-variable-name",
        {"events": {"t": {"type": "HttpApi", "path": "/", "stageVariables": {"a b": "x"}}}},
        "a stage variable's name",
    ),
    (
        "cors-on-schedule",
        {"events": {"t": {"type": "Schedule", "schedule": "rate(1 hour)", "cors": {}}}},
        "stageVariables and cors belong to type HttpApi",
    ),
    ("url-cors-age", {"functionUrl": {"cors": {"maxAge": 90000}}}, "spec.functionUrl.cors.maxAge"),
    ("log-format", {"loggingConfig": {"logFormat": "Json"}}, "spec.loggingConfig.logFormat"),
    ("level-text", {"loggingConfig": {"applicationLogLevel": "WARN"}}, "need logFormat JSON"),
    (
        "system-level",
        {"loggingConfig": {"logFormat": "JSON", "systemLogLevel": "ERROR"}},
        "spec.loggingConfig.systemLogLevel",
    ),
    ("retention", {"logRetentionInDays": 2}, "spec.logRetentionInDays"),
    (
        "metric-value",
        {
            "metricFilters": [
                {"name": "e", "filterPattern": "", "metricName": "E", "metricValue": "x"}
            ]
        },
        "spec.metricFilters[0].metricValue",
    ),
]


@pytest.mark.kube
@pytest.mark.parametrize(("case", "spec", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_invalid_function_is_refused_naming_the_field(
    ns: Namespace, case: str, spec: dict[str, Any], field: str
) -> None:
    out = ns.try_apply(function_manifest("bad", **spec))
    assert out.returncode != 0
    assert field in out.stderr, out.stderr
    assert ns.get("Function", "bad") is None


@pytest.mark.kube
def test_triggers_are_accepted_with_defaults(ns: Namespace) -> None:
    events = {
        "nightly": {"type": "Schedule", "schedule": "cron(0 3 * * ? *)", "input": '{"full": 1}'},
        "getItem": {"type": "HttpApi", "path": "/items/{id}", "method": "GET"},
        "orders": {"type": "SNS", "topic": "orders", "filterPolicy": {"kind": ["paid"]}},
    }
    ns.apply(function_manifest("triggered", events=events, functionUrl={}))
    got = ns.get("Function", "triggered")
    assert got is not None
    assert got["spec"]["events"] == events
    assert got["spec"]["functionUrl"] == {"authType": "NONE", "invokeMode": "BUFFERED"}


@pytest.mark.kube
def test_an_iam_function_url_is_accepted(ns: Namespace) -> None:
    ns.apply(function_manifest("signed", functionUrl={"authType": "AWS_IAM"}))
    got = ns.get("Function", "signed")
    assert got is not None
    assert got["spec"]["functionUrl"] == {"authType": "AWS_IAM", "invokeMode": "BUFFERED"}


@pytest.mark.kube
@pytest.mark.parametrize("name", ["Bad_Name", "1abc", "a" * 49, "has.dot"])
def test_bad_function_name_is_refused(ns: Namespace, name: str) -> None:
    out = ns.try_apply(function_manifest(name))
    assert out.returncode != 0
    assert "metadata.name" in out.stderr, out.stderr


@pytest.mark.kube
def test_version_is_immutable_but_provisioned_concurrency_is_not(ns: Namespace) -> None:
    fn = function_manifest("imm")
    ns.apply(version_manifest(fn, 1, "c2hh"))
    for patch, field in [
        ({"spec": {"config": {"memoryMB": 256}}}, "spec.config"),
        ({"spec": {"codeSha256": "b3RoZXI="}}, "spec.codeSha256"),
        ({"spec": {"description": "changed"}}, "spec.description"),
    ]:
        out = ns.patch("Version", "imm.1", patch, check=False)
        assert out.returncode != 0
        assert f"{field}: Invalid value" in out.stderr
        assert "is immutable" in out.stderr
    ns.patch("Version", "imm.1", {"spec": {"provisionedConcurrency": 3}})
    body = ns.get("Version", "imm.1")
    assert body is not None
    assert body["spec"]["provisionedConcurrency"] == 3
    assert body["spec"]["config"]["memoryMB"] == 128


@pytest.mark.kube
def test_version_and_alias_names_are_checked(ns: Namespace) -> None:
    fn = function_manifest("names")
    wrong = version_manifest(fn, 1, "c2hh")
    wrong["metadata"]["name"] = "names.2"
    assert "metadata.name must be <function>.<version>" in ns.try_apply(wrong).stderr
    other = alias_manifest("other", "prod", "1")
    other["metadata"]["name"] = "names.prod"
    assert "metadata.name must be <function>.<alias>" in ns.try_apply(other).stderr
    assert "not only digits" in ns.try_apply(alias_manifest("names", "123", "1")).stderr
    same = alias_manifest("names", "prod", "1", routing={"additionalVersion": "1", "weight": 0.5})
    assert "routing.additionalVersion must differ" in ns.try_apply(same).stderr


@pytest.mark.kube
def test_logging_config_is_accepted_with_lambdas_default_format(ns: Namespace) -> None:
    ns.apply(
        function_manifest(
            "logged",
            loggingConfig={"logFormat": "JSON", "applicationLogLevel": "WARN"},
            logRetentionInDays=7,
            metricFilters=[
                {"name": "errors", "filterPattern": "ERROR", "metricName": "Errors"},
                {
                    "name": "bytes",
                    "filterPattern": "[a, b]",
                    "metricName": "B",
                    "metricValue": "$b",
                },
            ],
        )
    )
    ns.apply(function_manifest("plain", loggingConfig={}))
    logged, plain = ns.get("Function", "logged"), ns.get("Function", "plain")
    assert logged is not None
    assert plain is not None
    assert logged["spec"]["loggingConfig"] == {"logFormat": "JSON", "applicationLogLevel": "WARN"}
    assert logged["spec"]["logRetentionInDays"] == 7
    assert plain["spec"]["loggingConfig"] == {"logFormat": "Text"}
    assert [f["metricValue"] for f in logged["spec"]["metricFilters"]] == ["1", "$b"]
