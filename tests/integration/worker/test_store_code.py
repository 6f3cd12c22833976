"""Code and layers from the cluster's code store: a real MinIO server whose bucket lets
anyone get `code/*` and `layers/*` (objects put with boto3), and real `klambda worker`
processes that fetch them (plain GETs), check them against their keys, unpack them into
their code and opt roots, and run a Python function that imports a layer's library from
/opt/python and reads a layer's data file, invoked over the worker's gRPC service."""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from klambda import contract
from klambda.contract import OBJECT_CODE, OBJECT_LAYER, object_key, parse_object_key
from klambda.execution import FunctionConfig
from klambda.proto import worker_pb2, worker_pb2_grpc
from klambda.testing import LOOPBACK, eventually, free_port, still_running

from tests.helpers import KLAMBDA, ROOT
from tests.minioserver import PASSWORD, USER, minio_server

BUCKET = "klambda"

APP = """\
import os, subprocess, sys
import greeting

def handler(event, context):
    opt = os.path.dirname(os.path.dirname(greeting.__file__))
    read = lambda name: open(os.path.join(opt, "data", name)).read()
    return {
        "greeting": greeting.greet(event["name"]),
        "message": read("message.txt"),
        "first": read("first.txt"),
        "tool": subprocess.run(["tool"], capture_output=True, text=True).stdout,
        "opt_python": opt + "/python" in sys.path,
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
        "opt": opt,
    }
"""


def zipped(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A .zip of {path: (content, unix mode)}; a regular file unless the mode says."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (mode if mode >> 12 else 0o100000 | mode) << 16
            archive.writestr(info, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


CODE = zipped({"app.py": (APP.encode(), 0o644)})
LIBRARY = zipped(
    {
        "python/greeting.py": (b"def greet(name):\n    return f'Hello, {name}'\n", 0o644),
        "data/message.txt": (b"from the first layer", 0o644),
        "data/first.txt": (b"only in the first layer", 0o644),
    }
)
DATA = zipped(
    {
        "data/message.txt": (b"from the second layer", 0o644),
        "bin/tool": (b"#!/bin/sh\necho tool ran\n", 0o755),
    }
)


@dataclass
class Store:
    url: str  # with the bucket
    client: Any

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
        return key


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """MinIO with the bucket as the chart makes it: GetObject for anyone on code/* and
    layers/*, no listing; the test's objects in it."""
    tmp = tmp_path_factory.mktemp("store")
    with minio_server(tmp) as minio:
        client = boto3.client(
            "s3", endpoint_url=minio.url, region_name="us-east-1",
            aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [
                        f"arn:aws:s3:::{BUCKET}/code/*",
                        f"arn:aws:s3:::{BUCKET}/layers/*",
                    ],
                }
            ],
        }
        client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
        s = Store(f"{minio.url}/{BUCKET}", client)
        s.put(object_key(OBJECT_CODE, CODE), CODE)
        s.put(object_key(OBJECT_LAYER, LIBRARY), LIBRARY)
        s.put(object_key(OBJECT_LAYER, DATA), DATA)
        yield s


LAYERS = [object_key(OBJECT_LAYER, LIBRARY), object_key(OBJECT_LAYER, DATA)]


def config(code_root: Path, code: str) -> FunctionConfig:
    sha = parse_object_key(code).code_sha256
    return FunctionConfig(
        "shelf", "1", "app.handler", "python3.11", 128, 10, {}, str(code_root), sha
    )


def start_worker(
    tmp: Path, url: str, code: str, layers: list[str], name: str = "worker"
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """A version's own worker whose pod environment names objects of the store."""
    port = free_port()
    env = {
        **os.environ,
        **contract.worker_environment(config(tmp / "task", code)),
        **contract.store_environment(url, code, layers),
        contract.OPT_ROOT_ENV: str(tmp / "opt"),
    }
    log = tmp / f"{name}.log"
    with log.open("wb") as out, (tmp / f"{name}.err").open("wb") as err:
        proc = subprocess.Popen(
            [*KLAMBDA, "worker", "--function", "shelf", "--version", "1",
             "--host", LOOPBACK, "--port", str(port)],
            env=env, stdout=out, stderr=err, cwd=ROOT,
        )  # fmt: skip
    return proc, port, log


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


def serving(proc: subprocess.Popen[bytes], log: Path) -> None:
    eventually(
        lambda: still_running(proc, log) and b" on 127.0.0.1:" in log.read_bytes(),
        "the worker serving",
        timeout=60,
    )


def invoke(port: int, event: dict[str, Any]) -> dict[str, Any]:
    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)  # type: ignore[no-untyped-call]
        reply = stub.Invoke(
            worker_pb2.WorkerInvokeRequest(
                request_id=str(uuid.uuid4()), payload=json.dumps(event).encode()
            ),
            timeout=60,
        )
    assert reply.status == "ok", reply
    result: dict[str, Any] = json.loads(reply.body)
    return result


def unpacked(root: Path) -> list[str]:
    """What a root holds, but the record of its objects."""
    if not root.exists():
        return []
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.name != ".klambda-objects"
    )


