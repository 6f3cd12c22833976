"""The router's trigger table: what Functions and Aliases declare, gathered; a route two
objects declare is served by the first (in name order) and the other is Failed."""

from __future__ import annotations

from typing import Any

from klambda.router import triggers
from klambda.router.cluster import build_registry
from klambda.settings import RouterSettings

SPEC = {"runtime": "python3.11", "handler": "app.handler", "code": {"inline": {"app.py": "x"}}}


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }


def test_table() -> None:
    reg = build_registry(
        [
            obj("Function", "alpha", {**SPEC, "functionUrl": {},
                "events": {"get": {"type": "HttpApi", "path": "/items/{id}", "method": "GET"},
                           "tick": {"type": "Schedule", "schedule": "rate(1 hour)"},
                           "off": {"type": "Schedule", "schedule": "rate(1 hour)",
                                   "enabled": False}}}),
            obj("Function", "beta", {**SPEC,
                "events": {"same": {"type": "HttpApi", "path": "/items/{id}", "method": "get"},
                           "orders": {"type": "SNS", "topic": "arn:aws:sns:us-east-1:"
                                      "123456789012:orders"}}}),
        ],
        [],
        [obj("Alias", "beta.live", {"function": "beta", "version": "$LATEST",
             "functionUrl": {"invokeMode": "RESPONSE_STREAM"},
             "events": {"orders": {"type": "Topic", "topic": "orders"}}})],
        RouterSettings(),
    )  # fmt: skip
    table = triggers.build(reg)
    assert [d.key for d in table.schedules] == ["alpha/tick"]
    assert [r.target for r in table.routes.routes.values()] == ["alpha/get"]
    assert "already served by alpha/get" in table.problems["beta/same"]
    assert [d.key for d in table.subscriptions["orders"]] == ["beta/orders", "beta:live/orders"]
    assert set(table.urls) == {"alpha", "beta:live"}
    states = {d.key: triggers.status(table, d) for d in table.declared}
    assert states["beta/same"].state == "Failed"
    assert states["alpha/off"].state == "Disabled"
    assert states["alpha/get"].detail == "GET /items/{id}"
    assert states["beta:live/orders"].type == "SNS"
