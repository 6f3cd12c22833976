"""`klambda function ... --kubeconfig`: Lambda's CreateFunction, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction, tags and the event invoke configuration
written as the Function objects a user would apply, with the operator taking them in: a
.zip sent to a cluster has the CodeSha256 it has in local mode."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from klambda import codestore, contract

from tests.helpers import KLAMBDA, ROOT

from .conftest import Namespace, Operator

FILES = {
    "app.py": b"from lib.util import greet\n\ndef handler(event, context):\n    return greet()\n",
    "lib/util.py": b"def greet():\n    return 'hi'\n",
    "data.bin": bytes(range(256)),
}


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


@pytest.mark.kube
def test_function_verbs_write_the_objects_a_user_would_apply(
    ns: Namespace, operator: Operator, tmp_path: Path
) -> None:
    def klambda(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*KLAMBDA, *args, "--kubeconfig", str(ns.plane.kubeconfig), "-n", ns.name],
            capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
            env={**os.environ},
        )  # fmt: skip
        assert (out.returncode == 0) == ok, out.stdout + out.stderr
        return out

    package = tmp_path / "fn.zip"
    package.write_bytes(zipped(FILES))
    klambda(
        "function", "create", "greeter", "--runtime", "python3.11", "--handler", "app.handler",
        "--memory", "256", "--zip-file", str(package), "--tag", "team=web", "--env", "A=1",
    )  # fmt: skip
    fn = ns.wait_state("Function", "greeter", "Active")
    assert fn["status"]["codeSha256"] == codestore.digest(FILES)  # as in local mode
    spec = fn["spec"]
    assert (spec["memoryMB"], spec["environment"], spec["tags"]) == (
        256,
        {"A": "1"},
        {"team": "web"},
    )
    upload = ns.get("ConfigMap", spec["code"]["configMap"])
    assert upload is not None
    assert upload["metadata"]["labels"][contract.LABEL_COMPONENT] == "upload"

    out = klambda("function", "create", "greeter", "--runtime", "python3.11", "--handler",
                  "app.handler", "--zip-file", str(package), ok=False)  # fmt: skip
    assert "Function already exist: greeter" in out.stderr
    out = klambda("function", "create", "other", "--runtime", "python3.11", "--handler",
                  "app.handler", "--memory", "99999", "--zip-file", str(package),
                  ok=False)  # fmt: skip
    assert "MemorySize (spec.memoryMB)" in out.stderr
    assert ns.get("Function", "other") is None

    changed = {**FILES, "lib/util.py": b"def greet():\n    return 'hello'\n"}
    package.write_bytes(zipped(changed))
    out = klambda("function", "update-code", "greeter", "--zip-file", str(package), "--publish")
    assert "greeter: 1 " in out.stdout
    version = ns.get("Version", "greeter.1")
    assert version is not None
    assert version["spec"]["codeSha256"] == codestore.digest(changed)
    assert "tags" not in version["spec"]["config"]  # the function's, not the version's

    klambda("function", "update-config", "greeter", "--timeout", "30", "--env", "B=2")
    spec = ns.get("Function", "greeter")["spec"]  # type: ignore[index]
    assert (spec["timeoutSeconds"], spec["environment"], spec["memoryMB"]) == (30, {"B": "2"}, 256)
    out = klambda("function", "update-config", "greeter", "--timeout", "901", ok=False)
    assert "Timeout (spec.timeoutSeconds)" in out.stderr

    klambda(
        "function", "event-invoke-config", "put", "greeter", "--retries", "0",
        "--on-failure", "arn:aws:sqs:us-east-1:000000000000:failed",
    )  # fmt: skip
    got = json.loads(klambda("function", "event-invoke-config", "get", "greeter").stdout)
    assert got["MaximumRetryAttempts"] == 0
    assert got["DestinationConfig"]["OnFailure"]["Destination"].endswith(":failed")
    spec = ns.get("Function", "greeter")["spec"]  # type: ignore[index]
    assert spec["destinations"] == {"onFailure": {"queue": "failed"}}

    klambda("function", "tag", "greeter", "stage=prod")
    klambda("function", "untag", "greeter", "team")
    assert klambda("function", "tags", "greeter").stdout.split() == ["stage=prod"]

    klambda("function", "delete", "greeter")
    ns.wait_gone("Function", "greeter")
    assert ns.get("Version", "greeter.1") is None
    assert not ns.list("ConfigMap", labelSelector=f"{contract.LABEL_FUNCTION}=greeter,"
                       f"{contract.LABEL_COMPONENT}=upload")  # fmt: skip
