"""The container's OOM kill counter, read as cgroup v2 and v1 write it."""

from __future__ import annotations

from pathlib import Path

import pytest
from klambda.worker import cgroups


def test_v2_memory_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n")
    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    assert cgroups.container_oom_kills() == 2


def test_v1_oom_control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"
    )
    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    assert cgroups.container_oom_kills() == 7


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    assert cgroups.container_oom_kills() is None
    (tmp_path / "memory.events").write_text("oom 1\n")  # an old kernel: no oom_kill line
    assert cgroups.container_oom_kills() is None
