"""Lambda's function requests served by a cluster-mode router (`KLAMBDA_CONTROL_API`)
against a real API server: boto3's CreateFunction, UpdateFunctionConfiguration, tags,
event invoke configuration and DeleteFunction write the same objects a user would apply
(a Function, its code in a ConfigMap), and the router's own watch then serves them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from klambda.testing import RouterRunner, eventually

from tests.helpers import ROOT
from tests.integration.functions_api.test_lifecycle import ARN, ROLE, lambda_client, package
from tests.kube.controlplane import ControlPlane


def test_lambda_requests_write_functions(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    with RouterRunner(
        "router", "--namespace", ns, "--kubeconfig", str(plane.kubeconfig),
        "--host", "127.0.0.1", "--no-auth", workdir=tmp_path, env={"KLAMBDA_CONTROL_API": "1"},
    ) as r:  # fmt: skip
        lam = lambda_client(r.url)
        made = lam.create_function(
            FunctionName="made",
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": package(**{"app.py": "def handler(e, c): return 'hi'"})},
            MemorySize=256,
            Tags={"team": "a"},
        )
        assert made["FunctionArn"] == ARN + "made"
        assert made["State"] == "Pending"  # no operator has taken it in
        fn: dict[str, Any] = plane.get_json("function", "made", "-n", ns)
        assert fn["spec"]["memoryMB"] == 256
        cm = fn["spec"]["code"]["configMap"]
        assert plane.get_json("configmap", cm, "-n", ns)["metadata"]["name"] == cm

        with pytest.raises(ClientError) as err:
            lam.create_function(
                FunctionName="made", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": package(**{"app.py": "x = 1"})},
            )  # fmt: skip
        assert err.value.response["Error"]["Code"] == "ResourceConflictException"

        changed = lam.update_function_configuration(FunctionName="made", Timeout=30)
        assert changed["Timeout"] == 30
        lam.tag_resource(Resource=ARN + "made", Tags={"env": "test"})
        lam.put_function_event_invoke_config(FunctionName="made", MaximumRetryAttempts=0)
        fn = plane.get_json("function", "made", "-n", ns)
        assert fn["spec"]["timeoutSeconds"] == 30
        assert fn["spec"]["tags"] == {"team": "a", "env": "test"}
        assert lam.list_tags(Resource=ARN + "made")["Tags"] == {"team": "a", "env": "test"}
        cfg = lam.get_function_event_invoke_config(FunctionName="made")
        assert cfg["MaximumRetryAttempts"] == 0

        # the router's watch brings the written object into its registry
        eventually(
            lambda: lam.get_function(FunctionName="made")["Configuration"]["Timeout"] == 30,
            "GetFunction to answer from the watched object",
            timeout=10,
        )

        with pytest.raises(ClientError) as err:
            lam.update_function_configuration(FunctionName="made", Timeout=901)
        assert "Timeout" in err.value.response["Error"]["Message"]
        assert plane.get_json("function", "made", "-n", ns)["spec"]["timeoutSeconds"] == 30

        lam.delete_function(FunctionName="made")
        gone = plane.kubectl("get", "function", "made", "-n", ns, check=False)
        assert gone.returncode != 0
        with pytest.raises(ClientError) as err:
            lam.delete_function(FunctionName="made")
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_without_the_setting_the_router_writes_nothing(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    with RouterRunner(
        "router", "--namespace", ns, "--kubeconfig", str(plane.kubeconfig),
        "--host", "127.0.0.1", "--no-auth", workdir=tmp_path,
    ) as r:  # fmt: skip
        with pytest.raises(ClientError) as err:
            lambda_client(r.url).create_function(
                FunctionName="nope", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": package(**{"app.py": "x = 1"})},
            )  # fmt: skip
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] in (404, 405)
        assert plane.kubectl("get", "function", "nope", "-n", ns, check=False).returncode != 0
