"""A Version runs its own snapshot in its own Deployment, belongs to its Function, and
goes with it: the real garbage collector deletes the whole tree."""

from __future__ import annotations

import pytest
from klambda_operator import names

from .conftest import (
    Namespace,
    Operator,
    alias_manifest,
    condition,
    function_manifest,
    version_manifest,
)

V1 = {"app.py": "def handler(event, context):\n    return 1\n"}
V2 = {"app.py": "def handler(event, context):\n    return 2\n"}


def code_volume(ns: Namespace, deployment: str) -> str:
    body = ns.get("Deployment", deployment)
    assert body is not None, f"no Deployment {deployment}"
    [code] = [v for v in body["spec"]["template"]["spec"]["volumes"] if v["name"] == "code"]
    return str(code["configMap"]["name"])


@pytest.mark.kube
def test_version_runs_its_snapshot_and_cascades_with_its_function(
    ns: Namespace, operator: Operator, garbage_collector: object
) -> None:
    fn = function_manifest("shop", code={"inline": V1}, memoryMB=256)
    ns.apply(fn)
    sha1 = ns.wait_state("Function", "shop", "Active")["status"]["codeSha256"]
    ns.apply(version_manifest(fn, 1, sha1, provisionedConcurrency=2))
    version = ns.wait_state("Version", "shop.1", "Active")
    assert condition(version, "Ready")["observedGeneration"] == 1

    # the Version now belongs to its Function, its Deployment to the Version
    function_uid = ns.get("Function", "shop")["metadata"]["uid"]  # type: ignore[index]
    assert [r["uid"] for r in version["metadata"]["ownerReferences"]] == [function_uid]
    deployment = ns.get("Deployment", "shop-v1")
    assert deployment is not None
    [ref] = deployment["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"]) == ("Version", "shop.1")
    assert deployment["spec"]["replicas"] == 2  # provisioned concurrency
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["klambda.io/version"] == "1"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-2:] == ["--version", "1"]
    assert container["resources"]["limits"]["memory"] == f"{256 + 128}Mi"
    # its pods initialise their environment before they are ready
    assert {"name": "KLAMBDA_PROVISIONED", "value": "1"} in container["env"]
    assert ns.get("Service", "shop-v1") is not None
    snapshot1 = names.snapshot_name("shop", sha1)
    assert code_volume(ns, "shop-v1") == snapshot1

    # $LATEST moves on; version 1 keeps its bytes
    ns.apply(function_manifest("shop", code={"inline": V2}, memoryMB=256))
    fn2 = ns.wait_state("Function", "shop", "Active")
    snapshot2 = names.snapshot_name("shop", fn2["status"]["codeSha256"])
    ns.wait(lambda: code_volume(ns, "shop-latest") == snapshot2, "$LATEST on the new code")
    assert code_volume(ns, "shop-v1") == snapshot1
    assert ns.get("ConfigMap", snapshot1) is not None  # still used by version 1

    table = ns.kubectl("get", "fnv").stdout.splitlines()
    assert table[0].split()[:6] == ["NAME", "FUNCTION", "VERSION", "STATE", "MEMORY", "TIMEOUT"]
    assert table[1].split()[:5] == ["shop.1", "shop", "1", "Active", "256"]

    # deleting the Function deletes everything, by ownerReferences alone; in the foreground
    # the owners wait for their dependents, which the operator must not recreate meanwhile
    ns.apply(alias_manifest("shop", "live", "1"))
    ns.wait_state("Alias", "shop.live", "Active")
    ns.kubectl("delete", "function", "shop", "--cascade=foreground", "--wait=false")
    for kind, name in [
        ("Alias", "shop.live"),
        ("Version", "shop.1"),
        ("Deployment", "shop-v1"),
        ("Service", "shop-v1"),
        ("Deployment", "shop-latest"),
        ("Service", "shop-latest"),
        ("ConfigMap", snapshot1),
        ("ConfigMap", snapshot2),
        ("Function", "shop"),
    ]:
        ns.wait_gone(kind, name)


@pytest.mark.kube
def test_version_whose_code_does_not_match_its_hash_fails(
    ns: Namespace, operator: Operator
) -> None:
    fn = function_manifest("liar", code={"inline": V1})
    ns.apply(fn)
    ns.wait_state("Function", "liar", "Active")
    ns.apply(version_manifest(fn, 1, "bm90IHRoZSBoYXNoIG9mIHRoZSBjb2Rl"))
    version = ns.wait_state("Version", "liar.1", "Failed")
    ready = condition(version, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "CodeMismatch"
    assert condition(version, "CodeReady")["reason"] == "CodeMismatch"
    assert ns.get("Deployment", "liar-v1") is None
    events = ns.wait(lambda: ns.events("liar.1"), "an Event on the Version")
    assert events[0]["reason"] == "CodeMismatch"
    assert events[0]["type"] == "Warning"


@pytest.mark.kube
def test_version_of_a_missing_function_fails_until_it_appears(
    ns: Namespace, operator: Operator
) -> None:
    fn = function_manifest("late", code={"inline": V1})
    from klambda import codestore

    sha = codestore.digest({k: v.encode() for k, v in V1.items()})
    ns.apply(version_manifest(fn, 1, sha))
    version = ns.wait_state("Version", "late.1", "Failed")
    assert condition(version, "Ready")["reason"] == "FunctionNotFound"
    ns.apply(fn)
    ns.wait_state("Version", "late.1", "Active")  # the Function's creation reconciles it
    assert code_volume(ns, "late-v1") == names.snapshot_name("late", sha)
