"""Reconcile on state: hand edits are repaired, a restarted operator catches up, and
objects that cannot run are reported (status Failed, an Event), never a crash."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Namespace, Operator, condition, function_manifest


def uid(ns: Namespace, kind: str, name: str) -> str | None:
    body = ns.get(kind, name)
    return body["metadata"]["uid"] if body else None


@pytest.mark.kube
def test_children_deleted_or_edited_by_hand_come_back(ns: Namespace, operator: Operator) -> None:
    ns.apply(function_manifest("drift"))
    ns.wait_state("Function", "drift", "Active")
    before = uid(ns, "Deployment", "drift-latest")
    assert before is not None

    ns.kubectl("delete", "deployment", "drift-latest")
    ns.wait(
        lambda: uid(ns, "Deployment", "drift-latest") not in (None, before),
        "the Deployment recreated",
        timeout=10,
    )
    service = uid(ns, "Service", "drift-latest")
    ns.kubectl("delete", "service", "drift-latest")
    ns.wait(
        lambda: uid(ns, "Service", "drift-latest") not in (None, service),
        "the Service recreated",
        timeout=10,
    )

    ns.kubectl("set", "image", "deployment/drift-latest", "worker=registry.example/not-klambda:1")
    ns.kubectl("scale", "deployment/drift-latest", "--replicas=7")

    def repaired() -> bool:
        body = ns.get("Deployment", "drift-latest")
        assert body is not None
        image = body["spec"]["template"]["spec"]["containers"][0]["image"]
        return image.startswith("klambda/runtime:") and body["spec"]["replicas"] == 0

    ns.wait(repaired, "the image and replicas put back", timeout=10)


@pytest.mark.kube
def test_a_restarted_operator_catches_up(
    ns: Namespace, operator: Operator, start_operator: Callable[..., Operator]
) -> None:
    ns.apply(function_manifest("steady"))
    ns.wait_state("Function", "steady", "Active")
    operator.stop()

    # while no operator runs: an edit, a new function, a lost child
    ns.apply(function_manifest("steady", memoryMB=512))
    ns.apply(function_manifest("newcomer"))
    ns.kubectl("delete", "deployment", "steady-latest")

    start_operator()
    fn = ns.wait_state("Function", "steady", "Active")
    assert fn["status"]["observedGeneration"] == 2
    ns.wait_state("Function", "newcomer", "Active")
    deployment = ns.wait(lambda: ns.get("Deployment", "steady-latest"), "the lost Deployment")
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == f"{512 + 128}Mi"


@pytest.mark.kube
def test_functions_can_be_deleted_while_no_operator_runs(ns: Namespace, operator: Operator) -> None:
    ns.apply(function_manifest("orphan"))
    fn = ns.wait_state("Function", "orphan", "Active")
    assert "finalizers" not in fn["metadata"]  # nothing waits for the operator
    assert not [a for a in fn["metadata"].get("annotations", {}) if "kopf" in a]
    operator.stop()
    ns.kubectl("delete", "function", "orphan", "--timeout=10s")
    assert ns.get("Function", "orphan") is None


@pytest.mark.kube
def test_objects_that_cannot_run_are_failed_with_a_reason_and_an_event(
    ns: Namespace, operator: Operator
) -> None:
    # accepted by the API server, refused by the operator's own checks
    missing = function_manifest("nocode", code={"configMap": "not-there"})
    missing["spec"]["unknownField"] = "pruned by the API server"
    ns.apply(missing, "--validate=false")
    ns.apply(function_manifest("escape", code={"inline": {"../outside.py": "x = 1"}}))
    ns.apply(function_manifest("local", code={"path": "./src"}))
    ns.kubectl("create", "deployment", "taken-latest", "--image=example/other")
    ns.apply(function_manifest("taken"))

    expected = {
        "nocode": ("CodeNotFound", "ConfigMap 'not-there' does not exist"),
        "escape": ("InvalidSpec", "must be a relative path inside the code"),
        "local": ("CodeUnsupported", "spec.code.path"),
        "taken": ("NotOwned", "Deployment taken-latest exists and is not controlled by"),
    }
    for name, (reason, words) in expected.items():
        fn = ns.wait_state("Function", name, "Failed")
        ready = condition(fn, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", reason)
        assert words in ready["message"]
        assert fn["status"]["stateReason"] == ready["message"]
        events = ns.wait(lambda n=name: ns.events(n), f"an Event on {name}")
        assert [(e["type"], e["reason"]) for e in events] == [("Warning", reason)]
    assert condition(ns.get("Function", "nocode") or {}, "CodeReady")["reason"] == "CodeNotFound"

    # the cause fixed elsewhere: picked up at the next resync, no edit of the Function
    ns.kubectl("create", "configmap", "not-there", "--from-literal=app.py=def handler(e, c): pass")
    ns.wait_state("Function", "nocode", "Active", timeout=15)
    # and the operator still serves everything else
    ns.apply(function_manifest("fine"))
    ns.wait_state("Function", "fine", "Active")
    operator.stop()
    assert "failed with an exception" not in operator.output
