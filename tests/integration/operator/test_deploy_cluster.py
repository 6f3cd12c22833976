"""`klambda deploy --kubeconfig`: the SAM template of examples/sam written as the objects a
user would apply, with the operator taking them in (the triggers of an AutoPublishAlias
function on its Alias); the same template deployed to a local router gives the same
functions, versions and aliases; a second deploy changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from klambda.testing import RouterRunner

from tests.helpers import KLAMBDA, ROOT

from .conftest import Namespace, Operator

EXAMPLE = ROOT / "examples/sam"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KLAMBDA, *args], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
        env={**os.environ},
    )  # fmt: skip


@pytest.mark.kube
def test_a_template_deploys_to_the_cluster_as_to_a_router(
    ns: Namespace, operator: Operator, tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "shop")
    template = str(tmp_path / "shop/template.yaml")
    cluster = ["--kubeconfig", str(ns.plane.kubeconfig), "-n", ns.name]
    out = run("deploy", template, *cluster)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "+ create    orders" in out.stdout

    fn = ns.wait_state("Function", "orders", "Active")
    assert fn["spec"]["reservedConcurrency"] == 10
    assert fn["spec"]["retryAttempts"] == 1
    assert fn["spec"]["tags"] == {"klambda:stack": "shop"}
    live = ns.get("Alias", "orders.live")
    assert live is not None
    assert (live["spec"]["version"], live["spec"]["provisionedConcurrency"]) == ("1", 1)
    # SAM attaches orders' route to its alias: the Alias's events, not the Function's
    place_order = live["spec"]["events"]["PlaceOrder"]
    assert (place_order["type"], place_order["path"], place_order["method"]) == (
        "HttpApi", "/orders", "POST"
    )  # fmt: skip
    assert "events" not in fn["spec"]
    report = ns.get("Function", "report")
    assert report is not None
    assert report["spec"]["events"]["Nightly"]["schedule"] == "cron(0 3 * * ? *)"
    triggers = run("get", "triggers", *cluster).stdout.splitlines()
    assert sorted(x.split()[:3] for x in triggers[1:]) == [
        ["orders:live", "PlaceOrder", "HttpApi"], ["report", "Nightly", "Schedule"],
    ]  # fmt: skip
    assert ns.get("Version", "orders.1") is not None
    listing = ns.kubectl("get", "fna", "orders.live").stdout
    assert "DESCRIPTION" in listing.splitlines()[0]

    again = run("deploy", template, *cluster)
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout

    (tmp_path / "functions").mkdir()
    with RouterRunner.up(tmp_path / "functions", "-q", workdir=tmp_path) as router:
        local = ["--endpoint", router.url]
        out = run("deploy", template, *local)
        assert out.returncode == 0, out.stdout + out.stderr
        for verb in (["get", "functions"], ["get", "versions", "orders"],
                     ["get", "aliases", "orders"]):  # fmt: skip
            here, there = run(*verb, *local), run(*verb, *cluster)
            assert here.returncode == there.returncode == 0, here.stderr + there.stderr
            assert here.stdout == there.stdout, verb
