"""Code and layers in the cluster's store: a real MinIO beside the real API server.

Layers publish their content as content-addressed versions; a Function whose code is a
.zip of the store (`spec.code.s3Key`) and that names layers gets worker pods that download
them; what the store gives out without credentials is only the digests' objects; the
250 MB limit across code and layers is refused with Lambda's message; the command line
publishes a layer from a folder.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from klambda import codestore

from tests.minioserver import PASSWORD, USER, MinioServer, minio_server

from .conftest import Namespace, Operator, condition, function_manifest

BUCKET = "klambda"
KLAMBDA = str(Path(sys.executable).parent / "klambda")  # the command line, in the venv


def zip_of(files: dict[str, bytes]) -> bytes:
    return codestore.zip_files(files)


def hex_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    with minio_server(tmp_path_factory.mktemp("store")) as server:
        yield server


@pytest.fixture
def s3(minio: MinioServer) -> Any:
    return boto3.client(
        "s3", endpoint_url=minio.url, region_name="us-east-1",
        aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
    )  # fmt: skip


@pytest.fixture
def store_operator(minio: MinioServer, start_operator: Callable[..., Operator]) -> Operator:
    return start_operator(
        store_endpoint=minio.url, store_access_key=USER, store_secret_key=PASSWORD
    )


def layer(name: str, content: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Layer",
        "metadata": {"name": name},
        "spec": {"description": description, "content": content},
    }


def anonymous_get(minio: MinioServer, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{minio.url}/{BUCKET}/{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def versions(ns: Namespace, name: str) -> list[dict[str, Any]]:
    return list(ns.status_of("Layer", name).get("versions") or [])


@pytest.mark.kube
def test_layers_publish_content_addressed_versions(
    ns: Namespace, store_operator: Operator, minio: MinioServer
) -> None:
    ns.apply(layer("libs", {"inline": {"python/greet.py": "WORD = 'hi'\n"}}, "first"))
    body = ns.wait(
        lambda: (b := ns.get("Layer", "libs")) and versions(ns, "libs") and b,
        "libs version 1",
        timeout=60,  # the Layer CRD's watch may still be starting on a fresh API server
    )
    (v1,) = body["status"]["versions"]
    data = zip_of({"python/greet.py": b"WORD = 'hi'\n"})
    assert v1["version"] == 1
    assert body["status"]["latestVersion"] == 1
    assert v1["object"] == f"layers/{hex_of(data)}.zip"
    assert v1["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert v1["size"] == len(b"WORD = 'hi'\n")
    assert v1["description"] == "first"
    assert body["status"]["state"] == "Active"
    assert condition(body, "Ready")["reason"] == "Published"

    # the digests' objects are anyone's to get; listing and other keys are not
    assert anonymous_get(minio, v1["object"]) == 200
    assert anonymous_get(minio, "") == 403
    assert anonymous_get(minio, "uploads/x.zip") == 403

    # the same files again: no new version; other files: the next one, 1 unchanged
    ns.apply(layer("libs", {"inline": {"python/greet.py": "WORD = 'hi'\n"}}, "again"))
    ns.apply(layer("libs", {"inline": {"python/greet.py": "WORD = 'hello'\n"}}, "second"))
    ns.wait(lambda: len(versions(ns, "libs")) == 2, "libs version 2")
    v1_again, v2 = versions(ns, "libs")
    assert v1_again == v1
    assert v2["version"] == 2
    assert v2["description"] == "second"

    # a path is local mode's
    ns.apply(layer("local", {"path": "./libs"}))
    failed = ns.wait_state("Layer", "local", "Failed")
    assert "spec.content.path" in failed["status"]["stateReason"]


@pytest.mark.kube
def test_function_with_store_code_and_layers(
    ns: Namespace, store_operator: Operator, minio: MinioServer, s3: Any
) -> None:
    code = zip_of({"app.py": b"def handler(event, context):\n    return 1\n"})
    s3.put_object(Bucket=BUCKET, Key="uploads/app.zip", Body=code)
    ns.apply(layer("libs", {"inline": {"python/greet.py": "WORD = 'hi'\n"}}))
    ns.apply(layer("data", {"inline": {"data/words.txt": "hi\n"}}))
    ns.wait(lambda: versions(ns, "libs") and versions(ns, "data"), "the layers' versions")
    refs = ["libs:1", "data:1"]
    ns.apply(function_manifest("big", code={"s3Key": "uploads/app.zip"}, layers=refs))
    fn = ns.wait_state("Function", "big", "Active")
    sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert fn["status"]["codeSha256"] == sha  # Lambda's CodeSha256 of a .zip
    key = f"code/{hex_of(code)}.zip"
    assert condition(fn, "CodeReady")["message"] == f"store object {key}"
    assert anonymous_get(minio, key) == 200  # copied under its digest
    # what it runs from the store, for the routers that give it to pool pods
    assert fn["status"]["codeObject"] == key
    assert [(x["ref"], x["object"]) for x in fn["status"]["layers"]] == [
        (ref, versions(ns, ref.split(":")[0])[0]["object"]) for ref in refs
    ]

    deployment = ns.wait(lambda: ns.get("Deployment", "big-latest"), "big's Deployment")
    env = env_of(deployment)
    layer_keys = [versions(ns, n)[0]["object"] for n in ("libs", "data")]
    assert env["KLAMBDA_STORE_URL"] == f"{minio.url}/{BUCKET}"
    assert env["KLAMBDA_CODE_OBJECT"] == key
    assert env["KLAMBDA_LAYER_OBJECTS"] == ",".join(layer_keys)
    assert env["KLAMBDA_CODE_SHA256"] == sha
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["code"]["emptyDir"]["sizeLimit"] == "250Mi"
    assert volumes["opt"]["emptyDir"]["sizeLimit"] == "250Mi"
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["opt"]["mountPath"] == "/opt"
    assert not mounts["code"].get("readOnly")
    # no ConfigMap was made for it
    assert not [c for c in ns.list("ConfigMap") if c["metadata"]["name"].startswith("big-code")]

    # the object it names changes: $LATEST follows, as it follows a ConfigMap it names
    # (a published Version keeps its digest)
    code2 = zip_of({"app.py": b"def handler(event, context):\n    return 2\n"})
    s3.put_object(Bucket=BUCKET, Key="uploads/app.zip", Body=code2)
    ns.patch("Function", "big", {"spec": {"description": "touched"}})
    fn = ns.wait(
        lambda: (
            (f := ns.get("Function", "big"))
            and f["status"].get("codeSha256")
            == base64.b64encode(hashlib.sha256(code2).digest()).decode()
            and f
        ),
        "big on the new code",
    )
    assert env_of(ns.get("Deployment", "big-latest") or {})["KLAMBDA_CODE_OBJECT"] == (
        f"code/{hex_of(code2)}.zip"
    )


@pytest.mark.kube
def test_missing_layer_waits_and_oversized_is_refused(
    ns: Namespace, store_operator: Operator, s3: Any
) -> None:
    ns.apply(function_manifest("waits", layers=["later:1"]))
    failed = ns.wait_state("Function", "waits", "Failed")
    assert failed["status"]["stateReason"] == "spec.layers[0]: Layer 'later' does not exist"
    assert condition(failed, "CodeReady")["reason"] == "LayerNotFound"
    ns.apply(layer("later", {"inline": {"python/x.py": "X = 1\n"}}))
    ns.wait_state("Function", "waits", "Active")  # published: the function runs

    # 200 MB of zeros in a layer, 60 MB in the code: a .zip of a few hundred KB each
    def zeros(name: str, mb: int) -> bytes:
        out = io.BytesIO()
        with (
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open(name, "w", force_zip64=True) as f,
        ):
            for _ in range(mb):
                f.write(bytes(1024 * 1024))
        return out.getvalue()

    s3.put_object(Bucket=BUCKET, Key="uploads/big-layer.zip", Body=zeros("data/a.bin", 200))
    s3.put_object(Bucket=BUCKET, Key="uploads/big-code.zip", Body=zeros("app.bin", 60))
    ns.apply(layer("heavy", {"s3Key": "uploads/big-layer.zip"}))
    ns.wait(lambda: versions(ns, "heavy"), "heavy version 1", timeout=60)
    ns.apply(
        function_manifest("toobig", code={"s3Key": "uploads/big-code.zip"}, layers=["heavy:1"])
    )
    failed = ns.wait_state("Function", "toobig", "Failed", timeout=60)
    total = 260 * 1024 * 1024
    assert failed["status"]["stateReason"] == (
        "spec.layers: Function code combined with layers exceeds the maximum allowed size "
        f"of 262144000 bytes. The actual size is {total} bytes."
    )
    assert ns.get("Deployment", "toobig-latest") is None  # nothing runs


@pytest.mark.kube
def test_no_store_refuses_layers_naming_the_setting(
    ns: Namespace, start_operator: Callable[..., Operator]
) -> None:
    start_operator()
    ns.apply(layer("libs", {"inline": {"python/greet.py": "WORD = 'hi'\n"}}))
    failed = ns.wait_state("Layer", "libs", "Failed")
    assert "the cluster has no store of code and layers" in failed["status"]["stateReason"]


@pytest.mark.kube
def test_command_line_publishes_a_folder(
    ns: Namespace, store_operator: Operator, minio: MinioServer, tmp_path: Path
) -> None:
    # the store's Secret, as the chart makes it, in the namespace the command line reads
    ns.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "klambda-store"},
            "stringData": {"accessKey": USER, "secretKey": PASSWORD},
        }
    )
    folder = tmp_path / "tools"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (folder / "bin" / "hello").chmod(0o755)
    env = {
        **os.environ,
        "KLAMBDA_SYSTEM_NAMESPACE": ns.name,
        # no kubelet here to port-forward through: the store's own address
        "KLAMBDA_STORE_ENDPOINT": minio.url,
    }

    def publish() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KLAMBDA, "layer", "publish", "tools", str(folder),
             "--kubeconfig", str(ns.plane.kubeconfig), "-n", ns.name],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    out = publish()
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("tools:1\tarn:aws:lambda:us-east-1:000000000000:layer:tools:1\t")
    (v1,) = versions(ns, "tools")
    # the executable stays one: the .zip keeps its mode
    with contextlib.closing(urllib.request.urlopen(f"{minio.url}/{BUCKET}/{v1['object']}")) as r:
        archive = zipfile.ZipFile(io.BytesIO(r.read()))
    assert (archive.getinfo("bin/hello").external_attr >> 16) & 0o111
    again = publish()  # the same folder: the same version
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("tools:1\t")
    assert len(versions(ns, "tools")) == 1
