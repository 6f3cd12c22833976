"""Cluster mode's pure parts: the worker contract, registries and endpoints from API objects."""

from __future__ import annotations

from typing import Any

import pytest
from klambda.router.cluster import build_registry, endpoints_of
from klambda.settings import RouterSettings
from klambda.worker.config import WorkerConfigError, from_environment

CONTRACT = {
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "_HANDLER": "app.handler",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "KLAMBDA_TIMEOUT_SECONDS": "30",
    "KLAMBDA_FUNCTION": "hello",
    "KLAMBDA_VERSION": "3",
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_REGION": "eu-west-1",
    "KLAMBDA_USER_ENVIRONMENT": "GREETING,COLOR",
    "GREETING": "Hi",
    "COLOR": "red",
    "UNRELATED": "x",
}


def test_worker_config_from_the_contract() -> None:
    cfg = from_environment(CONTRACT)
    assert (cfg.function, cfg.version, cfg.runtime) == ("hello", "3", "python3.12")
    assert (cfg.memory_mb, cfg.timeout_s, cfg.region) == (512, 30, "eu-west-1")
    assert cfg.environment == {"GREETING": "Hi", "COLOR": "red"}
    assert cfg.code_root == "/var/task"


@pytest.mark.parametrize(
    ("drop", "change", "message"),
    [
        ("_HANDLER", {}, "needs _HANDLER"),
        (None, {"AWS_EXECUTION_ENV": "python"}, "is not AWS_Lambda_<runtime>"),
        ("COLOR", {}, "user variables COLOR are not set"),
        (None, {"KLAMBDA_TIMEOUT_SECONDS": "soon"}, "invalid literal"),
    ],
)
def test_worker_config_errors(drop: str | None, change: dict[str, str], message: str) -> None:
    env = {k: v for k, v in CONTRACT.items() if k != drop} | change
    with pytest.raises(WorkerConfigError, match=message):
        from_environment(env)


SPEC = {"runtime": "python3.11", "handler": "app.handler", "code": {"inline": {"app.py": "x"}}}


def obj(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "7", **meta},
        "spec": spec,
        "status": {"state": "Active", "codeSha256": "abc", "anything": 1},
    }


def test_registry_from_api_objects_skips_malformed_ones() -> None:
    reg = build_registry(
        [obj("Function", "hello", SPEC), obj("Function", "bad", {**SPEC, "memoryMB": 1})],
        [
            obj(
                "Version",
                "hello.1",
                {"function": "hello", "version": "1", "codeSha256": "v1", "config": SPEC},
            ),
            obj(
                "Version",
                "ghost.1",
                {"function": "ghost", "version": "1", "codeSha256": "g", "config": SPEC},
            ),
        ],
        [obj("Alias", "hello.prod", {"function": "hello", "version": "1"})],
        RouterSettings(),
    )
    assert set(reg.functions) == {"hello"}
    entry = reg.functions["hello"]
    assert entry.latest.config.code_sha256 == "abc"
    assert set(entry.targets) == {"1"}
    target, alias = reg.resolve("hello", "prod")
    assert (target.config.version, alias) == ("1", "prod")


def test_endpoints_from_slices() -> None:
    def slice_(
        fn: str, version: str, addrs: list[str], ready: bool = True, port: str = "grpc"
    ) -> dict[str, Any]:
        return {
            "metadata": {"labels": {"klambda.io/function": fn, "klambda.io/version": version}},
            "ports": [{"name": port, "port": 9000}],
            "endpoints": [{"addresses": addrs, "conditions": {"ready": ready}}],
        }

    eps = endpoints_of(
        [
            slice_("hello", "latest", ["10.1.0.5"]),
            slice_("hello", "latest", ["10.1.0.6"]),
            slice_("hello", "2", ["10.1.0.7"], ready=False),
            slice_("hello", "3", ["10.1.0.8"], port="metrics"),
            {"metadata": {"labels": {}}},
        ]
    )
    assert eps == {"hello:$LATEST": ["10.1.0.5:9000", "10.1.0.6:9000"]}


def test_demand_written_for_the_operator_is_beyond_provisioned() -> None:
    from klambda.router.cluster import beyond_provisioned

    reg = build_registry(
        [obj("Function", "hello", SPEC)],
        [
            obj(
                "Version",
                f"hello.{v}",
                {
                    "function": "hello",
                    "version": v,
                    "codeSha256": v,
                    "config": SPEC,
                    "provisionedConcurrency": p,
                },
            )
            for v, p in (("1", 1), ("2", 0))
        ],
        [
            obj(
                "Alias",
                "hello.prod",
                {
                    "function": "hello",
                    "version": "1",
                    "provisionedConcurrency": 4,
                    "routing": {"additionalVersion": "2", "weight": 0.5},
                },
            )
        ],
        RouterSettings(),
    )
    # version 1: its own 1 + half of the alias's 4; version 2: the other half
    assert beyond_provisioned(5, reg, "hello", "1") == 2
    assert beyond_provisioned(2, reg, "hello", "1") == 0
    assert beyond_provisioned(3, reg, "hello", "2") == 1
    assert beyond_provisioned(3, reg, "hello", "$LATEST") == 3
    assert beyond_provisioned(3, reg, "gone", "1") == 3
