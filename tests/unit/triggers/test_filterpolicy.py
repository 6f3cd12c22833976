"""SNS subscription filter policies: checking and matching, as SNS documents them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from klambda.triggers.filterpolicy import Attribute, check, matches

ATTRS = {
    "kind": Attribute("String", "paid"),
    "region": Attribute("String", "eu-west-1"),
    "price": Attribute("Number", "150"),
    "tags": Attribute("String.Array", '["red", "big"]'),
    "blob": Attribute("Binary", "AAEC"),
}

# (policy, does the message with ATTRS pass)
CASES: list[tuple[dict[str, Any], bool]] = [
    ({"kind": ["paid"]}, True),
    ({"kind": ["refunded", "paid"]}, True),
    ({"kind": ["refunded"]}, False),
    ({"region": [{"prefix": "eu-"}]}, True),
    ({"region": [{"prefix": "us-"}]}, False),
    ({"region": [{"suffix": "-1"}]}, True),
    ({"kind": [{"equals-ignore-case": "PAID"}]}, True),
    ({"price": [150]}, True),
    ({"price": [{"numeric": [">", 100]}]}, True),
    ({"price": [{"numeric": [">", 100, "<=", 150]}]}, True),
    ({"price": [{"numeric": [">=", 200]}]}, False),
    ({"price": [{"numeric": ["=", 150.0]}]}, True),
    ({"kind": [{"numeric": [">", 1]}]}, False),  # a String is not a number
    ({"kind": [{"exists": True}]}, True),
    ({"missing": [{"exists": False}]}, True),
    ({"missing": [{"exists": True}]}, False),
    ({"kind": [{"exists": False}]}, False),
    ({"kind": [{"anything-but": ["refunded", "void"]}]}, True),
    ({"kind": [{"anything-but": "paid"}]}, False),
    ({"kind": [{"anything-but": {"prefix": "pa"}}]}, False),
    ({"region": [{"anything-but": {"suffix": "-2"}}]}, True),
    ({"price": [{"anything-but": [100, 200]}]}, True),
    ({"missing": [{"anything-but": ["x"]}]}, False),  # absent: only exists:false matches
    ({"missing": ["paid"]}, False),
    ({"tags": ["big"]}, True),  # String.Array: any element
    ({"tags": ["small"]}, False),
    ({"blob": [{"exists": True}]}, False),  # Binary attributes are never matched
    ({"kind": ["paid"], "region": [{"prefix": "us-"}]}, False),  # AND across keys
    ({"kind": ["paid"], "price": [{"numeric": ["<", 200]}]}, True),
    ({"$or": [{"kind": ["void"]}, {"region": [{"prefix": "eu"}]}]}, True),
    ({"$or": [{"kind": ["void"]}, {"region": [{"prefix": "us"}]}]}, False),
]


@pytest.mark.parametrize(("policy", "passes"), CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_attribute_policies(policy: dict[str, Any], passes: bool) -> None:
    check(policy)
    assert matches(policy, "MessageAttributes", ATTRS, "hello") is passes


BODY = json.dumps({"order": {"total": 120, "items": ["a", "b"], "coupon": None}, "kind": "paid"})


@pytest.mark.parametrize(
    ("policy", "passes"),
    [
        ({"kind": ["paid"]}, True),
        ({"order": {"total": [{"numeric": [">", 100]}]}}, True),
        ({"order": {"items": ["b"]}}, True),
        ({"order": {"coupon": [None]}}, True),
        ({"order": {"missing": [{"exists": False}]}}, True),
        ({"order": {"total": [{"numeric": ["<", 100]}]}}, False),
        ({"order": {"nested": {"x": ["1"]}}}, False),
    ],
)
def test_body_policies(policy: dict[str, Any], passes: bool) -> None:
    check(policy, "MessageBody")
    assert matches(policy, "MessageBody", {}, BODY) is passes
    assert matches(policy, "MessageBody", {}, "not json") is False


REFUSED = [
    ({}, "non-empty"),
    ({"a": "x"}, "written as a list"),
    ({"a": []}, "empty list"),
    ({k: ["x"] for k in "abcdef"}, "at most 5 keys"),
    ({"a": list(range(13)), "b": list(range(13))}, "at most 150 combinations"),
    ({"a": [{"numeric": ["<", 5, ">", 1]}]}, "lower bound"),
    ({"a": [{"numeric": [">", 5, "<", 1]}]}, "empty"),
    ({"a": [{"numeric": ["~", 5]}]}, "not one of"),
    ({"a": [{"numeric": [">", 2e9]}]}, "outside"),
    ({"a": [{"exists": "yes"}]}, "true or false"),
    ({"a": [{"prefix": ""}]}, "non-empty string"),
    ({"a": [{"anything-but": {"regex": "x"}}]}, "anything-but"),
    ({"a": [{"cidr": "nope"}]}, "not an IP prefix"),
    ({"a": [True]}, "not conditions"),
    ({"a": [None]}, "MessageBody"),
    ({"$or": [{"a": ["x"]}]}, "at least two"),
]


@pytest.mark.parametrize(("policy", "words"), REFUSED, ids=[w for _, w in REFUSED])
def test_refused(policy: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        check(policy)


def test_cidr() -> None:
    attrs = {"ip": Attribute("String", "10.0.0.7")}
    assert matches({"ip": [{"cidr": "10.0.0.0/24"}]}, "MessageAttributes", attrs, "m")
    assert not matches({"ip": [{"cidr": "10.0.1.0/24"}]}, "MessageAttributes", attrs, "m")
