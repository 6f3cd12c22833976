"""A gradual deployment against a cluster: `klambda deploy --kubeconfig` of examples/sam writes
the objects a user would apply (the operator takes them in), invocations go through a
cluster router to the warm pool's pods, the alarm reads that router's metrics and the
pre-traffic hook runs through it. A bad version trips the alarm during the canary and the
Alias in the API server returns to the old version with no weight left on the new one;
a good one goes all the way. The same template and the same checks as local mode's
(tests/integration/deploy/test_deploy_local.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from klambda.testing import RouterRunner, eventually

from tests.helpers import KLAMBDA, ROOT
from tests.integration.deploy.test_deploy_local import Traffic
from tests.kube.controlplane import ControlPlane

from .test_pool import cluster

EXAMPLE = ROOT / "examples/sam"
# the 5-minute canary in 20 s: long enough for the new version's first (cold) calls
SLOW = ["--minute-seconds", "4", "--check-every", "0.2"]


def deploy(
    project: Path, plane: ControlPlane, ns: str, router: RouterRunner, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KLAMBDA, "deploy", str(project / "template.yaml"), "--ignore-unsupported", *SLOW,
         "--kubeconfig", str(plane.kubeconfig), "-n", ns,
         # hooks are invoked, and alarms read, on the cluster's router
         "--endpoint", router.url, *args],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        env={**os.environ},
    )  # fmt: skip


@pytest.mark.kube
def test_a_canary_rolls_back_in_the_cluster_and_a_good_version_goes_through(
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    plane, name = kube_control_plane, kube_namespace
    with cluster(plane, name, tmp_path, monkeypatch) as (ns, _pods, r):
        first = deploy(project, plane, name, r)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "orders:live -> version 1" in first.stdout
        ns.wait_state("Function", "orders", "Active")

        def served_by(version: str) -> bool:
            status, headers, _ = r.invoke("orders:live", {"id": 7})
            return status == 200 and headers.get("x-amz-executed-version") == version

        eventually(lambda: served_by("1"), "orders:live served by version 1", timeout=60)
        assert json.loads(r.invoke("orders:live", {"id": 7})[2]) == {
            "order": 7,
            "stage": "dev",
            "version": "1",
        }

        # a bad version: its errors, counted by the cluster router, trip the alarm
        with Traffic(r):
            bad = deploy(project, plane, name, r, "--parameter", "Broken=yes")
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "step 1/2: 10% to the new version" in bad.stdout
        assert "rolled back: alarm OrdersErrors (errors >= 1) fired" in bad.stdout
        # the canary reached the new version's pods, as the cluster router counts its calls
        assert r.metric("klambda_invocations_total", function="orders", version="2") >= 1
        live = ns.get("Alias", "orders.live")
        assert live is not None
        assert live["spec"]["version"] == "1"
        assert "routing" not in live["spec"]  # no weight left on version 2
        assert "rolled back" in live["spec"]["description"]
        assert ns.get("Version", "orders.2") is not None  # published, kept, not served
        listing = ns.kubectl("get", "fna", "orders.live").stdout
        assert "rolled back: alarm OrdersErrors" in listing
        eventually(lambda: served_by("1"), "orders:live back on version 1")

        # the fixed code goes all the way, through the canary's two steps
        app = project / "orders/app.py"
        app.write_text(app.read_text().replace('VERSION = "1"', 'VERSION = "3"'))
        with Traffic(r) as traffic:
            good = deploy(project, plane, name, r)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "step 2/2: 100% to the new version" in good.stdout
        live = ns.get("Alias", "orders.live")
        assert live is not None
        assert live["spec"]["version"] == "3"
        assert "succeeded" in live["spec"]["description"]
        assert {"1", "3"} <= set(traffic.versions)
        eventually(
            lambda: json.loads(r.invoke("orders:live", {"id": 2})[2])["version"] == "3",
            "orders:live to run the new code",
        )
