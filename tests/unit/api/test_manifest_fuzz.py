"""Manifests under random input: a valid Function, Version or Alias with one field
replaced by anything YAML can hold, or random documents. Each is accepted or refused with
a ValueError whose every line names a field of the manifest; nothing else escapes."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from klambda.api.manifest import parse_document

from tests.fuzzcount import BOUND, EXAMPLES, Huge

FUNCTION: dict[str, Any] = {
    "apiVersion": "klambda.io/v1alpha1",
    "kind": "Function",
    "metadata": {"name": "hello"},
    "spec": {
        "runtime": "python3.11",
        "handler": "app.handler",
        "memoryMB": 256,
        "timeoutSeconds": 3,
        "ephemeralStorageMB": 512,
        "environment": {"A": "1"},
        "retryAttempts": 2,
        "destinations": {"onSuccess": {"function": "other"}},
        "code": {"inline": {"app.py": "def handler(e, c): return 1"}},
    },
}
ALIAS: dict[str, Any] = {
    "apiVersion": "klambda.io/v1alpha1",
    "kind": "Alias",
    "metadata": {"name": "hello.live"},
    "spec": {
        "function": "hello",
        "version": "1",
        "routing": {"additionalVersion": "2", "weight": 0.1},
    },
}
VERSION: dict[str, Any] = {
    "apiVersion": "klambda.io/v1alpha1",
    "kind": "Version",
    "metadata": {"name": "hello.1"},
    "spec": {"function": "hello", "version": "1", "codeSha256": "x", "config": FUNCTION["spec"]},
}
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.just(Huge("x" * 100_000)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)


def paths(doc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    return out


def replaced(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def refusal(doc: Any) -> str | None:
    """Why the manifest is refused (None if it is accepted); anything but a ValueError
    (TypeError, RecursionError, KeyError...) fails the test."""
    try:
        parse_document(doc)
    except ValueError as err:
        why = str(err)
    else:
        return None
    assert why, "a refusal says why"
    return why


@settings(max_examples=BOUND, deadline=None, derandomize=True)
@given(
    base=st.sampled_from([FUNCTION, ALIAS, VERSION]),
    data=st.data(),
    value=VALUES,
)
def test_one_field_replaced_by_anything(
    base: dict[str, Any], data: st.DataObject, value: Any
) -> None:
    EXAMPLES["manifests: one field replaced by anything"] += 1
    path = data.draw(st.sampled_from([p for p in paths(base) if p != ("kind",)]))
    why = refusal(replaced(base, path, value))
    if why is not None:
        # the field replaced, or the one holding it (an environment over its 4 KB)
        assert any(f in why or json.dumps(f) in why for f in path), (path, why[:300])


@settings(max_examples=BOUND, deadline=None, derandomize=True)
@given(doc=VALUES)
def test_random_documents(doc: Any) -> None:
    EXAMPLES["manifests: random documents"] += 1
    refusal(doc)


@settings(max_examples=BOUND // 4, deadline=None, derandomize=True)
@given(text=st.text(max_size=300))
def test_random_yaml_text(text: str) -> None:
    EXAMPLES["manifests: random YAML text"] += 1
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return
    for doc in docs:
        refusal(doc)
