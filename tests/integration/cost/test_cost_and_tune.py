"""`klambda cost` and `klambda tune` against a real router, environments and cgroups."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from klambda.testing import RouterRunner

from tests.helpers import KLAMBDA, ROOT

EXAMPLES = ROOT / "examples" / "functions"


def klambda(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"KLAMBDA_ENDPOINT": url} if url else {})}
    return subprocess.run(
        [*KLAMBDA, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "total"),
    [
        (["--invocations", "3000000", "--memory", "512", "--duration", "1s"], "$18.74 / month"),
        (["--invocations", "30000000", "--memory", "128", "--duration", "200ms"], "$11.63 / month"),
        (
            ["-n", "3000000", "-m", "512", "-d", "1s", "--price-gb-second", "0.0000166667"],
            "$18.73 / month",
        ),
        # the seed's "$34 a month for 5 units" of provisioned concurrency always on
        (["--provisioned", "5", "--memory", "640"], "$34.22 / month (no free tier for "
         "provisioned concurrency)"),
    ],
)  # fmt: skip
def test_cost_estimate_gives_the_seed_examples(args: list[str], total: str) -> None:
    out = klambda("cost", "estimate", *args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(total)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "1", "-m", "100", "-d", "1s"], "--memory: 100 MB is outside 128-10240 MB"),
        (["-n", "-5", "-m", "128", "-d", "1s"], "--invocations: must be >= 0"),
        (["-n", "1", "-m", "128", "-d", "soon"], "is not a duration"),
        (["--provisioned", "0", "-m", "128"], "--provisioned: must be at least 1"),
        (["--provisioned", "5", "-m", "128", "--hours", "800"], "at most 744 hours"),
    ],
)
def test_cost_estimate_refuses_bad_input(args: list[str], message: str) -> None:
    out = klambda("cost", "estimate", *args)
    assert out.returncode == 2
    assert message in out.stderr


def test_tune_cpu_bound_handler_and_cost_report(tmp_path: Path) -> None:
    fns = tmp_path / "fns"
    fns.mkdir()
    (fns / "hasher.yaml").write_text((EXAMPLES / "hasher.yaml").read_text())
    with RouterRunner.up(fns, "-q", workdir=tmp_path) as r:
        cgroups = "memory limits: cgroups" in r.output()
        png, js = tmp_path / "tune.png", tmp_path / "tune.json"
        out = klambda(
            "tune",
            "hasher",
            "--memory",
            "128,512,1769,3008",
            "--invocations",
            "5",
            "--payload",
            '{"rounds": 40000}',
            "--strategy",
            "cost",
            "--plot",
            str(png),
            "--json",
            str(js),
            url=r.url,
        )
        assert out.returncode == 0, out.stderr
        data = json.loads(js.read_text())
        # the least of each size's durations: what the CPU quota allows, least disturbed by
        # whatever else this shared machine is running
        fastest = {row["memoryMB"]: row["min_ms"] for row in data["results"]}
        cost = {row["memoryMB"]: row["cost_per_invocation"] for row in data["results"]}
        if cgroups:
            # CPU in proportion to memory up to one vCPU (13.8x from 128 to 1769 MB) ...
            full_speed = min(fastest[1769], fastest[3008])
            assert fastest[128] > 5 * full_speed, fastest
            # 512 MB has 4x the quota of 128 MB: both are held by their quotas, which a
            # machine busy with other work does not change (it slows the full-speed runs,
            # so a ratio to those says little on a loaded machine)
            assert fastest[128] > 2 * fastest[512], fastest
            # ... and no faster beyond it: the handler is single-threaded
            # (slower is this shared machine's noise: only faster would contradict it)
            assert fastest[3008] > fastest[1769] / 1.5, fastest
        else:  # no cgroups here: no CPU limit, durations stay flat (README says so)
            assert max(fastest.values()) < 3 * min(fastest.values()), fastest
        best = data["recommendation"]["memoryMB"]
        assert cost[best] == min(cost.values())
        assert f"recommended (cost): {best} MB" in out.stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.image

        assert matplotlib.image.imread(png).shape[0] > 100
        # tuning used temporary copies: no versions were published, none are left behind
        listed = klambda("get", "versions", "hasher", url=r.url).stdout.splitlines()
        assert [line.split()[0] for line in listed[1:]] == ["$LATEST"]
        # live usage is reported, tuning runs are not
        klambda("invoke", "hasher", url=r.url)
        report = klambda("cost", "report", "hasher", "--since", "1h", url=r.url)
        assert report.returncode == 0, report.stderr
        rows = [line.split() for line in report.stdout.splitlines()[1:-1]]
        assert rows == [["hasher", "$LATEST", "-", "1", "0", rows[0][5], rows[0][6]]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "100"], "--memory: 100 MB is outside 128-10240 MB"),
        (["--memory", ""], "--memory: give at least one memory size"),
        (["--invocations", "0"], "--invocations: must be at least 1"),
        (["--strategy", "cheap"], "--strategy: must be one of cost, speed, balanced"),
    ],
)
def test_tune_refuses_bad_input(args: list[str], message: str) -> None:
    out = klambda("tune", "hasher", *args, url="http://127.0.0.1:1")
    assert out.returncode == 2
    assert message in out.stderr
