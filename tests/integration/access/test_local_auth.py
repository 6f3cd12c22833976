"""`klambda up --auth FILE`: SigV4 with the keys of an AWS credentials file, as boto3
signs; everything else refused with Lambda's error shapes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import grpc
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.testing import RouterRunner

from tests.helpers import KLAMBDA

FUNCTIONS = Path(__file__).parent.parent / "fuzz" / "functions"
CREDENTIALS = """\
[alice]
aws_access_key_id = AKIDALICE
aws_secret_access_key = alice-secret
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "credentials").write_text(CREDENTIALS)
    with RouterRunner.up(FUNCTIONS, "-q", "--auth", str(tmp / "credentials"), workdir=tmp) as r:
        yield r


def client(r: RouterRunner, key: str, secret: str) -> object:
    return boto3.client(
        "lambda",
        endpoint_url=r.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )


def test_a_key_of_the_file_may_invoke_and_read(router: RouterRunner) -> None:
    lam = client(router, "AKIDALICE", "alice-secret")
    resp = lam.invoke(FunctionName="target", Payload=b'{"hi": 1}')  # type: ignore[attr-defined]
    assert json.loads(resp["Payload"].read()) == {"hi": 1}
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]  # type: ignore[attr-defined]
    assert names == ["target"]


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        ("AKIDALICE", "wrong-secret", "InvalidSignatureException"),
        ("AKIDMALLORY", "whatever", "UnrecognizedClientException"),
    ],
)
def test_a_bad_signature_or_an_unknown_key_is_refused(
    router: RouterRunner, key: str, secret: str, code: str
) -> None:
    lam = client(router, key, secret)
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName="target", Payload=b"{}")  # type: ignore[attr-defined]
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_no_credentials_at_all(router: RouterRunner) -> None:
    status, headers, body = router.invoke("target", {})
    assert status == 403
    assert headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert "Missing Authentication Token" in json.loads(body)["message"]
    # health and metrics stay open (probes, Prometheus)
    assert router.metrics()


def test_grpc_needs_a_token_too(router: RouterRunner) -> None:
    with grpc.insecure_channel(router.grpc_target) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(invoker_pb2.InvokeRequest(function_name="target", payload=b"{}"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_cli_signs_with_the_callers_aws_credentials(router: RouterRunner) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base["KLAMBDA_ENDPOINT"] = router.url

    def cli(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KLAMBDA, "invoke", "target", "--payload", '{"via": "cli"}'],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    signed = cli(AWS_ACCESS_KEY_ID="AKIDALICE", AWS_SECRET_ACCESS_KEY="alice-secret")
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout) == {"via": "cli"}
    unsigned = cli()
    assert unsigned.returncode != 0
    assert "UnrecognizedClientException" in unsigned.stderr
