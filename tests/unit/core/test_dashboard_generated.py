"""The chart's dashboard is generated from code (scripts/gen_dashboard.py, Grafana's
grafana-foundation-sdk): the committed JSON is what the code generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_dashboard_is_the_generated_one() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_dashboard.py"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr + " (run `make dashboard`)"
