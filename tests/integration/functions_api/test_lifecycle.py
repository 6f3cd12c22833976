"""Lambda's function lifecycle through its own API against a real router (local mode):
boto3 and the AWS CLI create, change, tag, configure and delete functions; a restart keeps
them; a changed `$LATEST` is used from the next request while the old environment finishes
what it runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from klambda.testing import RouterRunner, eventually

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
ROLE = "arn:aws:iam::000000000000:role/klambda"


def package(**files: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in files.items():
            z.writestr(name.replace("__", "/"), text)
    return out.getvalue()


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def call(lam: Any, name: str, payload: Any = None) -> Any:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode())
    return json.loads(resp["Payload"].read())


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    d = tmp_path / "functions"
    d.mkdir()
    return d


def test_create_update_tag_configure_delete_and_restart(empty: Path, tmp_path: Path) -> None:
    code_v1 = package(**{"app.py": "from lib.words import WORD\ndef handler(e, c): return WORD",
                         "lib__words.py": "WORD = 'one'"})  # fmt: skip
    with RouterRunner.up(empty, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        made = lam.create_function(
            FunctionName="words",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": code_v1},
            MemorySize=256,
            Tags={"team": "data"},
        )
        assert made["State"] == "Active"
        assert made["MemorySize"] == 256
        assert made["LastUpdateStatus"] == "Successful"
        lam.get_waiter("function_active_v2").wait(FunctionName="words")
        assert call(lam, "words") == "one"
        with pytest.raises(ClientError) as err:
            lam.create_function(
                FunctionName="words", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": code_v1},
            )  # fmt: skip
        assert err.value.response["Error"]["Code"] == "ResourceConflictException"

        changed = lam.update_function_code(
            FunctionName="words", ZipFile=package(**{"app.py": "def handler(e, c): return 'two'"})
        )
        assert changed["CodeSha256"] != made["CodeSha256"]
        assert call(lam, "words") == "two"

        lam.update_function_configuration(
            FunctionName="words",
            Handler="app.other",
            Timeout=10,
            Environment={"Variables": {"WORD": "three"}},
        )
        lam.update_function_code(
            FunctionName="words",
            ZipFile=package(**{"app.py": "import os\ndef other(e, c): return os.environ['WORD']"}),
        )
        assert call(lam, "words") == "three"
        cfg = lam.get_function_configuration(FunctionName="words")
        assert (cfg["Handler"], cfg["Timeout"], cfg["MemorySize"]) == ("app.other", 10, 256)

        # asynchronous invocation's configuration, as Lambda shapes it
        lam.put_function_event_invoke_config(
            FunctionName="words",
            MaximumRetryAttempts=0,
            DestinationConfig={
                "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:failed"}
            },
        )
        lam.update_function_event_invoke_config(FunctionName="words", MaximumEventAgeInSeconds=120)
        got = lam.get_function_event_invoke_config(FunctionName="words")
        assert got["MaximumRetryAttempts"] == 0
        assert got["MaximumEventAgeInSeconds"] == 120
        assert got["DestinationConfig"]["OnFailure"]["Destination"].endswith(":failed")
        listed = lam.list_function_event_invoke_configs(FunctionName="words")
        assert len(listed["FunctionEventInvokeConfigs"]) == 1

        # tags are the function's
        lam.tag_resource(Resource=ARN + "words", Tags={"stage": "dev"})
        lam.untag_resource(Resource=ARN + "words", TagKeys=["team"])
        assert lam.list_tags(Resource=ARN + "words")["Tags"] == {"stage": "dev"}
        assert lam.get_function(FunctionName="words")["Tags"] == {"stage": "dev"}
        version = lam.publish_version(FunctionName="words")["Version"]
        assert version == "1"

    saved = tmp_path / "state" / "manifests" / "words.yaml"
    assert "kind: Function" in saved.read_text()

    with RouterRunner.up(empty, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        assert call(lam, "words") == "three"
        assert call(lam, "words:1") == "three"
        assert lam.list_tags(Resource=ARN + "words")["Tags"] == {"stage": "dev"}
        assert (
            lam.get_function_event_invoke_config(FunctionName="words")["MaximumEventAgeInSeconds"]
            == 120
        )
        lam.delete_function_event_invoke_config(FunctionName="words")
        with pytest.raises(ClientError) as err:
            lam.get_function_event_invoke_config(FunctionName="words")
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"

        lam.delete_function(FunctionName="words")
        with pytest.raises(ClientError) as err:
            lam.invoke(FunctionName="words")
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert not saved.exists()
        assert not list(saved.parent.glob("words.*"))


def test_refusals_name_the_field_and_keep_what_was_there(empty: Path, tmp_path: Path) -> None:
    ok = package(**{"app.py": "def handler(e, c): return 'ok'"})
    with RouterRunner.up(empty, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        base = {"Runtime": "python3.11", "Role": ROLE, "Handler": "app.handler"}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"Code": {"ZipFile": ok}, "MemorySize": 20000}, "MemorySize (spec.memoryMB)"),
            ({"Code": {"ZipFile": ok}, "Layers": ["arn:aws:lambda:l"]}, "Layers: not supported"),
            ({"Code": {"ZipFile": ok}, "Architectures": ["arm64"]}, "only x86_64"),
            ({"Code": {"ZipFile": b"not a zip"}}, "Code.ZipFile: is not a .zip"),
            ({"Code": {"ImageUri": "repo/fn:1"}}, "needs cluster mode"),
            ({"Code": {"S3Bucket": "bucket", "S3Key": "k.zip"}}, "klambda has no S3"),
            ({"Code": {"ZipFile": ok}, "Environment": {"Variables": {"AWS_REGION": "x"}}},
             "AWS_REGION is a reserved"),
            ({"Code": {"ZipFile": ok}, "Tags": {"aws:x": "1"}}, "aws: is reserved"),
        ]  # fmt: skip
        for extra, words in cases:
            with pytest.raises(ClientError) as err:
                lam.create_function(FunctionName="bad", **{**base, **extra})
            assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
            assert words in err.value.response["Error"]["Message"], extra
        # accepted: Lambda's defaults restated, as Terraform sends them
        lam.create_function(
            FunctionName="fine",
            **base,
            Code={"ZipFile": ok},
            TracingConfig={"Mode": "PassThrough"},
            Architectures=["x86_64"],
            EphemeralStorage={"Size": 512},
            Layers=[],
        )
        with pytest.raises(ClientError) as err:
            lam.update_function_configuration(FunctionName="fine", Timeout=901)
        assert "Timeout (spec.timeoutSeconds)" in err.value.response["Error"]["Message"]
        assert lam.get_function_configuration(FunctionName="fine")["Timeout"] == 3
        assert call(lam, "fine") == "ok"


def test_aws_cli_create_function_with_zip_file(empty: Path, tmp_path: Path) -> None:
    aws = Path(sys.executable).parent / "aws"
    assert aws.exists(), "the AWS CLI is a dev dependency: make venv installs it"
    zip_path = tmp_path / "fn.zip"
    zip_path.write_bytes(package(**{"app.py": "def handler(e, c): return {'n': e['n'] + 1}"}))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with RouterRunner.up(empty, "-q", workdir=tmp_path) as router:

        def aws_lambda(*args: str) -> Any:
            out = subprocess.run(
                [str(aws), "lambda", *args, "--endpoint-url", router.url, "--output", "json"],
                capture_output=True, text=True, env=env, timeout=60, check=False,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout) if out.stdout.strip() else None

        made = aws_lambda(
            "create-function", "--function-name", "plus", "--runtime", "python3.11",
            "--handler", "app.handler", "--role", ROLE, "--zip-file", f"fileb://{zip_path}",
        )  # fmt: skip
        assert made["FunctionName"] == "plus"
        aws_lambda(
            "update-function-configuration", "--function-name", "plus", "--memory-size", "512"
        )
        aws_lambda(
            "put-function-event-invoke-config", "--function-name", "plus",
            "--maximum-retry-attempts", "1",
        )  # fmt: skip
        out_file = tmp_path / "out.json"
        aws_lambda(
            "invoke", "--function-name", "plus", "--payload", '{"n": 1}',
            str(out_file),
        )  # fmt: skip
        assert json.loads(out_file.read_text()) == {"n": 2}
        got = aws_lambda("get-function", "--function-name", "plus")
        assert got["Configuration"]["MemorySize"] == 512
        aws_lambda("delete-function", "--function-name", "plus")


SLOW = """import time, os
def handler(e, c):
    time.sleep(e.get('sleep', 0))
    return {'code': CODE, 'pid': os.getpid()}
