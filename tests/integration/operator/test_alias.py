"""An Alias is checked against the Versions that exist; its status shows where it routes."""

from __future__ import annotations

import pytest
from klambda import codestore

from .conftest import (
    Namespace,
    Operator,
    alias_manifest,
    condition,
    function_manifest,
    version_manifest,
)

CODE = {"app.py": "def handler(event, context):\n    return 1\n"}
SHA = codestore.digest({k: v.encode() for k, v in CODE.items()})


@pytest.mark.kube
def test_alias_is_ready_only_when_its_versions_exist(ns: Namespace, operator: Operator) -> None:
    fn = function_manifest("api", code={"inline": CODE})
    ns.apply(fn)
    ns.apply(version_manifest(fn, 1, SHA))
    ns.apply(alias_manifest("api", "prod", "1", routing={"additionalVersion": "2", "weight": 0.1}))

    alias = ns.wait_state("Alias", "api.prod", "Failed")
    ready = condition(alias, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "VersionNotFound"
    assert "spec.routing.additionalVersion" in ready["message"]
    assert ready["observedGeneration"] == 1
    assert "routing" not in alias["status"]
    events = ns.wait(lambda: ns.events("api.prod"), "an Event on the Alias")
    assert [e["reason"] for e in events] == ["VersionNotFound"]  # once, not per resync

    # publishing version 2 makes the alias valid, without touching the alias
    ns.apply(version_manifest(fn, 2, SHA))
    alias = ns.wait_state("Alias", "api.prod", "Active", timeout=15)
    ready = condition(alias, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Resolved")
    assert alias["status"]["routing"] == "1: 90%, 2: 10%"
    owners = alias["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in owners] == [("Function", "api")]

    table = ns.kubectl("get", "fna").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "FUNCTION",
        "VERSION",
        "ADDITIONAL",
        "WEIGHT",
        "READY",
        "AGE",
        "DESCRIPTION",  # klambda deploy's record of a gradual deployment
    ]
    assert table[1].split()[:6] == ["api.prod", "api", "1", "2", "0.1", "True"]
    rows = {
        line.split()[0]: line.split()
        for line in ns.kubectl("get", "fn,fnv,fna").stdout.splitlines()
        if line.strip()
    }
    assert rows["function.klambda.io/api"][1] == "Active"
    assert rows["version.klambda.io/api.1"][1:4] == ["api", "1", "Active"]
    assert rows["alias.klambda.io/api.prod"][5] == "True"

    # deleting a version it routes to makes it invalid again
    ns.kubectl("delete", "version", "api.2")
    alias = ns.wait_state("Alias", "api.prod", "Failed", timeout=15)
    assert condition(alias, "Ready")["reason"] == "VersionNotFound"

    # an alias retargeted to $LATEST is fine; one of a missing function is not
    ns.apply(alias_manifest("api", "prod", "$LATEST"))
    alias = ns.wait(
        lambda: (
            (a := ns.get("Alias", "api.prod"))
            and a["status"].get("observedGeneration") == 2
            and a["status"]["state"] == "Active"
            and a
        ),
        "the alias on $LATEST",
    )
    assert alias["status"]["routing"] == "$LATEST: 100%"
    ns.apply(alias_manifest("nope", "prod", "1"))
    alias = ns.wait_state("Alias", "nope.prod", "Failed")
    assert condition(alias, "Ready")["reason"] == "FunctionNotFound"


@pytest.mark.kube
def test_alias_provisioned_concurrency_provisions_its_versions(
    ns: Namespace, operator: Operator
) -> None:
    fn = function_manifest("pc", code={"inline": CODE})
    ns.apply(fn)
    ns.apply(version_manifest(fn, 1, SHA))
    ns.apply(version_manifest(fn, 2, SHA, provisionedConcurrency=1))
    ns.apply(
        alias_manifest(
            "pc",
            "live",
            "1",
            provisionedConcurrency=10,
            routing={"additionalVersion": "2", "weight": 0.2},
        )
    )
    ns.wait_state("Alias", "pc.live", "Active")

    def replicas(name: str) -> int | None:
        body = ns.get("Deployment", name)
        return body["spec"]["replicas"] if body else None

    ns.wait(lambda: replicas("pc-v1") == 8 and replicas("pc-v2") == 3, "8 + (2 + 1) environments")
    ns.apply(alias_manifest("pc", "live", "1"))  # provisioned concurrency removed
    ns.wait(lambda: replicas("pc-v1") == 0 and replicas("pc-v2") == 1, "scaled back down")
