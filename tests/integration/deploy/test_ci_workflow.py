"""The CI/CD example (examples/ci/deploy.yml) run as a runner would: every `run` step of
the workflow, in order, in a clean checkout of the repository, against a real router; the
`uses` steps are the runner's own (checkout: the clone; setup-python: this machine's)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from klambda.testing import RouterRunner

from tests.helpers import ROOT

WORKFLOW = ROOT / "examples/ci/deploy.yml"


def test_the_workflow_tests_checks_and_deploys_from_a_clean_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True, timeout=120)
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]["steps"]
    assert [s.get("uses") for s in steps if "uses" in s] == [
        "actions/checkout@v4",
        "actions/setup-python@v5",
    ]
    (tmp_path / "functions").mkdir()
    with RouterRunner.up(tmp_path / "functions", "-q", workdir=tmp_path) as router:
        env = {
            **os.environ,
            "KLAMBDA_ENDPOINT": router.url,
            "KUBECONFIG_DATA": "",
            "MINUTE_SECONDS": "0.1",
        }
        env.pop("VIRTUAL_ENV", None)
        outputs = {}
        for step in steps:
            if "run" not in step:
                continue
            out = subprocess.run(
                ["bash", "-e", "-c", step["run"]],
                cwd=checkout, env=env, capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            assert out.returncode == 0, f"{step['name']}:\n{out.stdout}\n{out.stderr}"
            outputs[step["name"]] = out.stdout
        assert "3 passed" in outputs["Test the functions"]
        assert "+ create    orders" in outputs["Check the template and print the plan"]
        assert outputs["Deploy, shifting traffic gradually"].rstrip().endswith("deployed")
        status, headers, body = router.invoke("orders:live", {"id": 1})
        assert status == 200
        assert json.loads(body)["order"] == 1
        assert headers["x-amz-executed-version"] == "1"
