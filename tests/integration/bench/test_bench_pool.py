"""The cluster benchmark part still runs: `python -m bench.run --quick --parts pool` starts
the Kubernetes control plane, the operator, the pool's workers on a test host and two
routers, and must produce a cold start through a pool pod with every phase measured."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.kube
def test_the_pool_part_measures_cold_starts_and_their_phases(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--parts", "pool", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    pool = json.loads(out.with_name("results.json").read_text())["parts"]["pool"]
    assert pool["cold_cluster"]["n"] == 2
    for phase in ("code_download", "specialise", "environment_start", "init", "handler"):
        assert not math.isnan(pool["phases_p50_ms"][phase]), phase
        assert pool["phases_mean_ms_from_metric"][phase] >= 0
    assert pool["cold_cluster"]["p50_ms"] > pool["phases_p50_ms"]["init"]
    assert "## 8. Cluster cold start through the warm pool" in out.read_text()