def test_a_worker_serves_code_and_layers_from_the_store(
    store: Store, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    code = object_key(OBJECT_CODE, CODE)
    proc, port, log = start_worker(tmp_path, store.url, code, LAYERS)
    workers.append(proc)
    serving(proc, log)
    assert b"code and layers fetched from" in log.read_bytes()

    out = invoke(port, {"name": "Ada"})
    assert out["greeting"] == "Hello, Ada"  # the first layer's library, from /opt/python
    assert out["message"] == "from the second layer"  # the later layer wins
    assert out["first"] == "only in the first layer"
    assert out["tool"] == "tool ran\n"  # /opt/bin on PATH, still executable
    assert out["opt_python"]
    assert out["ld_library_path"] == f"{out['opt']}/lib"

    task, opt = tmp_path / "task", tmp_path / "opt"
    assert unpacked(task) == ["app.py"]
    assert unpacked(opt) == sorted(
        ["bin", "bin/tool", "data", "data/first.txt", "data/message.txt", "python",
         "python/greeting.py"]
    )  # fmt: skip
    assert (task / "app.py").stat().st_mode & 0o777 == 0o444
    assert (opt / "bin/tool").stat().st_mode & 0o777 == 0o555

    # started again in the same pod, the worker fetches nothing: it serves with no store
    proc.terminate()
    proc.wait(timeout=20)
    again, port, log = start_worker(tmp_path, "http://127.0.0.1:9", code, LAYERS, "again")
    workers.append(again)
    serving(again, log)
    assert b"code and layers unpacked already" in log.read_bytes()
    assert invoke(port, {"name": "Bo"})["greeting"] == "Hello, Bo"


@pytest.mark.parametrize("failure", ["mismatch", "missing"])
def test_a_worker_refuses_an_object_it_cannot_have(
    store: Store, tmp_path: Path, workers: list[subprocess.Popen[bytes]], failure: str
) -> None:
    if failure == "mismatch":  # bytes that are not those of their key
        code = store.put(object_key(OBJECT_CODE, b"other bytes"), CODE)
        reason = "digest to"
    else:
        code = object_key(OBJECT_CODE, b"never put")
        reason = "HTTP 40"
    proc, _port, log = start_worker(tmp_path, store.url, code, LAYERS)
    workers.append(proc)
    assert proc.wait(timeout=60) != 0
    lines = (tmp_path / "worker.err").read_text().strip().splitlines()
    assert len(lines) == 1, lines
    for part in (code, store.url, reason):
        assert part in lines[0], lines[0]
    assert b" on 127.0.0.1:" not in log.read_bytes()  # it never served
    assert unpacked(tmp_path / "task") == []  # nothing half-written
    assert unpacked(tmp_path / "opt") == []


def specialise_request(code: str, layers: list[str]) -> worker_pb2.SpecialiseRequest:
    return worker_pb2.SpecialiseRequest(
        function="shelf",
        version="1",
        handler="app.handler",
        runtime="python3.11",
        memory_mb=128,
        timeout_seconds=10,
        code_sha256=parse_object_key(code).code_sha256,
        code_object=code,
        layer_objects=layers,
    )


def big_layer() -> bytes:
    """A small object that unpacks past Lambda's 250 MB."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("data/zeros", "w", force_zip64=True) as f,
    ):
        for _ in range(251):
            f.write(bytes(1024 * 1024))
    return out.getvalue()


def test_a_pool_worker_is_specialised_with_objects_of_the_store(
    store: Store, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    log = tmp_path / "pool.log"
    env = {
        **os.environ,
        contract.STORE_URL_ENV: store.url,
        contract.OPT_ROOT_ENV: str(tmp_path / "opt"),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*KLAMBDA, "worker", "--pool", "python3.11", "--host", LOOPBACK, "--port", str(port),
             "--code-dir", str(tmp_path / "task")],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    workers.append(proc)
    serving(proc, log)
    code = object_key(OBJECT_CODE, CODE)
    big = store.put(object_key(OBJECT_LAYER, big_layer_bytes := big_layer()), big_layer_bytes)
    missing = object_key(OBJECT_LAYER, b"never put")
    escape = zipped({"python/passwd": (b"/etc/passwd", 0o120777)})  # a link out of /opt
    escaping = store.put(object_key(OBJECT_LAYER, escape), escape)
    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)  # type: ignore[no-untyped-call]

        # what cannot be had is refused, naming the field and the object, and the pod is
        # left as it was: still a pool pod
        for layers, field, says in [
            ([LAYERS[0], missing], "layer_objects", missing),
            ([LAYERS[0], big], "code_object, layer_objects", "maximum allowed size of 262144000"),
            ([LAYERS[0], escaping], "layer_objects", "'/etc/passwd', outside the root"),
        ]:
            with pytest.raises(grpc.RpcError) as refused:
                stub.Specialise(specialise_request(code, layers), timeout=60)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            details = refused.value.details() or ""
            assert details.startswith(f"{field}: "), details
            assert says in details, details
            assert unpacked(tmp_path / "task") == []
            assert unpacked(tmp_path / "opt") == []

        first = stub.Specialise(specialise_request(code, LAYERS), timeout=60)
        assert first.code_root == str(tmp_path / "task")
        assert first.unpack_ms > 0
        out = invoke(port, {"name": "Cy"})
        assert (out["greeting"], out["message"]) == ("Hello, Cy", "from the second layer")

        # the same specialisation again: answered at once, nothing fetched or written
        again = stub.Specialise(specialise_request(code, LAYERS), timeout=60)
        assert again.unpack_ms == 0
        assert invoke(port, {"name": "Di"})["greeting"] == "Hello, Di"
        # other layers are another configuration: refused for the life of the pod
        with pytest.raises(grpc.RpcError) as refused:
            stub.Specialise(specialise_request(code, LAYERS[:1]), timeout=60)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
