"""Lambda's control rules, one table each: the same decisions in local mode, on a cluster
and in the operator."""

from __future__ import annotations

from typing import Any

import pytest
from klambda.api import AliasSpec, FunctionSpec, VersionSpec, rules
from klambda.api.limits import LATEST

SPEC = {"runtime": "python3.11", "handler": "app.handler", "code": {"inline": {"a.py": "x"}}}


def fn(**changes: Any) -> FunctionSpec:
    return FunctionSpec.model_validate({**SPEC, **changes})


def version(n: str, sha: str = "sha", provisioned: int = 0, **changes: Any) -> VersionSpec:
    return VersionSpec.model_validate(
        {
            "function": "hello",
            "version": n,
            "codeSha256": sha,
            "config": {**SPEC, **changes},
            "provisionedConcurrency": provisioned,
        }
    )


def alias(v: str, provisioned: int = 0, extra: str | None = None, weight: float = 0) -> AliasSpec:
    spec: dict[str, Any] = {
        "function": "hello",
        "version": v,
        "provisionedConcurrency": provisioned,
    }
    if extra is not None:
        spec["routing"] = {"additionalVersion": extra, "weight": weight}
    return AliasSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("published", "expected"),
    [([], "1"), (["1"], "2"), (["1", "2", "10"], "11"), (["3"], "4")],
)
def test_next_version(published: list[str], expected: str) -> None:
    assert rules.next_version(published) == expected


UNCHANGED = [
    ("nothing published", None, "sha", fn(), False),
    ("same code and config", version("1"), "sha", fn(), True),
    ("code changed", version("1"), "other", fn(), False),
    ("memory changed", version("1"), "sha", fn(memoryMB=256), False),
    ("code from elsewhere, same bytes", version("1"), "sha", fn(code={"path": "./src"}), True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "newest", "sha", "spec", "expected"), UNCHANGED, ids=[u[0] for u in UNCHANGED]
)
def test_unchanged_since(
    what: str, newest: VersionSpec | None, sha: str, spec: FunctionSpec, expected: bool
) -> None:
    assert rules.unchanged_since(newest, sha, spec) is expected


ALIAS_TARGETS = [
    (alias("1"), ["1"], None),
    (alias(LATEST), [], None),
    (alias("2"), ["1"], "spec.version: version 2 of hello does not exist (published: 1)"),
    (alias("1", extra="3", weight=0.1), ["1", "2"],
     "spec.routing.additionalVersion: version 3 of hello does not exist (published: 1, 2)"),
    (alias("1"), [], "spec.version: version 1 of hello does not exist (published: none)"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "published", "error"), ALIAS_TARGETS)
def test_alias_targets(spec: AliasSpec, published: list[str], error: str | None) -> None:
    if error is None:
        rules.check_alias_targets(spec, published)
    else:
        with pytest.raises(rules.RuleError, match=error.replace("(", r"\(").replace(")", r"\)")):
            rules.check_alias_targets(spec, published)


@pytest.mark.parametrize(
    ("aliases", "error"),
    [
        ({}, None),
        ({"prod": alias("2")}, None),
        ({"prod": alias("1")}, "alias prod routes to it"),
        ({"b": alias("2", extra="1", weight=0.5), "a": alias("1")}, "aliases a, b route to it"),
    ],
)
def test_delete_version(aliases: dict[str, AliasSpec], error: str | None) -> None:
    if error is None:
        rules.check_delete_version("hello", "1", aliases)
    else:
        with pytest.raises(rules.RuleError, match=f"version 1 of hello cannot be deleted: {error}"):
            rules.check_delete_version("hello", "1", aliases)


RESERVATIONS = [
    ("none asked", None, {}, None),
    ("fits", 900, {}, None),
    ("own old value not counted", 900, {"hello": 500}, None),
    ("leaves too few", 901, {}, "would leave 99 unreserved; at least 100"),
    ("others count", 500, {"other": 401}, "at most 499 can be reserved for it"),
    ("negative", -1, {}, "must be >= 0, got -1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "reserved", "others", "error"), RESERVATIONS, ids=[r[0] for r in RESERVATIONS]
)
def test_reservation(
    what: str, reserved: int | None, others: dict[str, int], error: str | None
) -> None:
    if error is None:
        rules.check_reservation("hello", reserved, others, 1000, 100)
    else:
        with pytest.raises(rules.RuleError, match=error):
            rules.check_reservation("hello", reserved, others, 1000, 100)


PROVISIONED = [
    ("fits the reservation", "prod", 3, 2, 5, None),
    ("over the reservation", "prod", 4, 2, 5, "6 provisioned in all for hello is more"),
    ("fits the account", "1", 800, 100, None, None),
    ("over the account", "1", 801, 100, None, "901 is more than the 900 the account can give"),
    ("latest refused", LATEST, 1, 0, None, "needs a version or an alias, not \\$LATEST"),
    ("negative", "prod", -1, 0, None, "must be >= 0, got -1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "qualifier", "count", "others", "reserved", "error"),
    PROVISIONED,
    ids=[p[0] for p in PROVISIONED],
)
def test_provisioned_budget(
    what: str, qualifier: str, count: int, others: int, reserved: int | None, error: str | None
) -> None:
    args = ("hello", qualifier, count, others, reserved, 900, 100)
    if error is None:
        rules.check_provisioned(*args)
    else:
        with pytest.raises(rules.RuleError, match=error):
            rules.check_provisioned(*args)


SPLITS = [
    ("none", [], [], {}),
    ("a version's own", [version("1", provisioned=2)], [], {"1": 2}),
    ("plain alias", [], [alias("1", 4)], {"1": 4}),
    ("weighted alias", [], [alias("1", 10, "2", 0.2)], {"1": 8, "2": 2}),
    ("rounded share", [], [alias("1", 3, "2", 0.1)], {"1": 3}),
    ("all add up", [version("1", provisioned=1)], [alias("1", 1), alias("1", 2, "2", 0.5)],
     {"1": 3, "2": 1}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "versions", "aliases", "expected"), SPLITS, ids=[s[0] for s in SPLITS]
)
def test_provisioned_split(
    what: str, versions: list[VersionSpec], aliases: list[AliasSpec], expected: dict[str, int]
) -> None:
    assert rules.provisioned_by_version(versions, aliases) == expected
    assert sum(expected.values()) == rules.provisioned_total(versions, aliases)
