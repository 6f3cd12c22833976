"""The operator against a real API server: CRDs installed once, one namespace and one
operator (kopf.testing.KopfRunner, watching that namespace only) per test.

Pods stay Pending (there is no kubelet): tests look at the objects the operator writes
and at the garbage collector's work, never at running pods.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from klambda.testing import answers_http, eventually, free_port
from kopf.testing import KopfRunner

from tests.kube.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")

KINDS = {
    "Function": "/apis/klambda.io/v1alpha1/namespaces/{ns}/functions",
    "Version": "/apis/klambda.io/v1alpha1/namespaces/{ns}/versions",
    "Alias": "/apis/klambda.io/v1alpha1/namespaces/{ns}/aliases",
    "DatabaseProxy": "/apis/klambda.io/v1alpha1/namespaces/{ns}/databaseproxies",
    "Layer": "/apis/klambda.io/v1alpha1/namespaces/{ns}/layers",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Event": "/api/v1/namespaces/{ns}/events",
}


class Namespace:
    """kubectl and direct API reads in one test namespace."""

    def __init__(self, plane: ControlPlane, name: str) -> None:
        self.plane = plane
        self.name = name

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> Any:
        return self.plane.kubectl(f"--namespace={self.name}", *args, input=input, check=check)

    def apply(self, manifest: str | dict[str, Any], *args: str) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.kubectl("apply", *args, "-f", "-", input=text)

    def try_apply(self, manifest: dict[str, Any]) -> Any:
        """`kubectl apply` that may be refused: the CompletedProcess."""
        return self.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        status, body = self.plane.api_request("GET", f"{KINDS[kind].format(ns=self.name)}/{name}")
        if status == 404:
            return None
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def list(self, kind: str, **selectors: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode(selectors)
        path = KINDS[kind].format(ns=self.name) + (f"?{query}" if query else "")
        status, body = self.plane.api_request("GET", path)
        assert status == 200, body
        return body["items"]  # type: ignore[no-any-return]

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.list("Event", fieldSelector=f"involvedObject.name={name}")

    def patch(self, kind: str, name: str, patch: dict[str, Any], check: bool = True) -> Any:
        """`kubectl patch --type=merge`: the CompletedProcess (stderr has the refusal)."""
        return self.kubectl(
            "patch", kind.lower(), name, "--type=merge", "-p", json.dumps(patch), check=check
        )

    def wait(
        self, probe: Callable[[], T | None], what: str, timeout: float = 30.0, every: float = 0.2
    ) -> T:
        """Poll `probe` until it returns something truthy; fail naming `what`."""
        got = eventually(probe, what, timeout=timeout, interval=every)
        assert got is not None  # eventually returns something truthy
        return got

    def status_of(self, kind: str, name: str) -> dict[str, Any]:
        return (self.get(kind, name) or {}).get("status") or {}

    def wait_state(self, kind: str, name: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            body = self.get(kind, name)
            status = (body or {}).get("status") or {}
            generation = (body or {}).get("metadata", {}).get("generation")
            if status.get("state") == state and status.get("observedGeneration") == generation:
                return body
            return None

        return self.wait(probe, f"{kind} {name} state {state}", timeout)

    def wait_gone(self, kind: str, name: str, timeout: float = 30.0) -> None:
        self.wait(lambda: self.get(kind, name) is None, f"{kind} {name} to be deleted", timeout)


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c  # type: ignore[no-any-return]
    raise AssertionError(f"no {type_} condition in {body.get('status')}")


class Operator:
    """The operator in this process (kopf.testing.KopfRunner), watching one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.runner: KopfRunner | None = None
        self.outputs: list[str] = []

    def start(self) -> None:
        assert self.runner is None
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        args = ["run", "--standalone", f"--namespace={self.namespace}", f"--liveness={liveness}"]
        self.runner = KopfRunner([*args, "-m", "klambda_operator.handlers"], timeout=60)
        self.runner.__enter__()
        # Wait until kopf serves its probe: by then it has hooked its log onto the runner's
        # output, so `output` holds everything the operator says from here on.
        eventually(lambda: answers_http(liveness), "the operator's liveness probe")

    def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.__exit__(None, None, None)  # re-raises if the operator crashed
            self.outputs.append(runner.output)
            assert runner.exit_code == 0, runner.output

    @property
    def output(self) -> str:
        return "".join(self.outputs)


