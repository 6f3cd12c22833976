"""Function URLs' CORS: which origin is allowed, a preflight's answer, the headers set on
a response in place of the function's own."""

from __future__ import annotations

import pytest
from klambda.triggers.cors import Cors, allowed_origin, is_preflight, preflight, response_headers

SITE = Cors(
    allow_origins=("https://shop.example.com",),
    allow_methods=("GET", "POST"),
    allow_headers=("content-type", "x-api-key"),
    expose_headers=("x-request-id",),
    max_age=600,
)


@pytest.mark.parametrize(
    ("cors", "origin", "allowed"),
    [
        (SITE, "https://shop.example.com", "https://shop.example.com"),
        (SITE, "https://SHOP.example.com", "https://SHOP.example.com"),  # no case
        (SITE, "https://evil.example.com", None),
        (SITE, None, None),
        (Cors(allow_origins=("*",)), "https://any.example", "*"),
        # a credentialed answer may not be `*`: the origin itself
        (Cors(allow_origins=("*",), allow_credentials=True), "https://a.example", "https://a.example"),
        (Cors(), "https://a.example", None),
    ],
)  # fmt: skip
def test_allowed_origin(cors: Cors, origin: str | None, allowed: str | None) -> None:
    assert allowed_origin(cors, origin) == allowed


def test_a_preflight_is_an_options_request_with_origin_and_requested_method() -> None:
    asks = {"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"}
    assert is_preflight("OPTIONS", asks)
    assert not is_preflight("GET", asks)
    assert not is_preflight("OPTIONS", {"Origin": "https://shop.example.com"})


def test_the_preflight_answer() -> None:
    asks = {"origin": "https://shop.example.com", "access-control-request-method": "POST"}
    assert preflight(SITE, asks) == [
        ("Access-Control-Allow-Origin", "https://shop.example.com"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Methods", "GET,POST"),
        ("Access-Control-Allow-Headers", "content-type,x-api-key"),
        ("Access-Control-Max-Age", "600"),
    ]
    assert preflight(SITE, {**asks, "origin": "https://evil.example.com"}) == []


def test_response_headers_replace_the_functions_own() -> None:
    theirs = [
        ("content-type", "application/json"),
        ("Access-Control-Allow-Origin", "*"),
        ("set-cookie", "a=1"),
    ]
    got = response_headers(SITE, {"Origin": "https://shop.example.com"}, theirs)
    assert got == [
        ("content-type", "application/json"),
        ("set-cookie", "a=1"),
        ("Access-Control-Allow-Origin", "https://shop.example.com"),
        ("Vary", "Origin"),
        ("Access-Control-Expose-Headers", "x-request-id"),
    ]
    # an origin not allowed: no CORS header at all, the function's dropped too
    assert response_headers(SITE, {"Origin": "https://evil.example.com"}, theirs) == [
        ("content-type", "application/json"),
        ("set-cookie", "a=1"),
    ]
    credentialed = Cors(allow_origins=("*",), allow_credentials=True)
    assert ("Access-Control-Allow-Credentials", "true") in response_headers(
        credentialed, {"Origin": "https://a.example"}, []
    )
