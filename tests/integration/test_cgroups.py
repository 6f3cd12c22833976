"""Environment cgroups on this machine: created, limited, and cleaned up after a killed
router. Where the machine gives no cgroups, the fallback is asserted instead."""

from __future__ import annotations

import os

from klambda.worker.cgroups import Cgroups, remove_stale


def test_stale_router_cgroups_are_removed_and_live_ones_kept() -> None:
    groups = Cgroups()
    if not groups.available:
        assert groups.create("env-x", 128) is None  # the worker then uses RLIMIT_AS
        return
    try:
        assert groups.memory_parent is not None
        folder = groups.memory_parent.parent
        stale = folder / "klambda-999999999"  # no such pid
        (stale / "env-left-behind").mkdir(parents=True)
        env = groups.create("env-live", 256)
        assert env is not None
        limit_file = "memory.max" if groups.v2 else "memory.limit_in_bytes"
        assert (env.memory_dir / limit_file).read_text().strip() == str(256 * 1024 * 1024)
        removed = remove_stale(folder)
        assert "klambda-999999999" in removed
        assert not stale.exists()
        assert groups.memory_parent.exists()  # ours: its pid is alive
        assert f"klambda-{os.getpid()}" not in removed
    finally:
        groups.close()
