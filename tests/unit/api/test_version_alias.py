"""Version and Alias manifests: names, routing bounds, at most one additional version."""

from __future__ import annotations

import re
from typing import Any

import pytest
from klambda.api import Alias, Version
from klambda.api.manifest import parse_document

SPEC = {"handler": "app.handler", "runtime": "python3.11", "code": {"inline": {"a.py": ""}}}


def alias(name: str = "hello.prod", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": name},
        "spec": {"function": "hello", "version": "1", **spec},
    }


def test_alias_with_weighted_routing() -> None:
    a = parse_document(alias(routing={"additionalVersion": "2", "weight": 0.1}))
    assert isinstance(a, Alias)
    assert a.alias_name == "prod"
    assert a.spec.routing is not None
    assert a.spec.routing.weight == 0.1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"routing": {"additionalVersion": "2", "weight": 1.5}}, "spec.routing.weight"),
        ({"routing": {"additionalVersion": "2", "weight": -0.1}}, "spec.routing.weight"),
        ({"routing": {"additionalVersion": "1", "weight": 0.5}}, "must differ from version"),
        (
            {"routing": {"additionalVersion": "2", "weight": 0.1, "second": "3"}},
            "Extra inputs are not permitted",
        ),
        ({"version": "v1"}, "must be a version number or $LATEST"),
        ({"provisionedConcurrency": -1}, "spec.provisionedConcurrency"),
    ],
)
def test_invalid_alias(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_document(alias(**kwargs))


@pytest.mark.parametrize("name", ["hello", "hello.123", "other.prod", "hello.Prod"])
def test_alias_names(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        parse_document(alias(name=name))


def test_version_name_must_match_spec() -> None:
    doc = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Version",
        "metadata": {"name": "hello.2"},
        "spec": {"function": "hello", "version": "2", "codeSha256": "abc", "config": SPEC},
    }
    v = parse_document(doc)
    assert isinstance(v, Version)
    assert v.number == 2
    doc["metadata"] = {"name": "hello.3"}
    with pytest.raises(ValueError, match=r"hello\.2"):
        parse_document(doc)
