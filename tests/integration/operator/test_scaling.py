"""Environments follow demand: the operator driving real Deployments from the router's
annotations (the pure decision is table-tested in tests/unit/operator/test_scaling.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from .conftest import Namespace, Operator, condition, function_manifest


def replicas(ns: Namespace, name: str) -> int | None:
    body = ns.get("Deployment", name)
    return body["spec"]["replicas"] if body else None


def annotate(ns: Namespace, name: str, **values: str) -> None:
    pairs = [f"klambda.io/{k.replace('_', '-')}={v}" for k, v in values.items()]
    ns.kubectl("annotate", "--overwrite", "function", name, *pairs)


@pytest.mark.kube
def test_replicas_follow_demand_then_scale_to_zero_when_idle(
    ns: Namespace, start_operator: Callable[..., Operator]
) -> None:
    start_operator(idle_seconds=3, scale_up_per_minute=60)
    ns.apply(function_manifest("busy"))
    ns.wait_state("Function", "busy", "Active")
    assert replicas(ns, "busy-latest") == 0

    now = datetime.now(UTC).isoformat()
    annotate(ns, "busy", demand="4", last_invoked=now)
    ns.wait(lambda: replicas(ns, "busy-latest") == 4, "4 environments for a demand of 4")
    annotate(ns, "busy", demand="0")
    assert replicas(ns, "busy-latest") == 4  # kept warm within the idle window
    ns.wait(lambda: replicas(ns, "busy-latest") == 0, "scale to zero after 3 s idle", timeout=15)
    # the Deployment is scaled before the status says so: wait for both
    ns.wait(
        lambda: (
            (f := ns.get("Function", "busy")) and condition(f, "Scaled")["reason"] == "ScaledToZero"
        ),
        "the ScaledToZero condition",
    )

    # beyond a minute's burst the rate limit shows
    annotate(ns, "busy", demand="100", last_invoked=datetime.now(UTC).isoformat())
    ns.wait(lambda: (replicas(ns, "busy-latest") or 0) >= 56, "a minute's burst")
    fn = ns.wait(
        lambda: (
            (f := ns.get("Function", "busy"))
            and condition(f, "Scaled")["reason"] == "RateLimited"
            and f
        ),
        "the RateLimited condition",
    )
    scaled = condition(fn, "Scaled")
    assert scaled["status"] == "False"
    assert "limited to 60 a minute" in scaled["message"]
    assert (replicas(ns, "busy-latest") or 0) < 100


@pytest.mark.kube
def test_reserved_concurrency_zero_scales_to_zero(ns: Namespace, operator: Operator) -> None:
    ns.apply(function_manifest("stop"))
    ns.wait_state("Function", "stop", "Active")
    annotate(ns, "stop", demand="3", last_invoked=datetime.now(UTC).isoformat())
    ns.wait(lambda: replicas(ns, "stop-latest") == 3, "3 environments")
    ns.apply(function_manifest("stop", reservedConcurrency=0))
    ns.wait(lambda: replicas(ns, "stop-latest") == 0, "the emergency stop")
    fn = ns.wait_state("Function", "stop", "Active")
    assert condition(fn, "Scaled")["reason"] == "ReservedConcurrencyZero"
    table = ns.kubectl("get", "fn", "stop").stdout.splitlines()
    assert table[1].split()[5] == "0"  # the RESERVED column
    ns.apply(function_manifest("stop", reservedConcurrency=2))
    ns.wait(lambda: replicas(ns, "stop-latest") == 2, "capped at the reserved concurrency")


@pytest.mark.kube
def test_a_malformed_demand_counts_as_none(ns: Namespace, operator: Operator) -> None:
    ns.apply(function_manifest("odd"))
    ns.wait_state("Function", "odd", "Active")
    annotate(ns, "odd", demand="lots", last_invoked="yesterday")
    ns.apply(function_manifest("odd", memoryMB=256))  # a change the operator must handle
    fn = ns.wait_state("Function", "odd", "Active")
    assert condition(fn, "Scaled")["reason"] == "ScaledToZero"
    assert replicas(ns, "odd-latest") == 0
