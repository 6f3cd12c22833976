"""The pure parts of access control: what each request needs, and SigV4 checked with
botocore's own signer (requests signed as boto3 signs them, then altered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from klambda import sigv4
from klambda.router.permissions import Permission, required

API = "/2015-03-31/functions"


@pytest.mark.parametrize(
    ("method", "path", "perm"),
    [
        ("POST", f"{API}/hello/invocations", Permission("invoke", name="hello")),
        ("POST", f"{API}/hello:prod/invocations", Permission("invoke", name="hello")),
        (
            "POST",
            f"{API}/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello/invocations",
            Permission("invoke", name="hello"),
        ),
        ("GET", f"{API}/", Permission("list")),
        ("GET", API, Permission("list")),
        ("GET", f"{API}/hello", Permission("get", name="hello")),
        ("GET", f"{API}/hello/aliases/prod", Permission("get", name="hello")),
        ("POST", f"{API}/hello/versions", Permission("update", name="hello")),
        ("PUT", f"{API}/hello/aliases/prod", Permission("update", name="hello")),
        ("DELETE", f"{API}/hello", Permission("delete", name="hello")),
        ("PUT", "/2017-10-31/functions/hello/concurrency", Permission("update", name="hello")),
        ("GET", "/2016-08-19/account-settings", Permission("list")),
        ("GET", "/klambda/v1/logs/hello", Permission("get", name="hello", subresource="logs")),
        (
            "GET",
            "/klambda/v1/functions/hello/dlq",
            Permission("get", name="hello", subresource="dlq"),
        ),
        ("POST", "/klambda/v1/functions/hello/dlq/redrive", Permission("redrive", name="hello")),
        ("GET", "/klambda/v1/queues/results", Permission("get", "queues", name="results")),
        ("GET", "/klambda/v1/usage", Permission("list")),
        ("GET", "/nowhere", Permission("list")),
        ("GET", "/healthz", None),
        ("GET", "/metrics", None),
    ],
)
def test_what_each_request_needs(method: str, path: str, perm: Permission | None) -> None:
    assert required(method, path) == perm


def signed(
    secret: str = "s3cret", body: bytes = b'{"a": 1}', token: str | None = None
) -> tuple[sigv4.Signed, AWSRequest]:
    """A request signed as boto3 signs Lambda's Invoke (now)."""
    url = "http://127.0.0.1:8080/2015-03-31/functions/hello%3Aprod/invocations?Qualifier=x%20y"
    req = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("AKIDTEST", secret, token), "lambda", "us-east-1").add_auth(req)
    req.headers["Host"] = "127.0.0.1:8080"  # what the HTTP client then sends
    return sigv4.parse(req.headers["Authorization"]), req


def check(s: sigv4.Signed, req: AWSRequest, secret: str = "s3cret", **kw: object) -> None:
    body = kw.pop("body", req.body)
    now = datetime.now(UTC) + kw.pop("skew", timedelta(0))  # type: ignore[operator]
    sigv4.verify(s, secret, req.method, req.url, dict(req.headers), body, now)  # type: ignore[arg-type]


def test_a_signature_made_by_botocore_is_accepted() -> None:
    s, req = signed()
    assert (s.access_key, s.region, s.service) == ("AKIDTEST", "us-east-1", "lambda")
    check(s, req)
    check(s, req, skew=timedelta(minutes=14))  # a clock a little off


def test_session_credentials_sign_their_token() -> None:
    s, req = signed(token="session-token")
    lower = {k.lower(): v for k, v in req.headers.items()}
    assert lower["x-amz-security-token"] == "session-token"
    check(s, req)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret": "wrong"}, "does not match"),
        ({"body": b'{"a": 2}'}, "does not match"),
        ({"skew": timedelta(minutes=16)}, "Signature expired"),
        ({"skew": -timedelta(minutes=16)}, "not yet current"),
    ],
)
def test_anything_changed_is_refused(change: dict[str, object], message: str) -> None:
    s, req = signed()
    with pytest.raises(sigv4.SignatureError, match=message):
        check(s, req, **change)  # type: ignore[arg-type]


def test_a_changed_path_is_refused() -> None:
    s, req = signed()
    req.url = req.url.replace("hello", "other")
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        check(s, req)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/lambda, SignedHeaders=host, "
        "Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Signature=" + "0" * 64,
        "",
    ],
)
def test_unusable_authorization_headers(header: str) -> None:
    with pytest.raises(sigv4.SignatureError) as err:
        sigv4.parse(header)
    assert err.value.unknown
