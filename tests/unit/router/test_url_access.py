"""AWS_IAM function URLs: which requests are served, as whom, and that every refusal is the
same 403 Forbidden. Requests are signed by botocore as boto3 signs a function URL call;
the keys are a real credentials file's; the decisions come from a table standing in for
RBAC (the cluster's SubjectAccessReview is tested against a real API server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from klambda.errors import AccessDenied
from klambda.router import url_access
from klambda.router.access import CredentialsFile, LocalAccess, Principal, Request
from klambda.router.permissions import Permission, invoke_url, required
from klambda.triggers.httpapi import IamCaller

URL = "http://127.0.0.1:8080/url/hello:live/orders/7?expand=1"
ACCOUNT = "123456789012"


class TableAccess(LocalAccess):
    """The file's keys; only the (user, permission) pairs listed are allowed."""

    def __init__(self, path: Path, allowed: set[tuple[str, Permission]]) -> None:
        super().__init__(CredentialsFile(path))
        self.allowed = allowed

    async def authorize(self, who: Principal, perm: Permission) -> None:
        if (who.username, perm) not in self.allowed:
            raise AccessDenied(f"User: {who.username} is not authorized to perform: {perm}")


@pytest.fixture
def access(tmp_path: Path) -> TableAccess:
    (tmp_path / "credentials").write_text(
        "[alice]\naws_access_key_id = AKIDALICE\naws_secret_access_key = alice-secret\n"
        "[bob]\naws_access_key_id = AKIDBOB\naws_secret_access_key = bob-secret\n"
    )
    allowed = {("alice", invoke_url("hello")), ("bob", Permission("invoke", name="hello"))}
    return TableAccess(tmp_path / "credentials", allowed)


def request(
    key: str | None = "AKIDALICE",
    secret: str = "alice-secret",
    service: str = "lambda",
    body: bytes = b'{"n": 1}',
    sent_body: bytes | None = None,
    header: str | None = None,
) -> Request:
    """A POST to the URL as botocore signs it (SigV4Auth for `service`), as it arrives."""
    req = AWSRequest(
        method="POST", url=URL, data=body, headers={"Content-Type": "application/json"}
    )
    if key is not None:
        SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(req)
    headers = {**dict(req.headers), "Host": "127.0.0.1:8080"}
    if header is not None:
        headers["Authorization"] = header
    return Request("POST", URL, headers, body if sent_body is None else sent_body)


async def test_a_signer_allowed_to_invoke_the_url_is_served_as_itself(
    access: TableAccess,
) -> None:
    caller = await url_access.check(access, request(), "hello", ACCOUNT)
    assert caller == IamCaller(
        access_key="AKIDALICE",
        account_id=ACCOUNT,
        caller_id="alice",
        user_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        user_id="alice",
    )


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ({"key": None}, "no Authorization header"),
        ({"header": "Bearer a-kubernetes-token"}, "AWS4-HMAC-SHA256"),
        ({"secret": "not-her-secret"}, "InvalidSignatureException"),
        ({"sent_body": b'{"n": 2}'}, "InvalidSignatureException"),
        ({"key": "AKIDMALLORY", "secret": "x"}, "UnrecognizedClientException"),
        ({"service": "execute-api"}, "not 'lambda'"),
        # bob may invoke the function (InvokeFunction), not call its URL (InvokeFunctionUrl)
        ({"key": "AKIDBOB", "secret": "bob-secret"}, "AccessDeniedException"),
    ],
    ids=["unsigned", "bearer", "wrong-secret", "changed-body", "unknown-key", "service", "bob"],
)
async def test_everything_else_is_forbidden(
    access: TableAccess, how: dict[str, Any], reason: str
) -> None:
    req = request(**how)  # signed now: a signature made at collection would expire in a long run
    with pytest.raises(url_access.Refused) as refused:
        await url_access.check(access, req, "hello", ACCOUNT)
    assert refused.value.message == "Forbidden"
    assert reason in refused.value.reason


async def test_another_functions_url_needs_its_own_permission(access: TableAccess) -> None:
    with pytest.raises(url_access.Refused, match="AccessDenied"):
        await url_access.check(access, request(), "other", ACCOUNT)


async def test_a_router_without_access_control_refuses_and_says_why() -> None:
    with pytest.raises(url_access.Refused) as refused:
        await url_access.check(None, request(), "hello", ACCOUNT)
    assert refused.value.message.startswith("Forbidden: ")
    assert "authType is AWS_IAM" in refused.value.message
    assert "checks no identities" in refused.value.message


@pytest.mark.parametrize(
    ("who", "arn", "user_id"),
    [
        (Principal("alice"), f"arn:aws:iam::{ACCOUNT}:user/alice", "alice"),
        (Principal("alice", ("dev",), "uid-1"), f"arn:aws:iam::{ACCOUNT}:user/alice", "uid-1"),
        (
            Principal("system:serviceaccount:shop:orders-fn", (), "uid-2"),
            f"arn:aws:iam::{ACCOUNT}:role/shop/orders-fn",
            "uid-2",
        ),
    ],
)
def test_the_callers_arn(who: Principal, arn: str, user_id: str) -> None:
    caller = url_access.caller_of(who, "AKID", ACCOUNT)
    assert (caller.user_arn, caller.user_id, caller.caller_id) == (arn, user_id, user_id)


@pytest.mark.parametrize(
    "path", ["/url/hello/", "/url/hello", "/url/hello:live/orders/7", "/url/nobody/x"]
)
def test_urls_are_left_to_the_gateway(path: str) -> None:
    # NONE is open to anyone; AWS_IAM is checked by url_access with Lambda's answers
    assert required("POST", path) is None
    assert required("GET", path) is None
