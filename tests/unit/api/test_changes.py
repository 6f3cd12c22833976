"""Lambda's control requests as changes of a Function's spec, and of an Alias's triggers
(klambda.api.changes)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from klambda import codestore
from klambda.api import AliasSpec, Code, FunctionSpec, changes, rules
from klambda.api.rules import RuleError

BASE = FunctionSpec.model_validate(
    {"handler": "app.handler", "runtime": "python3.11", "code": {"inline": {"app.py": ""}}}
)
CODE = Code(path="../code/x")


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ({"Handler": "a.b", "Runtime": "python3.12"}, {"handler": "a.b", "runtime": "python3.12"}),
        (
            {"Handler": "a.b", "Runtime": "python3.11", "MemorySize": 512, "Timeout": 30},
            {"memory_mb": 512, "timeout_seconds": 30},
        ),
        (
            {"Handler": "a.b", "Runtime": "python3.11", "Environment": {"Variables": {"A": "1"}}},
            {"environment": {"A": "1"}},
        ),
        (
            {"PackageType": "Image", "ImageConfig": {"Command": ["app.main"]}},
            {"handler": "app.main", "runtime": "python3.11"},
        ),
        (
            {
                "Handler": "a.b",
                "Runtime": "python3.11",
                "DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dead"},
            },
            {"dead_letter": {"function": None, "queue": "dead"}},
        ),
        (
            {"Handler": "a.b", "Runtime": "python3.11", "Tags": {"team": "x"}},
            {"tags": {"team": "x"}},
        ),
    ],
)
def test_create_spec(body: dict[str, Any], want: dict[str, Any]) -> None:
    spec = changes.create_spec(body, CODE)
    assert spec.code == CODE
    dumped = spec.model_dump()
    for key, value in want.items():
        assert dumped[key] == value, key


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"Runtime": "python3.11"}, "Handler: required"),
        ({"Handler": "a.b"}, "Runtime: required"),
        ({"Handler": "a.b", "Runtime": "python3.11", "MemorySize": 64},
         "MemorySize (spec.memoryMB)"),
        ({"Handler": "a.b", "Runtime": "nodejs20.x"}, "Runtime (spec.runtime)"),
        ({"Handler": "a.b", "Runtime": "python3.11", "Layers": ["l"]}, "Layers: not supported"),
        ({"Handler": "a.b", "Runtime": "python3.11", "VpcConfig": {"SubnetIds": ["s"]}},
         "VpcConfig"),
        ({"Handler": "a.b", "Runtime": "python3.11", "TracingConfig": {"Mode": "Active"}}, "X-Ray"),
        ({"Handler": "a.b", "Runtime": "python3.11", "PackageType": "Jar"}, "PackageType"),
        ({"Handler": "a.b", "Runtime": "python3.11",
          "DeadLetterConfig": {"TargetArn": "arn:aws:sns:us-east-1:000000000000:t"}},
         "DeadLetterConfig.TargetArn"),
        ({"Handler": "a.b", "Runtime": "python3.11", "Tags": {"aws:x": "1"}}, "aws: is reserved"),
        ({"Handler": "a.b", "Runtime": "python3.11", "Tags": {f"k{i}": "v" for i in range(51)}},
         "more than the limit of 50"),
    ],
)  # fmt: skip
def test_create_refusals_name_the_field(body: dict[str, Any], words: str) -> None:
    with pytest.raises(RuleError, match=None) as err:
        changes.create_spec(body, CODE)
    assert words in str(err.value)


def test_defaults_restated_are_accepted() -> None:
    body = {
        "Handler": "a.b",
        "Runtime": "python3.11",
        "Layers": [],
        "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []},
        "TracingConfig": {"Mode": "PassThrough"},
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None"},
        "Role": "arn:aws:iam::1:role/x",
    }
    assert changes.create_spec(body, CODE).handler == "a.b"


def test_update_configuration_keeps_what_is_not_given() -> None:
    spec = changes.update_configuration(BASE.model_copy(update={"memory_mb": 256}), {"Timeout": 9})
    assert (spec.memory_mb, spec.timeout_seconds, spec.code) == (256, 9, BASE.code)
    cleared = changes.update_configuration(
        spec.model_copy(update={"environment": {"A": "1"}}), {"Environment": {}}
    )
    assert cleared.environment == {}


def test_event_invoke_config_put_replaces_update_merges() -> None:
    spec = changes.put_event_invoke_config(
        BASE,
        {
            "MaximumRetryAttempts": 0,
            "DestinationConfig": {
                "OnSuccess": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:ok"},
                "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:bad"},
            },
        },
        replace=True,
    )
    assert spec.retry_attempts == 0
    assert spec.destinations is not None
    assert spec.destinations.on_success is not None
    assert spec.destinations.on_success.function == "ok"
    merged = changes.put_event_invoke_config(spec, {"MaximumEventAgeInSeconds": 60}, replace=False)
    assert (merged.retry_attempts, merged.max_event_age_seconds) == (0, 60)
    assert merged.destinations == spec.destinations
    replaced = changes.put_event_invoke_config(merged, {"MaximumEventAgeInSeconds": 60}, True)
    assert (replaced.retry_attempts, replaced.destinations) == (2, None)
    assert changes.has_event_invoke_config(replaced)
    assert not changes.has_event_invoke_config(changes.clear_event_invoke_config(replaced))
    with pytest.raises(RuleError, match="MaximumRetryAttempts"):
        changes.put_event_invoke_config(BASE, {"MaximumRetryAttempts": 3}, replace=True)


def test_tags_and_versions() -> None:
    tagged = changes.tag(BASE, {"a": "1", "b": "2"})
    assert changes.untag(tagged, ["a"]).tags == {"b": "2"}
    assert changes.untag(tagged, ["a", "b"]).tags is None
    assert rules.version_config(tagged).tags is None


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ({}, "exactly one of ZipFile, ImageUri"),
        ({"ZipFile": "UEs=", "ImageUri": "x"}, "exactly one"),
        ({"ZipFile": "***"}, "must be base64"),
        ({"S3Bucket": "b", "S3Key": "k"}, "no S3"),
    ],
)
def test_code_of_refusals(code: dict[str, Any], words: str) -> None:
    with pytest.raises(RuleError) as err:
        changes.code_of(code)
    assert words in str(err.value)


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def test_unzip() -> None:
    files = {"app.py": b"x", "lib/util.py": b"y"}
    assert codestore.unzip(zipped(files), 100) == files
    assert codestore.unzip(codestore.zip_files(files), 100) == files
    assert codestore.zip_files(files) == codestore.zip_files(dict(reversed(files.items())))
    for bad, words in [
        (b"nope", "not a .zip"),
        (zipped({"../evil.py": b""}), "outside the code root"),
        (zipped({"big": b"x" * 200}), "more than 100 bytes"),
        (zipped({}), "no files"),
    ]:
        with pytest.raises(codestore.ZipError, match=words):
            codestore.unzip(bad, 100)


ALIAS = AliasSpec.model_validate(
    {"function": "fn", "version": "1", "description": "d", "provisionedConcurrency": 2}
)
HELLO = {"type": "HttpApi", "path": "/hello", "method": "GET"}


def test_alias_triggers_replace_its_events_and_function_url() -> None:
    spec = changes.alias_triggers(ALIAS, {"events": {"Hello": HELLO}})
    assert spec.events is not None
    assert spec.events["Hello"].wire()["path"] == "/hello"
    assert (spec.function_url, spec.version, spec.description) == (None, "1", "d")
    assert spec.provisioned_concurrency == 2
    spec = changes.alias_triggers(spec, {"functionUrl": {"authType": "NONE"}})
    assert spec.events is None
    assert spec.function_url is not None
    assert spec.function_url.auth_type == "NONE"
    assert changes.alias_triggers(spec, None).function_url is None


@pytest.mark.parametrize(
    ("triggers", "words"),
    [
        ("Hello", "Triggers: must be an object with events and functionUrl"),
        ({"events": {"Tick": {"type": "Schedule", "schedule": "every day"}}},
         "Triggers.events (spec.events.Tick.Schedule.schedule)"),
        ({"events": {"-bad": HELLO}}, "Triggers.events (spec.events): events: name '-bad'"),
        ({"functionUrl": {"authType": "KEY"}}, "Triggers.functionUrl (spec.functionUrl.authType)"),
    ],
)  # fmt: skip
def test_triggers_refused_alike_on_a_function_and_an_alias(triggers: Any, words: str) -> None:
    with pytest.raises(RuleError) as on_alias:
        changes.alias_triggers(ALIAS, triggers)
    with pytest.raises(RuleError) as on_function:
        changes.update_configuration(BASE, {"Triggers": triggers})
    assert words in str(on_alias.value)
    assert str(on_alias.value) == str(on_function.value)
