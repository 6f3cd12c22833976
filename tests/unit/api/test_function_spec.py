"""Function manifests: Lambda's limits, each refusal naming the field and the limit."""

from __future__ import annotations

import re
from typing import Any

import pytest
from klambda.api.manifest import parse_document


def function(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "handler": "app.handler",
        "runtime": "python3.11",
        "code": {"inline": {"app.py": "def handler(e, c): return 1"}},
    }
    base.update(spec)
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": spec.pop("_name", "hello")},
        "spec": base,
    }


def test_defaults_are_lambdas() -> None:
    fn = parse_document(function())
    assert fn.spec.memory_mb == 128
    assert fn.spec.timeout_seconds == 3
    assert fn.spec.retry_attempts == 2
    assert fn.spec.max_event_age_seconds == 21600
    assert fn.spec.reserved_concurrency is None
    assert fn.spec.ephemeral_storage_mb == 512


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"memoryMB": 100}, "spec.memoryMB: Input should be greater than or equal to 128"),
        ({"memoryMB": 10241}, "spec.memoryMB: Input should be less than or equal to 10240"),
        ({"timeoutSeconds": 0}, "spec.timeoutSeconds: Input should be greater than or equal to 1"),
        ({"timeoutSeconds": 901}, "spec.timeoutSeconds: Input should be less than or equal to 900"),
        ({"runtime": "nodejs18.x"}, "spec.runtime: Input should be 'python3.9'"),
        ({"handler": "app"}, "spec.handler: String should match pattern"),
        ({"environment": {"AWS_REGION": "eu-west-1"}}, "AWS_REGION is a reserved environment"),
        ({"environment": {"_HANDLER": "x"}}, "_HANDLER is a reserved environment"),
        ({"environment": {"1BAD": "x"}}, "environment variable name '1BAD' must match"),
        ({"environment": {"BIG": "x" * 4094}}, "more than the limit of 4096 bytes"),
        (
            {"ephemeralStorageMB": 511},
            "spec.ephemeralStorageMB: Input should be greater than or equal to 512",
        ),
        (
            {"ephemeralStorageMB": 10241},
            "spec.ephemeralStorageMB: Input should be less than or equal to 10240",
        ),
        ({"retryAttempts": 3}, "spec.retryAttempts: Input should be less than or equal to 2"),
        ({"maxEventAgeSeconds": 59}, "spec.maxEventAgeSeconds: Input should be greater than"),
        ({"maxEventAgeSeconds": 21601}, "spec.maxEventAgeSeconds: Input should be less than"),
        ({"reservedConcurrency": -1}, "spec.reservedConcurrency: Input should be greater than"),
        ({"code": {}}, "exactly one of inline, path, configMap, image, s3Key must be given"),
        ({"code": {"inline": {"a.py": ""}, "image": "x"}}, "(got inline, image)"),
        ({"code": {"inline": {"../a.py": ""}}}, "must be a relative path inside the code"),
        ({"deadLetter": {}}, "exactly one of function, queue must be given"),
        ({"memory": 256}, "spec.memory: Extra inputs are not permitted"),
    ],
)
def test_invalid_spec_is_refused_naming_field_and_limit(
    spec: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_document(function(**spec))


@pytest.mark.parametrize("name", ["Hello", "1abc", "a_b", "x" * 49, "ends-", ""])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        parse_document(function(_name=name))


@pytest.mark.parametrize(
    "doc",
    [
        {"apiVersion": "v1", "kind": "Function"},
        {"apiVersion": "klambda.io/v1alpha1", "kind": "Lambda"},
        ["not", "a", "mapping"],
    ],
)
def test_wrong_kind_or_api_version(doc: Any) -> None:
    with pytest.raises(ValueError, match=r"apiVersion|kind|mapping"):
        parse_document(doc)


def test_environment_at_exactly_the_limit_is_accepted() -> None:
    fn = parse_document(function(environment={"BIG": "x" * 4093}))
    assert fn.spec.environment["BIG"] == "x" * 4093