"""


def test_new_latest_from_the_next_request_old_environment_drained(
    empty: Path, tmp_path: Path
) -> None:
    with RouterRunner.up(empty, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        lam.create_function(
            FunctionName="slow", Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Timeout=30, Code={"ZipFile": package(**{"app.py": "CODE = 1\n" + SLOW})},
        )  # fmt: skip
        first = call(lam, "slow")
        results: list[Any] = []
        busy = threading.Thread(target=lambda: results.append(call(lam, "slow", {"sleep": 3})))
        busy.start()
        eventually(lambda: router.metric("klambda_concurrent_executions") == 1, "one running")
        lam.update_function_code(
            FunctionName="slow", ZipFile=package(**{"app.py": "CODE = 2\n" + SLOW})
        )
        second = call(lam, "slow")
        assert second["code"] == 2
        busy.join(30)
        assert results[0] == {"code": 1, "pid": first["pid"]}  # finished where it started
        envs = router.environments
        eventually(lambda: not os.path.exists(f"/proc/{first['pid']}"), "the old one closed")
        assert second["pid"] in envs()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "functions"
    d.mkdir()
    (d / "hello.yaml").write_text(
        """apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: hello}
spec:
  runtime: python3.11
  handler: app.handler
  code:
    inline:
      app.py: |
        def handler(e, c): return 'folder'
"""
    )
    return d


def test_a_folder_function_changed_through_the_api(folder: Path, tmp_path: Path) -> None:
    with RouterRunner.up(folder, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        lam.update_function_code(
            FunctionName="hello", ZipFile=package(**{"app.py": "def handler(e, c): return 'api'"})
        )
        lam.update_function_configuration(FunctionName="hello", MemorySize=512)
        assert call(lam, "hello") == "api"
        with pytest.raises(ClientError) as err:
            lam.delete_function(FunctionName="hello")
        assert "remove that manifest" in err.value.response["Error"]["Message"]
    with RouterRunner.up(folder, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        assert call(lam, "hello") == "api"  # kept across a restart
        assert lam.get_function_configuration(FunctionName="hello")["MemorySize"] == 512
    # the folder's manifest edited afterwards: it wins again
    manifest = folder / "hello.yaml"
    manifest.write_text(manifest.read_text().replace("'folder'", "'edited'"))
    with RouterRunner.up(folder, "-q", workdir=tmp_path) as router:
        lam = lambda_client(router.url)
        assert call(lam, "hello") == "edited"
        assert lam.get_function_configuration(FunctionName="hello")["MemorySize"] == 128
