"""The `events` map and `functionUrl` of a Function or Alias: what is accepted, what is
refused and with which words, and that triggers stay out of published versions."""

from __future__ import annotations

from typing import Any

import pytest
from klambda.api import rules
from klambda.api.alias import Alias
from klambda.api.function import Function, FunctionSpec
from klambda.api.manifest import parse_document
from klambda.api.triggers import HttpApiEvent, ScheduleEvent, TopicEvent
from klambda.api.version import VersionSpec

BASE: dict[str, Any] = {
    "handler": "app.handler",
    "runtime": "python3.11",
    "code": {"inline": {"app.py": "def handler(e, c): return e\n"}},
}


def function(events: Any = None, **more: Any) -> dict[str, Any]:
    spec = {**BASE, **more}
    if events is not None:
        spec["events"] = events
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": spec,
    }


def test_the_issue_example_is_accepted() -> None:
    fn = parse_document(
        function(
            {
                "nightly": {
                    "type": "Schedule",
                    "schedule": "cron(0 3 * * ? *)",
                    "input": '{"full": true}',
                },
                "getItem": {"type": "HttpApi", "path": "/items/{id}", "method": "GET"},
                "orders": {"type": "Topic", "topic": "orders", "filterPolicy": {"kind": ["paid"]}},
            },
            functionUrl={"authType": "NONE", "invokeMode": "RESPONSE_STREAM"},
        )
    )
    assert isinstance(fn, Function)
    events = fn.spec.events or {}
    assert isinstance(events["nightly"], ScheduleEvent)
    assert events["nightly"].timezone == "UTC"
    assert events["nightly"].missed == "Skip"
    assert isinstance(events["getItem"], HttpApiEvent)
    assert events["getItem"].route_key == "GET /items/{id}"
    assert events["getItem"].payload_format_version == "2.0"
    assert events["getItem"].timeout_in_millis == 29000
    assert isinstance(events["orders"], TopicEvent)
    assert fn.spec.function_url is not None
    assert fn.spec.function_url.invoke_mode == "RESPONSE_STREAM"


