"""Cluster mode's pure parts: registries and endpoints from API objects."""

from __future__ import annotations

from typing import Any

import pytest
from klambda.errors import ResourceConflict
from klambda.router.cluster import build_registry, endpoints_of
from klambda.settings import RouterSettings

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


def test_an_invalid_trigger_is_left_out_and_the_function_stays() -> None:
    events = {
        "ok": {"type": "HttpApi", "path": "/ok"},
        # the CRD checks six fields; EventBridge's rule on the day fields only the model
        "bad": {"type": "Schedule", "schedule": "cron(0 3 * * * *)"},
    }
    alias_events = {"bad": {"type": "Schedule", "schedule": "cron(0 3 * * * *)"}}
    reg = build_registry(
        [obj("Function", "hello", {**SPEC, "events": events})],
        [],
        [obj("Alias", "hello.live", {"function": "hello", "version": "$LATEST",
                                     "events": alias_events})],
        RouterSettings(),
    )  # fmt: skip
    entry = reg.functions["hello"]
    assert set(entry.function.spec.events or {}) == {"ok"}
    assert entry.aliases["live"].spec.events is None


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


@pytest.mark.parametrize(
    ("status", "state", "reason"),
    [
        (None, "Active", None),
        ({"state": "Active"}, "Active", None),
        ({"state": "Failed", "stateReason": "no code"}, "Failed", "no code"),
        (
            {
                "state": "Failed",
                "conditions": [{"type": "Ready", "status": "False", "message": "too big"}],
            },
            "Failed",
            "too big",
        ),
        ({"state": "Pending"}, "Pending", None),
    ],
)
def test_target_state_follows_the_status(
    status: dict[str, Any] | None, state: str, reason: str | None
) -> None:
    fn = obj("Function", "hello", SPEC)
    v = obj(
        "Version",
        "hello.1",
        {"function": "hello", "version": "1", "codeSha256": "x", "config": SPEC},
    )
    if status is not None:
        fn["status"] = v["status"] = status
    reg = build_registry([fn], [v], [], RouterSettings())
    for target in (reg.functions["hello"].latest, reg.functions["hello"].targets["1"]):
        assert (target.state, target.state_reason) == (state, reason)


def test_a_failed_function_is_refused_at_once_not_routed() -> None:
    fn = obj("Function", "hello", SPEC)
    fn["status"] = {"state": "Failed", "stateReason": "code ConfigMap too large"}
    reg = build_registry([fn], [], [], RouterSettings())
    with pytest.raises(ResourceConflict, match="Failed \\(code ConfigMap too large\\)"):
        reg.resolve("hello")


def test_functions_a_database_proxy_lists_get_its_address_as_the_operator_gives_it() -> None:
    from klambda import contract
    from klambda.api import FunctionSpec
    from klambda_operator import builders
    from klambda_operator.settings import OperatorSettings

    target = {"host": "pg", "database": "shop", "user": "app"}
    own = {**SPEC, "environment": {"PGDATABASE": "mine"}}
    version = {"function": "orders", "version": "1", "codeSha256": "v1", "config": own}
    going = obj("DatabaseProxy", "a-going", {"target": target, "functions": ["orders"]})
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    proxies = [
        obj("DatabaseProxy", "shop-db", {"target": target, "port": 7000, "functions": ["orders"]}),
        going,  # being deleted: serves nobody
        obj("DatabaseProxy", "bad", {"target": {"host": "pg"}, "functions": ["plain"]}),
    ]
    reg = build_registry(
        [obj("Function", "orders", own), obj("Function", "plain", SPEC)],
        [obj("Version", "orders.1", version)],
        [],
        RouterSettings(),
        proxies,
        "team",
    )
    entry = reg.functions["orders"]
    for t in (entry.latest, entry.targets["1"]):
        env = t.config.environment
        assert (env["PGHOST"], env["PGPORT"]) == ("shop-db-dbproxy.team.svc", "7000")
        assert env["PGDATABASE"] == "mine"  # the function's own value wins
    assert "PGHOST" not in reg.functions["plain"].latest.config.environment
    # a pool pod the router specialises carries this digest; the operator keeps the pod
    # only if its own configuration of the version digests the same
    work = builders.Workload(
        namespace="team",
        function="orders",
        version="$LATEST",
        spec=FunctionSpec.model_validate(own),
        code_sha256="abc",
        owner={},
        proxy_environment={"PGHOST": "shop-db-dbproxy.team.svc", "PGPORT": "7000",
                           "PGDATABASE": "shop"},
    )  # fmt: skip
    settings = OperatorSettings(region=RouterSettings().region)
    assert contract.config_digest(entry.latest.config) == contract.config_digest(
        builders.function_config(work, settings)
    )
