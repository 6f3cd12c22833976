"""The benchmarks still run: `python -m bench.run --quick` with real processes.

Every part that needs no Go build runs for a second or a handful of calls (a real router,
the bare echo, wrk, cold starts, async events through SQLite and a real nats-server -js,
provisioned environments) and must produce numbers. The
gRPC throughput part (ghz) and the peer part (RIE) need Go tools that bench/build-tools.sh
builds from the module proxy; they are left out here by selecting the other parts, not by
skipping, and are run by `make bench`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import CLUSTER_PARTS, NEEDS, PARTS

ROOT = Path(__file__).resolve().parents[3]
# the cluster parts start a Kubernetes control plane: test_bench_pool.py runs them
WITHOUT_GO = [p for p in PARTS if p not in NEEDS and p not in CLUSTER_PARTS]


def numbers(tree: Any) -> list[float]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in numbers(v)]
    if isinstance(tree, list | tuple):
        return [x for v in tree for x in numbers(v)]
    if isinstance(tree, bool):
        return []
    if isinstance(tree, int | float):
        return [float(tree)]
    return []


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    argv = ["-m", "bench.run", "--quick", "--parts", ",".join(WITHOUT_GO), "--output", str(out)]
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(out.with_name("results.json").read_text())
    data["markdown"] = out.read_text()
    return data


def test_every_selected_part_produced_numbers(results: dict[str, Any]) -> None:
    assert results["errors"] == {}
    for part in WITHOUT_GO:
        values = numbers(results["parts"][part])
        if part == "profile" and "skipped" in results["parts"][part]:
            continue  # py-spy is optional: not a dependency of klambda
        assert values, part
        assert all(not math.isnan(v) for v in values), part


def test_the_figures_are_pairs_measured_in_the_run(results: dict[str, Any]) -> None:
    p = results["parts"]
    assert p["latency"]["echo"]["p50_ms"] > 0
    assert p["latency"]["noop"]["p50_ms"] > 0
    assert p["latency"]["ratio_p50_vs_echo"] > 0
    assert p["rest"]["klambda"]["1"]["ok"] > 0
    assert p["rest"]["echo"]["1"]["ok"] > 0
    assert p["cold"]["cold"]["n"] == results["sizes"]["cold"]
    assert p["cold"]["bare_python"]["p50_ms"] > 0
    assert p["scale"]["environment_memory"]["count"] >= results["sizes"]["scale"]
    assert p["scale"]["environment_memory"]["pss_mb_median"] > 0
    assert p["metrics"]["series"] > 0
    for name in ("sqlite", "jetstream"):
        b = p["async"]["backends"][name]
        for c, ev in b["accept"]["event"].items():
            assert ev["ok"] > 0, (name, c)
            assert ev["errors"] == 0, (name, c)
            assert b["accept"]["sync"][c]["ok"] > 0, (name, c)
        assert b["accept"]["received"] >= b["accept"]["accepted"] > 0
        assert b["accept"]["invoked"] == 0  # reserved concurrency 0: kept, never run
        assert b["burst"]["events"] == b["burst"]["received"] > 0  # every accepted event ran
        assert b["paced"]["submit_to_start"]["n"] == results["sizes"]["async_paced"]
        pr = p["async"]["processes"][name]
        assert pr["processes"] >= 2
        for c, ev in pr["event"].items():
            assert ev["ok"] > 0, (name, "processes", c)
            assert ev["errors"] == 0, (name, "processes", c)
    logs = p["logs"]
    assert logs["ingestion"]["ratio_p50"] > 0
    assert (
        logs["million"]["records"] == logs["million"]["written"] >= results["sizes"]["log_records"]
    )
    assert all(q["median_s"] > 0 for q in logs["million"]["queries"].values())


def test_results_md_names_the_machine_the_command_and_the_hops(results: dict[str, Any]) -> None:
    md = results["markdown"]
    assert "## Machine" in md
    assert "-m bench.run --quick" in md
    assert "process boundaries" in md
    assert "## 4. Async" in md
    assert "| NATS JetStream | " in md
    assert "Not selected in this run" in md  # grpc and peer were left out
