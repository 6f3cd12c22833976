"""The operator at work with the chart's RBAC, after a real `helm install`.

The chart's operator pod cannot run here (no kubelet), so the operator runs in this process
(kopf.testing.KopfRunner) as that pod would: the command and KLAMBDA_OPERATOR_* environment
of the rendered Deployment, and a token minted for the chart's operator ServiceAccount as
its only credentials. It must reconcile a Function, a Version and an Alias in the functions
namespace without one refusal (the ClusterRole is enough, and the admission policy on its
Deployments is met), while the same token still cannot read a Secret (and is not more).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from klambda import codestore
from klambda.testing import answers_http, eventually, free_port
from kopf.testing import KopfRunner
from lightkube.config.kubeconfig import KubeConfig

from tests.e2e.helm.chart import ROOT
from tests.kube.controlplane import LOOPBACK, ControlPlane

from .conftest import Release

pytestmark = pytest.mark.kube

HELLO = ROOT / "examples" / "functions" / "hello.yaml"
ENV_PREFIX = "KLAMBDA_OPERATOR_"
# What a refusal looks like in kopf's and lightkube's logs: "... is forbidden: User ...",
# APIForbiddenError, "Not enough permissions to ...", or a 401/403 status code (not the
# milliseconds of a log timestamp, ",403").
REFUSAL = re.compile(
    r"forbidden|unauthori[sz]ed|permission|access denied|(?<![\d,.])40[13](?![\d\]])",
    re.IGNORECASE,
)


@dataclass
class ChartOperator:
    release: Release
    kubeconfig: Path  # the chart operator ServiceAccount's token, nothing else
    service_account: str
    function_service_account: str
    env: dict[str, str]  # the rendered operator container's environment
    liveness: str
    runner: KopfRunner
    stopped: bool = field(default=False)

    def stop(self) -> str:
        """Stop the operator (re-raising if it crashed); its whole log."""
        if not self.stopped:
            self.stopped = True
            self.runner.__exit__(None, None, None)
            assert self.runner.exit_code == 0, self.runner.output
        return str(self.runner.output)


def the_operator_deployment(release: Release) -> dict[str, Any]:
    [deployment] = [
        d
        for d in release.manifest
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]
    return deployment


def kopf_args(command: list[str], liveness: str) -> list[str]:
    """The chart's `kopf run ...` as KopfRunner arguments, the probe served at `liveness`."""
    assert command[:2] == ["kopf", "run"], command
    assert any(a.startswith("--liveness=") for a in command), command
    return [f"--liveness={liveness}" if a.startswith("--liveness=") else a for a in command[1:]]


def no_namespace_terminating(plane: ControlPlane) -> None:
    """The operator watches every namespace: objects left in one being deleted (by an
    earlier test) would be refused for that reason, not for RBAC. Let them go first."""

    def settled() -> bool:
        status, body = plane.api_request("GET", "/api/v1/namespaces")
        assert status == 200, body
        return all(ns["status"].get("phase") != "Terminating" for ns in body["items"])

    eventually(settled, "namespaces being deleted to be gone", timeout=60)


@pytest.fixture(scope="module")
def chart_operator(release: Release) -> Iterator[ChartOperator]:
    container = the_operator_deployment(release)["spec"]["template"]["spec"]
    service_account = container["serviceAccountName"]
    [operator] = container["containers"]
    # the store's credentials come from its Secret, as the kubelet would give them
    secrets = {d["metadata"]["name"]: d for d in release.manifest if d["kind"] == "Secret"}

    def value(e: dict[str, Any]) -> str:
        if "value" in e:
            return str(e["value"])
        ref = e["valueFrom"]["secretKeyRef"]
        return base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()

    env = {e["name"]: value(e) for e in operator["env"]}
    kubeconfig = release.sa_kubeconfig(service_account)
    liveness = f"http://{LOOPBACK}:{free_port()}/healthz"
    args = kopf_args(operator["command"], liveness)
    no_namespace_terminating(release.plane)
    with pytest.MonkeyPatch.context() as mp:
        # the operator's credentials are the token and nothing else: no in-cluster
        # ServiceAccount, no ~/.kube/config (KUBECONFIG set wins over it)
        mp.setenv("KUBECONFIG", str(kubeconfig))
        for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
            mp.delenv(name, raising=False)
        # configured by the chart's environment alone
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        runner = KopfRunner(args, timeout=60)
        runner.__enter__()
        op = ChartOperator(
            release=release,
            kubeconfig=kubeconfig,
            service_account=service_account,
            function_service_account=env[f"{ENV_PREFIX}FUNCTION_SERVICE_ACCOUNT"],
            env=env,
            liveness=liveness,
            runner=runner,
        )
        try:
            # up, and its log bound to the runner's output before pytest moves on
            eventually(
                lambda: answers_http(liveness), f"the operator's liveness probe at {liveness}"
            )
            yield op
        finally:
            op.stop()


def get(plane: ControlPlane, path: str) -> dict[str, Any] | None:
    status, body = plane.api_request("GET", path)
    if status == 404:
        return None
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in body["status"].get("conditions") or [] if c["type"] == type_]
    assert found, (type_, body["status"])
    return found[0]  # type: ignore[no-any-return]


