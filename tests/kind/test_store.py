"""Code larger than a ConfigMap and two layers, through the chart's store, on real pods.

The command line publishes two layers from folders (the .zips go to the store through a
port-forward, the Layers point at them, the operator publishes their versions) and
creates a function whose code (1.5 MB) no ConfigMap holds: it goes to the store too. Its
first call takes a warm pool pod, which the router gives the objects' keys: the pod
downloads the code and the layers, checks each against its digest and unpacks them; the
handler imports a library from /opt/python, reads a file that both layers have (the
later one wins), runs a layer's executable, and finds its large file in its code.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import FUNCTIONS_NAMESPACE, ROOT, Cluster, wait_for

APP = """\
import os, subprocess
import greet

def handler(event, context):
    root = os.environ["LAMBDA_TASK_ROOT"]
    return {
        "word": greet.WORD,
        "data": open("/opt/data/words.txt").read(),
        "tool": subprocess.run(["/opt/bin/tool"], capture_output=True, text=True).stdout,
        "blob": os.path.getsize(os.path.join(root, "blob.bin")),
    }
"""
BLOB = 1_500_000  # bytes of random data: more than a ConfigMap holds, even zipped


def klambda(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv/bin/klambda"), *args, "--kubeconfig", str(cluster.kubeconfig),
         "-n", FUNCTIONS_NAMESPACE],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "KLAMBDA_KUBECTL": str(cluster.bin_dir / "kubectl")},
    )  # fmt: skip


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    libs, data, code = tmp_path / "libs", tmp_path / "data", tmp_path / "code"
    (libs / "python").mkdir(parents=True)
    (libs / "python" / "greet.py").write_text("WORD = 'hi from a layer'\n")
    (libs / "data").mkdir()
    (libs / "data" / "words.txt").write_text("from libs\n")
    (libs / "bin").mkdir()
    (libs / "bin" / "tool").write_text("#!/bin/sh\necho tool ran\n")
    (libs / "bin" / "tool").chmod(0o755)
    (data / "data").mkdir(parents=True)
    (data / "data" / "words.txt").write_text("from data\n")
    code.mkdir()
    (code / "app.py").write_text(APP)
    (code / "blob.bin").write_bytes(os.urandom(BLOB))
    return {"libs": libs, "data": data, "code": code}


@pytest.fixture(autouse=True)
def _cleanup(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.kubectl("delete", "functions,layers", "-n", FUNCTIONS_NAMESPACE, "--ignore-not-found",
                    "--wait=false", "stored", "libs", "data", check=False)  # fmt: skip


def test_large_code_and_two_layers_from_the_store(
    cluster: Cluster, folders: dict[str, Path]
) -> None:
    for name in ("libs", "data"):
        out = klambda(cluster, "layer", "publish", name, str(folders[name]))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"{name}:1\t"), out.stdout
    out = klambda(
        cluster, "function", "create", "stored", "--code", str(folders["code"]),
        "--handler", "app.handler", "--runtime", "python3.11", "--timeout", "30",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    fn: dict[str, Any] = cluster.get("function", "stored", "-n", FUNCTIONS_NAMESPACE)
    key = fn["spec"]["code"]["s3Key"]
    assert key.startswith("code/")
    assert key.endswith(".zip")
    patch = {"spec": {"layers": ["libs:1", "data:1"]}}
    cluster.kubectl("patch", "function", "stored", "-n", FUNCTIONS_NAMESPACE, "--type=merge",
                    "-p", json.dumps(patch))  # fmt: skip

    def answered() -> dict[str, Any] | None:
        status, _headers, body = cluster.invoke("stored", {})
        answer = json.loads(body or b"null")
        return answer if status == 200 and isinstance(answer, dict) and "word" in answer else None

    answer = wait_for("the function on its code and layers", answered, timeout=240, interval=3)
    assert answer == {
        "word": "hi from a layer",
        "data": "from data\n",  # the later layer wins
        "tool": "tool ran\n",  # its mode kept
        "blob": BLOB,
    }

    # a warm pool pod served it: the router gave it the objects, it downloaded them (the
    # pod is relabelled into the function just after its first answer)
    labels = [p["metadata"]["labels"] for p in cluster.function_pods("stored")]
    assert [x.get("klambda.io/component") for x in labels] == ["specialised"], labels
    fn = cluster.get("function", "stored", "-n", FUNCTIONS_NAMESPACE)
    assert fn["status"]["codeObject"] == key
    assert [x["ref"] for x in fn["status"]["layers"]] == ["libs:1", "data:1"]
