"""A pool pod becomes one version's: the claim that moves it out of its pool, the digest
that tells a stale one, and what a pool worker accepts to become."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from klambda import codestore, contract
from klambda.execution import FunctionConfig
from klambda.proto import worker_pb2
from klambda.worker.specialise import SpecialiseInvalid, config_of_request

CFG = FunctionConfig(
    "hello", "3", "app.handler", "python3.11", 512, 30, {"A": "1"}, "", "c2hh", "eu-west-1"
)


def test_claim_moves_the_pod_out_of_the_pool_into_the_version() -> None:
    owner = {"kind": "Version", "name": "hello.3", "uid": "v-uid"}
    patch = contract.claim_patch(CFG, owner, "pod-uid", "2026-01-01T00:00:00Z")
    meta = patch["metadata"]
    assert meta["uid"] == "pod-uid"
    assert meta["labels"] == {
        contract.LABEL_POOL: None,
        "pod-template-hash": None,
        "klambda.io/component": "specialised",
        "klambda.io/function": "hello",
        "klambda.io/version": "3",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Version",
            "name": "hello.3",
            "uid": "v-uid",
            "controller": True,
        }
    ]
    assert meta["annotations"][contract.ANNOTATION_CONFIG_SHA256] == contract.config_digest(CFG)
    latest = contract.claim_patch(replace(CFG, version="$LATEST"), owner, "u", "t")
    assert latest["metadata"]["labels"]["klambda.io/version"] == "latest"


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"code_root": "/elsewhere", "region": "us-west-2", "account": "1"}, True),
        ({"memory_mb": 1024}, False),
        ({"environment": {"A": "2"}}, False),
        ({"code_sha256": "b3RoZXI="}, False),
        ({"handler": "app.other"}, False),
    ],
)
def test_config_digest(change: dict[str, Any], same: bool) -> None:
    assert (contract.config_digest(replace(CFG, **change)) == contract.config_digest(CFG)) is same


def test_pool_names() -> None:
    assert contract.pool_name("python3.11") == "klambda-pool-python3-11"


def request(**change: Any) -> worker_pb2.SpecialiseRequest:
    files = {"app.py": b"def handler(e, c):\n    return 1\n"}
    cfg = replace(CFG, code_sha256=codestore.digest(files))
    req = worker_pb2.SpecialiseRequest(
        function=cfg.function,
        version=cfg.version,
        handler=cfg.handler,
        runtime=cfg.runtime,
        memory_mb=cfg.memory_mb,
        timeout_seconds=cfg.timeout_s,
        environment=cfg.environment,
        code_sha256=cfg.code_sha256,
        region=cfg.region,
        account=cfg.account,
        files=[worker_pb2.CodeFile(path=p, content=c) for p, c in files.items()],
    )
    for key, value in change.items():
        setattr(req, key, value)
    return req


def test_a_specialise_request_is_the_version_s_config() -> None:
    cfg = config_of_request(request(), "python3.11", "/var/task")
    assert cfg == replace(CFG, code_root="/var/task", code_sha256=request().code_sha256)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"runtime": "python3.12"}, "runtime: this worker is of the python3.11 pool"),
        ({"function": ""}, "function: must not be empty"),
        ({"memory_mb": 64}, "memory_mb: 64 is not within 128-10240"),
        ({"timeout_seconds": 901}, "timeout_seconds: 901 is not within 1-900"),
        ({"code_sha256": ""}, "code_sha256: must not be empty"),
    ],
)
def test_a_specialise_request_is_checked_field_by_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecialiseInvalid, match=field):
        config_of_request(request(**change), "python3.11", "/var/task")


CODE_OBJECT = contract.object_key(contract.OBJECT_CODE, b"the code's zip")
LAYER_OBJECTS = [contract.object_key(contract.OBJECT_LAYER, b"a layer's zip")]


def store_request(**change: Any) -> worker_pb2.SpecialiseRequest:
    req = request(
        code_sha256=contract.parse_object_key(CODE_OBJECT).code_sha256, code_object=CODE_OBJECT
    )
    del req.files[:]
    req.layer_objects.extend(LAYER_OBJECTS)
    for key, value in change.items():
        if key == "layer_objects":
            del req.layer_objects[:]
            req.layer_objects.extend(value)
        else:
            setattr(req, key, value)
    return req


def test_a_request_naming_objects_of_the_store_has_its_layers_at_the_opt_root() -> None:
    cfg = config_of_request(store_request(), "python3.11", "/var/task", "/opt")
    assert (cfg.code_sha256, cfg.opt_root) == (store_request().code_sha256, "/opt")
    no_layers = config_of_request(store_request(layer_objects=[]), "python3.11", "/a", "/opt")
    assert no_layers.opt_root == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code_object": "code/x.zip"}, "code_object: 'code/x.zip' is not an object of the store"),
        ({"code_object": LAYER_OBJECTS[0]}, "code_object: .* is not an object of code/"),
        ({"code_sha256": "c2hh"}, "code_sha256: c2hh is not the CodeSha256 of code_object"),
        ({"layer_objects": [CODE_OBJECT]}, "layer_objects: .* is not an object of layers/"),
        ({"layer_objects": ["layers/../code.zip"]}, "layer_objects: .* not an object of the"),
        ({"layer_objects": LAYER_OBJECTS * 6}, "layer_objects: 6 layers, more than 5"),
    ],
)
def test_objects_of_the_store_are_checked(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecialiseInvalid, match=field):
        config_of_request(store_request(**change), "python3.11", "/var/task", "/opt")


def test_layers_are_part_of_the_digest_that_tells_a_stale_pod() -> None:
    with_layers = replace(CFG, layers=("libs:1",))
    assert contract.config_digest(with_layers) != contract.config_digest(CFG)
    assert contract.config_digest(replace(CFG, layers=("libs:2",))) != contract.config_digest(
        with_layers
    )
    assert contract.config_digest(replace(CFG, layers=())) == contract.config_digest(CFG)


def test_a_pool_pod_is_given_the_store_objects_of_code_and_layers() -> None:
    from klambda.api import Function
    from klambda.router.cluster import ClusterSource
    from klambda.router.pool import CodePackage, CodeUnavailable, specialise_request

    code_key = contract.object_key(contract.OBJECT_CODE, b"zip")
    layer_key = contract.object_key(contract.OBJECT_LAYER, b"lib")
    cfg = replace(
        CFG,
        code_sha256=contract.parse_object_key(code_key).code_sha256,
        layers=("libs:1",),
    )
    request = specialise_request(cfg, CodePackage(code_object=code_key, layer_objects=(layer_key,)))
    assert request.code_object == code_key
    assert list(request.layer_objects) == [layer_key]
    assert not request.files

    def owner(status: dict[str, Any]) -> Function:
        return Function.model_validate(
            {
                "metadata": {"name": "hello"},
                "spec": {"handler": "app.handler", "runtime": "python3.11",
                         "code": {"s3Key": "uploads/app.zip"}, "layers": ["libs:1"]},
                "status": status,
            }
        )  # fmt: skip

    known = owner(
        {"codeObject": code_key, "layers": [{"ref": "libs:1", "object": layer_key, "size": 3}]}
    )
    assert ClusterSource._code_object(cfg, known) == code_key
    assert ClusterSource._layer_objects(cfg, known) == (layer_key,)
    # a status that lags an edit is not used: the call waits for the operator
    other = contract.object_key(contract.OBJECT_CODE, b"older")
    with pytest.raises(CodeUnavailable, match="is not known yet"):
        ClusterSource._code_object(cfg, owner({"codeObject": other}))
    lagging = owner({"layers": [{"ref": "libs:0", "object": layer_key}]})
    with pytest.raises(CodeUnavailable, match="libs:1 are not resolved yet"):
        ClusterSource._layer_objects(cfg, lagging)
    assert ClusterSource._layer_objects(replace(cfg, layers=()), lagging) == ()