@pytest.fixture(scope="session")
def klambda_crds(kube_control_plane: ControlPlane) -> ControlPlane:
    """The CRDs of crds/, installed as `kubectl apply` would, and established."""
    kube_control_plane.kubectl("apply", "-f", str(ROOT / "crds"))
    kube_control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip
    return kube_control_plane


@pytest.fixture(scope="session")
def garbage_collector(klambda_crds: ControlPlane) -> ControlPlane:
    """kube-controller-manager's garbage collector, once it watches klambda's kinds.

    It learns new CRDs at its next discovery resync (every 30 s), and until then cannot
    cascade a deletion from a Function. A probe (a ConfigMap owned by a Function that is
    then deleted) tells when it can.
    """
    plane, probe_ns = klambda_crds, "klambda-gc-probe"
    plane.kubectl("create", "namespace", probe_ns, check=False)
    attempts = itertools.count()

    def cascades() -> bool:
        """One probe: True if its ConfigMap went within 3 s of the Function."""
        attempt = next(attempts)
        fn = function_manifest(f"probe{attempt}")
        plane.kubectl("apply", f"--namespace={probe_ns}", "-f", "-", input=json.dumps(fn))
        uid = plane.get_json("function", f"probe{attempt}", f"--namespace={probe_ns}")["metadata"][
            "uid"
        ]
        owned = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"probe{attempt}",
                "ownerReferences": [
                    {"apiVersion": "klambda.io/v1alpha1", "kind": "Function",
                     "name": f"probe{attempt}", "uid": uid}
                ],
            },
        }  # fmt: skip
        plane.kubectl("apply", f"--namespace={probe_ns}", "-f", "-", input=json.dumps(owned))
        plane.kubectl("delete", f"--namespace={probe_ns}", "function", f"probe{attempt}")
        path = f"/api/v1/namespaces/{probe_ns}/configmaps/probe{attempt}"
        eventually(
            lambda: plane.api_request("GET", path)[0] == 404,
            f"ConfigMap probe{attempt} deleted with its Function",
            timeout=3,
            interval=0.2,
        )
        return True

    eventually(cascades, "the garbage collector to cascade a Function's deletion", timeout=90)
    return plane


@pytest.fixture
def ns(klambda_crds: ControlPlane, kube_namespace: str) -> Namespace:
    return Namespace(klambda_crds, kube_namespace)


@pytest.fixture
def start_operator(
    ns: Namespace, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Operator]]:
    """`start_operator(idle_seconds=2, ...)`: a running operator with those
    KLAMBDA_OPERATOR_* settings; stopped (and checked for a crash) after the test."""
    monkeypatch.setenv("KUBECONFIG", str(ns.plane.kubeconfig))
    started: list[Operator] = []

    def start(**settings: Any) -> Operator:
        # a short resync, so that scale to zero and repairs show within seconds; no warm
        # pool unless a test asks for one (versions scale their own Deployments)
        for key, value in ({"resync_seconds": 1, "pool_size": 0} | settings).items():
            monkeypatch.setenv(f"KLAMBDA_OPERATOR_{key.upper()}", str(value))
        op = Operator(ns.name)
        op.start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def operator(start_operator: Callable[..., Operator]) -> Operator:
    return start_operator()


def function_manifest(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "runtime": "python3.11",
        "handler": "app.handler",
        "code": {"inline": {"app.py": "def handler(event, context):\n    return event\n"}},
    }
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": base | spec,
    }


def version_manifest(
    function: dict[str, Any], number: int, code_sha256: str, **spec: Any
) -> dict[str, Any]:
    name = function["metadata"]["name"]
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Version",
        "metadata": {"name": f"{name}.{number}"},
        "spec": {
            "function": name,
            "version": str(number),
            "codeSha256": code_sha256,
            "config": function["spec"],
        }
        | spec,
    }


def alias_manifest(function: str, alias: str, version: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": f"{function}.{alias}"},
        "spec": {"function": function, "version": version} | spec,
    }


def dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs)
