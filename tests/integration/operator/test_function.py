"""A Function becomes a content-addressed code snapshot, a Deployment and a Service for
its `$LATEST` worker pods, and a status that says so."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from klambda import codestore
from klambda_operator import names

from .conftest import Namespace, Operator, condition, function_manifest

FILES = {
    "app.py": "from lib.util import greet\n\ndef handler(event, context):\n    return greet()\n",
    "lib/util.py": "def greet():\n    return 'hi'\n",
}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


@pytest.mark.kube
def test_function_becomes_snapshot_deployment_service_and_status(
    ns: Namespace, start_operator: Callable[..., Operator]
) -> None:
    start_operator(
        image="registry.example/klambda/runtime:test",
        memory_overhead_mb=0,
        function_service_account="klambda-function",
    )
    ns.apply(
        function_manifest(
            "hello",
            memoryMB=1769,
            timeoutSeconds=10,
            environment={"GREETING": "Hi $(HOME)"},
            code={"inline": FILES},
        )
    )
    fn = ns.wait_state("Function", "hello", "Active")
    status = fn["status"]
    sha = codestore.digest({k: v.encode() for k, v in FILES.items()})
    assert status["codeSha256"] == sha
    assert status["lastModified"].endswith("+0000")
    for type_ in ("Ready", "CodeReady", "WorkloadReady", "Scaled"):
        c = condition(fn, type_)
        assert c["status"] == "True", c
        assert c["observedGeneration"] == fn["metadata"]["generation"] == 1

    snapshot = ns.get("ConfigMap", f"hello-code-{names.short_hash(sha)}")
    assert snapshot is not None
    assert snapshot["immutable"] is True
    assert sorted(snapshot["data"].values()) == sorted(FILES.values())
    [owner] = snapshot["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Function", fn["metadata"]["uid"])

    deployment = ns.get("Deployment", "hello-latest")
    assert deployment is not None
    [ref] = deployment["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("Function", "hello", True)
    assert deployment["spec"]["replicas"] == 0  # never invoked: scaled to zero
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels["klambda.io/function"] == "hello"
    assert labels["klambda.io/version"] == "latest"
    pod = template["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "klambda-function"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["terminationGracePeriodSeconds"] == 15
    [container] = pod["containers"]
    assert container["image"] == "registry.example/klambda/runtime:test"
    assert container["command"] == [
        "klambda",
        "worker",
        "--function",
        "hello",
        "--version",
        "$LATEST",
    ]
    # /tmp (ephemeralStorageMB, default 512) plus 64 MiB for the container's logs; one vCPU
    # for 1,769 MB, and the worker's 100 m beside it in the limit
    amounts = {"cpu": "1", "memory": "1769Mi", "ephemeral-storage": "576Mi"}
    assert container["resources"] == {"requests": amounts, "limits": amounts | {"cpu": "1100m"}}
    [tmp] = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"] == {"sizeLimit": "512Mi"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    env = env_of(deployment)
    assert env["GREETING"] == "Hi $$(HOME)"  # Kubernetes gives the pod "Hi $(HOME)"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "hello"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1769"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["KLAMBDA_TIMEOUT_SECONDS"] == "10"
    assert env["KLAMBDA_USER_ENVIRONMENT"] == "GREETING"
    [code] = [v for v in pod["volumes"] if v["name"] == "code"]
    assert code["configMap"]["name"] == snapshot["metadata"]["name"]
    assert {i["path"] for i in code["configMap"]["items"]} == set(FILES)

    service = ns.get("Service", "hello-latest")
    assert service is not None
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {
        "klambda.io/function": "hello",
        "klambda.io/version": "latest",
    }

    table = ns.kubectl("get", "fn").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATE", "RUNTIME", "MEMORY", "TIMEOUT", "RESERVED", "AGE"]
    assert table[1].split()[:5] == ["hello", "Active", "python3.11", "1769", "10"]


@pytest.mark.kube
def test_a_code_change_makes_a_new_snapshot_and_prunes_the_old(
    ns: Namespace, operator: Operator
) -> None:
    ns.apply(function_manifest("edit"))
    first = ns.wait_state("Function", "edit", "Active")["status"]
    old_snapshot = names.snapshot_name("edit", first["codeSha256"])
    assert ns.get("ConfigMap", old_snapshot) is not None

    ns.apply(
        function_manifest("edit", code={"inline": {"app.py": "def handler(e, c):\n    return 2\n"}})
    )
    second = ns.wait_state("Function", "edit", "Active")
    status = second["status"]
    assert status["codeSha256"] != first["codeSha256"]
    assert status["observedGeneration"] == 2
    assert status["lastModified"] >= first["lastModified"]
    new_snapshot = names.snapshot_name("edit", status["codeSha256"])
    ns.wait_gone("ConfigMap", old_snapshot)
    deployment = ns.get("Deployment", "edit-latest")
    assert deployment is not None
    [code] = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "code"]
    assert code["configMap"]["name"] == new_snapshot


@pytest.mark.kube
def test_code_from_a_configmap_or_an_image(ns: Namespace, operator: Operator) -> None:
    ns.kubectl("create", "configmap", "src", "--from-literal=app.py=def handler(e, c): pass")
    ns.apply(function_manifest("fromcm", code={"configMap": "src"}))
    digest = "ab" * 32
    image = f"registry.example/fn@sha256:{digest}"
    ns.apply(function_manifest("fromimage", code={"image": image}))

    status = ns.wait_state("Function", "fromcm", "Active")["status"]
    assert status["codeSha256"] == codestore.digest({"app.py": b"def handler(e, c): pass"})
    snapshot = ns.get("ConfigMap", names.snapshot_name("fromcm", status["codeSha256"]))
    assert snapshot is not None
    assert snapshot["data"] == {"app.py": "def handler(e, c): pass"}

    status = ns.wait_state("Function", "fromimage", "Active")["status"]
    assert status["codeSha256"] == base64.b64encode(bytes.fromhex(digest)).decode()
    deployment = ns.get("Deployment", "fromimage-latest")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == image
    assert all(v["name"] != "code" for v in pod["volumes"])
