"""FunctionName and Qualifier as Lambda reads them, and weighted alias routing (seeded,
statistical)."""

from __future__ import annotations

import random

import pytest
from klambda.api.alias import AliasSpec, RoutingConfig
from klambda.errors import InvalidParameterValue
from klambda.router.routing import parse_function, parse_function_name, pick_version

ARN = "arn:aws:lambda:us-east-1:123456789012:function"


@pytest.mark.parametrize(
    ("name", "qualifier", "expected"),
    [
        ("hello", None, ("hello", None)),
        ("hello", "prod", ("hello", "prod")),
        ("hello", "", ("hello", None)),
        ("hello", "$LATEST", ("hello", "$LATEST")),
        ("hello:3", None, ("hello", "3")),
        ("hello:3", "3", ("hello", "3")),
        ("hello:$LATEST", None, ("hello", "$LATEST")),
        ("My_Function-1.v2", None, ("My_Function-1.v2", None)),
        ("a" * 64, None, ("a" * 64, None)),
        ("arn", None, ("arn", None)),  # a function may be called arn
        ("arn:prod", None, ("arn", "prod")),
        ("123456789012:function:hello", None, ("hello", None)),
        ("123456789012:function:hello:prod", None, ("hello", "prod")),
        ("123456789012:function:hello", "7", ("hello", "7")),
        (f"{ARN}:hello", None, ("hello", None)),
        (f"{ARN}:hello:prod", None, ("hello", "prod")),
        (f"{ARN}:hello:$LATEST", None, ("hello", "$LATEST")),
        (f"{ARN}:hello", "1", ("hello", "1")),
        (f"{ARN}:{'a' * 64}:{'q' * 58}", None, ("a" * 64, "q" * 58)),  # 170 characters
        ("arn:aws:lambda:us-east-1:000000000000:function:hello", None, ("hello", None)),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:hello", None, ("hello", None)),
        ("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:1", None, ("f", "1")),
    ],
)
def test_parse_function_name(
    name: str, qualifier: str | None, expected: tuple[str, str | None]
) -> None:
    assert parse_function_name(name, qualifier) == expected


@pytest.mark.parametrize(
    ("name", "qualifier", "error"),
    [
        ("", None, "FunctionName: must not be empty"),
        ("a" * 65, None, "FunctionName: .* longer than 64 characters"),
        (f"{ARN}:{'a' * 65}", None, "FunctionName: .* longer than 64 characters"),
        ("x" * 171, None, "FunctionName: .* longer than 170 characters"),
        (f"{ARN}:{'a' * 64}:{'q' * 59}", None, "FunctionName: .* longer than 170 characters"),
        ("hello world", None, "FunctionName: .* not letters, digits"),
        ("héllo", None, "FunctionName: .* not letters, digits"),
        ("hello/1", None, "FunctionName: .* not letters, digits"),
        (":prod", None, "FunctionName: .* empty function name"),
        ("hello:", None, "FunctionName: .* qualifier that is not"),
        ("hello:pr od", None, "FunctionName: .* qualifier that is not"),
        (f"hello:{'q' * 129}", None, "FunctionName: .* qualifier that is not"),
        ("a:b:c", None, "FunctionName: .* none of the forms"),
        ("arn:aws:s3:::my-bucket", None, "FunctionName: .* an ARN of s3, not of a Lambda"),
        ("arn:aws:sqs:us-east-1:123456789012:q", None, "FunctionName: .* an ARN of sqs"),
        ("arn:aws:lambda:us-east-1", None, "FunctionName: .* not a Lambda function ARN"),
        ("arn:aws:lambda:us-east-1:123456789012:layer:x:1", None, "not a function ARN"),
        ("arn:aws:lambda:us-east-1:123456789012:function", None, "not a function ARN"),
        (f"{ARN}:hello:1:2", None, "FunctionName: .* not a function ARN"),
        ("arn:aws:lambda:us-east-1:12345:function:hello", None, "12-digit account id"),
        ("arn:aws:lambda:useast:123456789012:function:hello", None, "no valid region"),
        ("arn:gcp:lambda:us-east-1:123456789012:function:hello", None, "unknown partition"),
        ("12345:function:hello", None, "partial ARN without a 12-digit account id"),
        ("123456789012:function:hello:1:2", None, "more than one qualifier"),
        ("hello", "pr od", "Qualifier: 'pr od' is not a version or alias"),
        ("hello", "q" * 129, "Qualifier: .* is not a version or alias"),
        ("hello:1", "2", r"qualifier in the name \(1\) and Qualifier \(2\) differ"),
        (f"{ARN}:hello:prod", "1", "differ"),
    ],
)
def test_what_lambda_refuses_is_refused_naming_the_field(
    name: str, qualifier: str | None, error: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=error):
        parse_function_name(name, qualifier)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("hello", "hello"), ("123456789012:function:hello", "hello"), (f"{ARN}:hello", "hello")],
)
def test_parse_function_takes_a_function(name: str, expected: str) -> None:
    assert parse_function(name) == expected


def test_parse_function_refuses_a_qualifier_naming_its_field() -> None:
    with pytest.raises(InvalidParameterValue, match="function: 'hello:1' names a version"):
        parse_function("hello:1", "function")


def test_refusals_are_400_invalid_argument() -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_function_name("arn:aws:s3:::b", None)
    assert err.value.http_status == 400
    assert err.value.code == "InvalidParameterValueException"


def test_no_routing_always_primary() -> None:
    spec = AliasSpec(function="f", version="1")
    assert {pick_version(spec, r / 10) for r in range(10)} == {"1"}


@pytest.mark.parametrize("weight", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_weights_hold_statistically(weight: float) -> None:
    spec = AliasSpec(
        function="f", version="1", routing=RoutingConfig(additional_version="2", weight=weight)
    )
    rnd = random.Random(42)
    n = 20_000
    share = sum(pick_version(spec, rnd.random()) == "2" for _ in range(n)) / n
    # binomial standard deviation at n=20,000 is at most 0.0036; 5 sigma
    assert abs(share - weight) < 0.018
