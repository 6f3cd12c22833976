"""The klambda chart as the tests see it: render it with the built helm, read its files,
and ask the API server what a ServiceAccount may do."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.kube.controlplane import ControlPlane, ensure_binaries

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "klambda"
CI_VALUES = CHART / "ci"
MONITORING_VALUES = CI_VALUES / "monitoring-values.yaml"
KIND_VALUES = CI_VALUES / "kind-values.yaml"
MONITORING_CRDS = Path(__file__).parent / "monitoring-crds.yaml"
GATEWAY_CRDS = Path(__file__).parent / "gateway-crds.yaml"
# helm built from source defaults to Kubernetes v1.20 when there is no cluster to ask
KUBE_VERSION = "1.34.0"
MONITORING_API = "monitoring.coreos.com/v1"
VAP_API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The built helm, with its homes in a throwaway folder, no cluster."""
    bin_dir = ensure_binaries(("helm",))
    with tempfile.TemporaryDirectory(prefix="klambda-helm-") as home:
        env = dict(os.environ)
        for kind in ("CACHE", "CONFIG", "DATA"):
            env[f"HELM_{kind}_HOME"] = str(Path(home) / kind.lower())
        env["KUBECONFIG"] = str(Path(home) / "no-cluster")
        proc = subprocess.run(
            [str(bin_dir / "helm"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(*args: str, namespace: str = "klambda") -> list[dict[str, Any]]:
    out = helm("template", "t", str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION, *args)
    return documents(out.stdout)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, (kind, name_suffix, [d["metadata"]["name"] for d in found])
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Workload name -> its pod template's spec."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }


@dataclass(frozen=True)
class Access:
    """One question for SelfSubjectAccessReview: may I `verb` `resource`?"""

    verb: str
    resource: str
    group: str = ""
    namespace: str = ""  # "" is every namespace (or a cluster-scoped resource)
    subresource: str = ""
    name: str = ""  # one object's name ("" is any)

    def __str__(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        res = f"{res}.{self.group}" if self.group else res
        res = f"{res} {self.name}" if self.name else res
        return f"{self.verb} {res} in {self.namespace or 'all namespaces'}"

    def review(self) -> dict[str, Any]:
        attrs = {
            "verb": self.verb,
            "resource": self.resource,
            "group": self.group,
            "namespace": self.namespace,
            "subresource": self.subresource,
            "name": self.name,
        }
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {k: v for k, v in attrs.items() if v}},
        }


def allowed(plane: ControlPlane, kubeconfig: Path, questions: list[Access]) -> dict[Access, bool]:
    """Ask the API server, as the kubeconfig's user, each question (one kubectl call)."""
    batch = {"apiVersion": "v1", "kind": "List", "items": [q.review() for q in questions]}
    out = plane.kubectl(
        "create", "-f", "-", "-o", "json", kubeconfig=kubeconfig, input=json.dumps(batch)
    ).stdout
    decoder, i = json.JSONDecoder(), 0
    answers: list[dict[str, Any]] = []
    while i < len(out):
        if out[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(out, i)
        answers.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    assert len(answers) == len(questions), out
    return {q: bool(a["status"].get("allowed")) for q, a in zip(questions, answers, strict=True)}


def mismatches(plane: ControlPlane, kubeconfig: Path, expect: dict[Access, bool]) -> list[str]:
    got = allowed(plane, kubeconfig, list(expect))
    return [f"{'may not' if want else 'may'} {q}" for q, want in expect.items() if got[q] != want]