def test_the_operator_uses_only_the_chart_service_account(chart_operator: ChartOperator) -> None:
    """Both of the operator's clients, kopf's and lightkube's, find one set of credentials:
    the minted token, which the API server knows as the chart's operator ServiceAccount."""
    op = chart_operator
    token = json.loads(op.kubeconfig.read_text())["users"][0]["user"]["token"]
    settings = kopf.OperatorSettings()
    assert kopf.login_with_service_account(settings=settings) is None
    kopf_login = kopf.login_with_kubeconfig(settings=settings)
    assert kopf_login is not None
    assert kopf_login.token == token
    lightkube_config = KubeConfig.from_env().get()
    assert lightkube_config is not None
    assert lightkube_config.user is not None
    assert lightkube_config.user.token == token
    whoami = op.release.plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=op.kubeconfig)
    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{op.release.namespace}:{op.service_account}"
    # worker pods are to run as the chart's function ServiceAccount, made for them
    [function_sa] = [
        d
        for d in op.release.manifest
        if d["kind"] == "ServiceAccount" and d["metadata"]["namespace"] == op.release.functions
    ]
    assert function_sa["metadata"]["name"] == op.function_service_account
    assert function_sa["automountServiceAccountToken"] is False


def test_the_operator_reconciles_functions_versions_and_aliases(
    chart_operator: ChartOperator,
) -> None:
    op = chart_operator
    plane, fns = op.release.plane, op.release.functions
    api = f"/apis/klambda.io/v1alpha1/namespaces/{fns}"
    core, apps = f"/api/v1/namespaces/{fns}", f"/apis/apps/v1/namespaces/{fns}"
    function = yaml.safe_load(HELLO.read_text())
    name = function["metadata"]["name"]
    plane.kubectl("apply", "-n", fns, "-f", str(HELLO))

    def active(path: str) -> dict[str, Any] | None:
        body = get(plane, path) or {"metadata": {}}
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body["metadata"].get("generation")
        return body if current and status.get("state") == "Active" else None

    fn = eventually(lambda: active(f"{api}/functions/{name}"), f"Function {name} Active")
    inline = function["spec"]["code"]["inline"]
    sha = codestore.digest({k: v.encode() for k, v in inline.items()})
    assert fn["status"]["codeSha256"] == sha
    assert condition(fn, "Ready")["status"] == "True"

    ours = {"app.kubernetes.io/managed-by": "klambda-operator", "klambda.io/function": name}
    # the code snapshot: a ConfigMap named after the code's hash
    [snapshot] = [
        cm
        for cm in (get(plane, f"{core}/configmaps") or {})["items"]
        if cm["metadata"].get("annotations", {}).get("klambda.io/code-sha256") == sha
    ]
    code_labels = ours | {"klambda.io/component": "code"}
    assert snapshot["metadata"]["labels"].items() >= code_labels.items()
    assert sorted(snapshot["data"].values()) == sorted(inline.values())

    def worker(workload: str, version: str) -> dict[str, Any]:
        """The Deployment and Service of one version's worker pods."""
        labels = ours | {"klambda.io/component": "worker", "klambda.io/version": version}
        selector = {"klambda.io/function": name, "klambda.io/version": version}
        deployment = eventually(
            lambda: get(plane, f"{apps}/deployments/{workload}"), f"Deployment {workload}"
        )
        assert deployment["metadata"]["labels"].items() >= labels.items()
        template = deployment["spec"]["template"]
        assert template["metadata"]["labels"].items() >= selector.items()
        pod = template["spec"]
        # as the chart's admission policy demands of every Deployment the operator writes
        assert pod["serviceAccountName"] == op.function_service_account
        assert pod["automountServiceAccountToken"] is False
        assert pod["containers"][0]["image"] == op.env[f"{ENV_PREFIX}IMAGE"]
        service = get(plane, f"{core}/services/{workload}")
        assert service is not None, f"no Service {workload}"
        assert service["metadata"]["labels"].items() >= labels.items()
        assert service["spec"]["selector"] == selector
        return deployment

    worker(f"{name}-latest", "latest")

    # publish version 1 (what the router does for PublishVersion) and point an alias at it
    version = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Version",
        "metadata": {"name": f"{name}.1"},
        "spec": {"function": name, "version": "1", "codeSha256": sha, "config": function["spec"]},
    }
    alias = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": f"{name}.live"},
        "spec": {"function": name, "version": "1"},
    }
    plane.apply(version, namespace=fns)
    published = eventually(lambda: active(f"{api}/versions/{name}.1"), f"Version {name}.1 Active")
    assert [o["name"] for o in published["metadata"]["ownerReferences"]] == [name]
    deployment = worker(f"{name}-v1", "1")
    [owner] = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Version", f"{name}.1")
    plane.apply(alias, namespace=fns)
    live = eventually(lambda: active(f"{api}/aliases/{name}.live"), f"Alias {name}.live Active")
    ready = condition(live, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Resolved")
    assert live["status"]["routing"] == "1: 100%"


def test_the_operator_may_do_nothing_more(chart_operator: ChartOperator) -> None:
    """Its token cannot read Secrets, and the operator, stopped, logged not one refusal."""
    op = chart_operator
    for ns in (op.release.functions, op.release.namespace):
        denied = op.release.plane.kubectl(
            "get", "secrets", "-n", ns, kubeconfig=op.kubeconfig, check=False
        )
        assert denied.returncode != 0, denied.stdout
        assert "Forbidden" in denied.stderr, denied.stderr
    output = op.stop()
    print(output)
    assert output.strip(), "the operator logged nothing"
    refusals = [line for line in output.splitlines() if REFUSAL.search(line)]
    assert not refusals, "\n".join(refusals)
