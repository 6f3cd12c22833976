"""The operator writes each declared trigger's state into the status of Functions and
Aliases: Active with what it listens to, Disabled, or Failed with what the CRD's rules
cannot check (a cron expression's fields); and the function URL's path."""

from __future__ import annotations

import pytest

from .conftest import Namespace, Operator, alias_manifest, function_manifest


@pytest.mark.kube
def test_trigger_status_on_functions_and_aliases(ns: Namespace, operator: Operator) -> None:
    events = {
        "getItem": {"type": "HttpApi", "path": "/items/{id}", "method": "GET"},
        # six fields, as the CRD checks, but both day fields set: EventBridge refuses it
        "nightly": {"type": "Schedule", "schedule": "cron(0 3 * * * *)"},
        "orders": {"type": "SNS", "topic": "orders", "enabled": False},
    }
    ns.apply(function_manifest("trig", events=events, functionUrl={}))
    fn = ns.wait(
        lambda: (f := ns.get("Function", "trig")) and (f.get("status") or {}).get("triggers") and f,
        "the Function's trigger status",
    )
    rows = {t["name"]: t for t in fn["status"]["triggers"]}
    assert rows["getItem"] == {
        "name": "getItem",
        "type": "HttpApi",
        "state": "Active",
        "detail": "GET /items/{id}",
    }
    assert rows["orders"]["state"] == "Disabled"
    assert rows["nightly"]["state"] == "Failed"
    assert "one of day-of-month and day-of-week must be '?'" in rows["nightly"]["reason"]
    assert fn["status"]["functionUrl"] == "/url/trig/"

    ns.apply(
        alias_manifest(
            "trig",
            "live",
            "$LATEST",
            events={"tick": {"type": "Schedule", "schedule": "rate(5 minutes)"}},
            functionUrl={"invokeMode": "RESPONSE_STREAM"},
        )
    )
    alias = ns.wait(
        lambda: (
            (a := ns.get("Alias", "trig.live")) and (a.get("status") or {}).get("triggers") and a
        ),
        "the Alias's trigger status",
    )
    assert alias["status"]["triggers"] == [
        {"name": "tick", "type": "Schedule", "state": "Active", "detail": "rate(5 minutes) UTC"}
    ]
    assert alias["status"]["functionUrl"] == "/url/trig:live/"
