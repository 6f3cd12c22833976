"""The chart installed into the test control plane: one release per test module.

`helm install` with the kind and full monitoring values into a namespace that enforces the
"restricted" Pod Security Standard, with a second namespace for functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helm.chart import (
    CHART,
    GATEWAY_CRDS,
    KIND_VALUES,
    MONITORING_CRDS,
    MONITORING_VALUES,
    documents,
)
from tests.kube.controlplane import ControlPlane

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
FN_SA = "klambda-function"


@dataclass
class Release:
    plane: ControlPlane
    name: str
    namespace: str
    functions: str  # a namespace for Functions besides the release's
    manifest: list[dict[str, Any]]
    install_output: str

    def sa_kubeconfig(self, name: str, namespace: str | None = None) -> Path:
        return self.plane.service_account_kubeconfig(name, namespace or self.namespace)

    def as_sa(self, name: str, *args: str, namespace: str | None = None) -> Any:
        return self.plane.kubectl(
            *args, kubeconfig=self.sa_kubeconfig(name, namespace), check=False
        )


def create_namespace(plane: ControlPlane, name: str) -> None:
    plane.kubectl("create", "namespace", name)
    plane.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in RESTRICTED.items()))


@pytest.fixture(scope="module")
def release(kube_control_plane: ControlPlane) -> Iterator[Release]:
    plane = kube_control_plane
    suffix = uuid.uuid4().hex[:8]
    namespace, functions = f"klambda-{suffix}", f"fns-{suffix}"
    for ns in (namespace, functions):
        create_namespace(plane, ns)
    for crds in (MONITORING_CRDS, GATEWAY_CRDS):
        plane.kubectl("apply", "-f", str(crds))
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    name = "kl"
    out = plane.helm(
        "install", name, str(CHART), "-n", namespace,
        "-f", str(MONITORING_VALUES), "-f", str(KIND_VALUES),
        "--set", f"functions.namespace={functions}",
        # the chart's default, which the kind values turn off for the quick path
        "--set", "router.auth=true",
        "--set", "logs.engine.enabled=true",
        "--set", "router.ingress.enabled=true", "--set", "router.ingress.host=fn.example.com",
        "--set", "router.httpRoute.enabled=true",
        "--set", "router.httpRoute.parentRefs[0].name=edge",
    )  # fmt: skip
    manifest = documents(plane.helm("get", "manifest", name, "-n", namespace).stdout)
    try:
        yield Release(plane, name, namespace, functions, manifest, out.stdout + out.stderr)
    finally:
        plane.helm("uninstall", name, "-n", namespace, "--wait=false", check=False)
        for ns in (namespace, functions):
            plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)
