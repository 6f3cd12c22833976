"""Function URLs with authType AWS_IAM on a real router (`klambda up --auth FILE`): a call
signed with SigV4 for `lambda` by a key of the file is served, and the function sees its
signer in `requestContext.authorizer.iam`; anything else gets Lambda's 403 Forbidden.
NONE URLs stay open to anyone; a router without access control refuses AWS_IAM URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.testing import RouterRunner

from tests.helpers import call_url

FUNCTIONS = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: whoami}
spec:
  runtime: python3.11
  handler: app.handler
  functionUrl: {authType: AWS_IAM}
  code:
    inline:
      app.py: |
        import json
        def handler(event, context):
            ctx = event["requestContext"]
            return {"statusCode": 200, "body": json.dumps({
                "iam": ctx.get("authorizer", {}).get("iam"), "path": event["rawPath"],
                "query": event.get("queryStringParameters"), "body": event.get("body")})}
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: ticker}
spec:
  runtime: python3.11
  handler: app.handler
  functionUrl: {authType: AWS_IAM, invokeMode: RESPONSE_STREAM}
  code:
    inline:
      app.py: |
        def handler(event, context):
            yield {"statusCode": 200, "headers": {"Content-Type": "text/plain"}}
            yield event["requestContext"]["authorizer"]["iam"]["userArn"]
---
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: public}
spec:
  runtime: python3.11
  handler: app.handler
  functionUrl: {authType: NONE}
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {"statusCode": 200, "body": str("authorizer" in event["requestContext"])}
"""
CREDENTIALS = """\
[alice]
aws_access_key_id = AKIDALICE
aws_secret_access_key = alice-secret
"""
FORBIDDEN = {"Message": "Forbidden"}
ALICE = ("AKIDALICE", "alice-secret")


def functions(tmp: Path) -> Path:
    (tmp / "fns").mkdir()
    (tmp / "fns" / "functions.yaml").write_text(FUNCTIONS)
    return tmp / "fns"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("url-iam")
    (tmp / "credentials").write_text(CREDENTIALS)
    auth = ("--auth", str(tmp / "credentials"))
    with RouterRunner.up(functions(tmp), "-q", *auth, workdir=tmp) as r:
        yield r


def test_a_signed_call_is_served_with_the_signer_in_the_event(router: RouterRunner) -> None:
    status, _h, body = call_url(
        f"{router.url}/url/whoami/orders/7?expand=1",
        "POST",
        b'{"n": 1}',
        sign=ALICE,
        headers={"Content-Type": "application/json"},
    )
    assert status == 200, body
    got = json.loads(body)
    assert got["path"] == "/orders/7"
    assert got["query"] == {"expand": "1"}
    assert got["body"] == '{"n": 1}'
    # the fields of Lambda's function URL payload 2.0 for AWS_IAM
    assert got["iam"] == {
        "accessKey": "AKIDALICE",
        "accountId": "000000000000",
        "callerId": "alice",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": "arn:aws:iam::000000000000:user/alice",
        "userId": "alice",
    }


def test_a_streaming_url_checks_the_signature_too(router: RouterRunner) -> None:
    status, _h, body = call_url(f"{router.url}/url/ticker/", sign=ALICE)
    assert (status, body) == (200, b"arn:aws:iam::000000000000:user/alice")
    status, _h, body = call_url(f"{router.url}/url/ticker/")
    assert (status, json.loads(body)) == (403, FORBIDDEN)


@pytest.mark.parametrize(
    ("sign", "service"),
    [
        (None, "lambda"),  # unsigned
        (("AKIDALICE", "not-her-secret"), "lambda"),  # a wrong secret
        (("AKIDMALLORY", "whatever"), "lambda"),  # a key the router does not know
        (ALICE, "execute-api"),  # signed for another service
    ],
    ids=["unsigned", "wrong-secret", "unknown-key", "other-service"],
)
def test_anything_else_is_forbidden(
    router: RouterRunner, sign: tuple[str, str] | None, service: str
) -> None:
    status, headers, body = call_url(
        f"{router.url}/url/whoami/", "POST", b"{}", sign=sign, service=service
    )
    assert status == 403
    assert json.loads(body) == FORBIDDEN
    assert headers["content-type"].startswith("application/json")


def test_a_bearer_token_is_no_signature(router: RouterRunner) -> None:
    status, _h, body = call_url(
        f"{router.url}/url/whoami/", headers={"Authorization": "Bearer some-token"}
    )
    assert (status, json.loads(body)) == (403, FORBIDDEN)


def test_refusals_are_counted(router: RouterRunner) -> None:
    call_url(f"{router.url}/url/whoami/")
    refused = router.metric("klambda_trigger_failures_total", function="whoami", reason="Forbidden")
    assert refused >= 1


def test_a_none_url_stays_open_to_anyone(router: RouterRunner) -> None:
    # the router checks identities (--auth), yet NONE means public, as on Lambda
    assert call_url(f"{router.url}/url/public/")[::2] == (200, b"False")
    # the REST API still wants a signature
    status, _h, _b = router.invoke("public", {})
    assert status == 403


def test_without_access_control_iam_urls_are_refused_saying_why(tmp_path: Path) -> None:
    with RouterRunner.up(functions(tmp_path), "-q", workdir=tmp_path) as r:
        status, _h, body = call_url(f"{r.url}/url/whoami/", sign=ALICE)
        assert status == 403
        message = json.loads(body)["Message"]
        assert message.startswith("Forbidden: ")
        assert "AWS_IAM" in message
        assert "checks no identities" in message
        # NONE is unchanged
        assert call_url(f"{r.url}/url/public/")[::2] == (200, b"False")
        out = r.output()
    assert "function URL whoami has authType AWS_IAM" in out