ACCEPTED = [
    ("rate", {"type": "Schedule", "schedule": "rate(5 minutes)"}),
    ("one-hour", {"type": "Schedule", "schedule": "rate(1 hour)"}),
    ("tz", {"type": "Schedule", "schedule": "cron(0 9 ? * MON-FRI *)", "timezone": "Europe/Paris"}),
    ("overrides", {"type": "Schedule", "schedule": "rate(1 day)", "retryAttempts": 0,
                   "maxEventAgeSeconds": 60, "deadLetter": {"queue": "missed"}}),
    ("greedy", {"type": "HttpApi", "path": "/{proxy+}", "method": "any"}),
    ("default", {"type": "HttpApi", "path": "$default"}),
    ("root", {"type": "HttpApi", "path": "/", "method": "POST", "payloadFormatVersion": "1.0"}),
    ("sns", {"type": "SNS", "topic": "orders"}),
    ("sns-arn", {"type": "SNS", "topic": "arn:aws:sns:us-east-1:123456789012:orders"}),
    ("body-scope", {"type": "SNS", "topic": "t", "filterPolicyScope": "MessageBody",
                    "filterPolicy": {"order": {"total": [{"numeric": [">", 100]}]}}}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(case: str, event: dict[str, Any]) -> None:
    parse_document(function({"t1": event}))


REFUSED = [
    ("no-type", {"schedule": "rate(1 minute)"}, "events.t1"),
    ("unknown-type", {"type": "S3", "bucket": "b"}, "events.t1"),
    ("plural-one", {"type": "Schedule", "schedule": "rate(1 minutes)"}, "rate(1 minute)"),
    ("five-fields", {"type": "Schedule", "schedule": "cron(0 3 * * ?)"}, "six fields"),
    ("both-days", {"type": "Schedule", "schedule": "cron(0 3 * * * *)"}, "'?'"),
    ("bad-dow", {"type": "Schedule", "schedule": "cron(0 3 ? * 8 *)"}, "day-of-week"),
    ("bad-tz", {"type": "Schedule", "schedule": "rate(1 day)", "timezone": "Mars/Olympus"},
     "time zone"),
    ("bad-input", {"type": "Schedule", "schedule": "rate(1 day)", "input": "{nope"},
     "input must be JSON"),
    ("retries", {"type": "Schedule", "schedule": "rate(1 day)", "retryAttempts": 3},
     "retryAttempts"),
    ("path-on-schedule", {"type": "Schedule", "schedule": "rate(1 day)", "path": "/x"},
     "path"),
    ("no-slash", {"type": "HttpApi", "path": "items"}, "must start with '/'"),
    ("greedy-middle", {"type": "HttpApi", "path": "/{p+}/x"}, "must come last"),
    ("method", {"type": "HttpApi", "path": "/x", "method": "FETCH"}, "method"),
    ("default-method", {"type": "HttpApi", "path": "$default", "method": "GET"}, "$default"),
    ("timeout", {"type": "HttpApi", "path": "/x", "timeoutInMillis": 40000},
     "timeoutInMillis"),
    ("topic-name", {"type": "SNS", "topic": "has space"}, "topic"),
    ("policy-keys", {"type": "SNS", "topic": "t",
                     "filterPolicy": {k: ["x"] for k in "abcdef"}}, "at most 5 keys"),
    ("policy-op", {"type": "SNS", "topic": "t", "filterPolicy": {"a": [{"regex": "x"}]}},
     "not an operator"),
    ("policy-nested", {"type": "SNS", "topic": "t", "filterPolicy": {"a": {"b": ["x"]}}},
     "MessageBody"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_naming_the_field(case: str, event: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=r"events\.t1") as err:
        parse_document(function({"t1": event}))
    assert words in str(err.value)


def test_event_names_and_count() -> None:
    with pytest.raises(ValueError, match="name 'bad name'"):
        parse_document(function({"bad name": {"type": "HttpApi", "path": "/"}}))
    many = {f"e{i}": {"type": "HttpApi", "path": f"/p{i}"} for i in range(33)}
    with pytest.raises(ValueError, match="at most 32 triggers"):
        parse_document(function(many))


@pytest.mark.parametrize("auth", ["NONE", "AWS_IAM"])
def test_url_auth_types(auth: str) -> None:
    fn = parse_document(function(functionUrl={"authType": auth}))
    assert isinstance(fn, Function)
    assert fn.spec.function_url is not None
    assert fn.spec.function_url.auth_type == auth


@pytest.mark.parametrize("auth", ["IAM", "aws_iam", ""])
def test_other_url_auth_types_are_refused(auth: str) -> None:
    with pytest.raises(ValueError, match="authType"):
        parse_document(function(functionUrl={"authType": auth}))


def test_aliases_take_triggers_too() -> None:
    alias = parse_document(
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Alias",
            "metadata": {"name": "hello.prod"},
            "spec": {
                "function": "hello",
                "version": "1",
                "events": {"tick": {"type": "Schedule", "schedule": "rate(1 minute)"}},
                "functionUrl": {},
            },
        }
    )
    assert isinstance(alias, Alias)
    assert alias.spec.function_url is not None
    assert alias.spec.function_url.auth_type == "NONE"


def test_versions_snapshot_no_triggers() -> None:
    spec = FunctionSpec.model_validate(
        {**BASE, "events": {"t": {"type": "HttpApi", "path": "/"}}, "functionUrl": {}}
    )
    config = rules.version_config(spec)
    assert config.events is None
    assert config.function_url is None
    version = VersionSpec(function="hello", version="1", code_sha256="abc", config=config)
    # a changed trigger is not a changed configuration: publishing again returns version 1
    other = spec.model_copy(update={"events": None})
    assert rules.unchanged_since(version, "abc", other)
    with pytest.raises(ValueError, match="triggers belong to the Function or an Alias"):
        VersionSpec(function="hello", version="1", code_sha256="abc", config=spec)
