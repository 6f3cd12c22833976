"""The pure parts of sandboxing: stable uids, and which folders an environment's view
must cover and bind back so that its interpreter stays readable to its uid."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.environment import sandbox as entering
from klambda.worker import sandbox
from klambda.worker.sandbox import FIRST_UID, allocate, prune


@pytest.mark.parametrize(
    ("assigned", "key", "uid"),
    [
        ({}, "/s:a", FIRST_UID),
        ({"/s:a": FIRST_UID}, "/s:a", FIRST_UID),  # stable
        ({"/s:a": FIRST_UID}, "/s:b", FIRST_UID + 1),
        ({"/s:a": FIRST_UID + 1}, "/s:b", FIRST_UID),  # the lowest free one
        ({"/s:a": FIRST_UID, "/t:a": FIRST_UID + 1}, "/u:a", FIRST_UID + 2),  # per router
    ],
)
def test_allocate(assigned: dict[str, int], key: str, uid: int) -> None:
    assert allocate(assigned, key) == uid


def test_the_range_runs_out_loudly() -> None:
    full = {f"/s:{i}": FIRST_UID + i for i in range(sandbox.UID_COUNT)}
    with pytest.raises(RuntimeError, match="are taken"):
        allocate(full, "/s:one-more")


def test_uids_of_state_folders_gone_are_freed() -> None:
    assigned = {"/kept:a": 1, "/gone:a": 2, "/kept:with:colon": 3}
    assert prune(assigned, lambda scope: scope.startswith("/kept")) == {
        "/kept:a": 1,
        "/kept:with:colon": 3,
    }


def test_in_memory_uids_without_a_state_folder() -> None:
    sb = sandbox.Sandbox(enabled=True)
    assert sb.uid_for("f") == FIRST_UID
    assert sb.uid_for("g") == FIRST_UID + 1
    assert sb.uid_for("f") == FIRST_UID
    assert sb.uids == {"f": FIRST_UID, "g": FIRST_UID + 1}


def test_uids_kept_on_the_host_by_state_folder(tmp_path: Path) -> None:
    host = tmp_path / "lib" / "uids.json"
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    a = sandbox.Sandbox(one, enabled=True, uids_file=host)
    assert a.uid_for("f") == FIRST_UID
    b = sandbox.Sandbox(two, enabled=True, uids_file=host)
    assert b.uid_for("f") == FIRST_UID + 1  # another router: another uid
    again = sandbox.Sandbox(one, enabled=True, uids_file=host)
    assert again.uid_for("f") == FIRST_UID  # a restart: the same
    assert oct(host.stat().st_mode & 0o777) == "0o600"


def test_the_task_root_agrees() -> None:
    assert sandbox.TASK_ROOT == entering.TASK_ROOT
    assert sandbox.OPT == entering.OPT


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every uid may enter, up from / (pytest's own are below a 0700 one)."""
    path = Path(tempfile.mkdtemp(dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_reveal_plan_covers_closed_folders_and_binds_back_what_is_needed(
    open_dir: Path,
) -> None:
    tmp_path = open_dir
    closed = tmp_path / "home"
    lib = closed / "py" / "lib"
    site = lib / "site-packages"
    site.mkdir(parents=True)
    open_dir = tmp_path / "open" / "lib"
    open_dir.mkdir(parents=True)
    closed.chmod(0o700)
    try:
        covers, reveals = entering.reveal_plan(
            [str(site), str(lib), str(open_dir), str(tmp_path / "missing"), ""]
        )
    finally:
        closed.chmod(0o755)
    assert covers == [str(closed)]
    assert reveals == [str(lib)]  # site-packages is inside it


def test_nothing_to_reveal_where_everything_is_open(open_dir: Path) -> None:
    (open_dir / "a").mkdir()
    assert entering.reveal_plan([str(open_dir / "a")]) == ([], [])
    assert os.stat(open_dir).st_mode & 0o001


def test_what_lives_under_tmp_is_bound_back_into_the_new_tmp(open_dir: Path) -> None:
    # a clone and its venv under /tmp: the environment's own tmpfs would hide them
    runtime, site = open_dir / "clone" / "runtime", open_dir / "clone" / ".venv" / "site"
    site.mkdir(parents=True)
    runtime.mkdir()
    (runtime / "klambda").mkdir()
    covers, reveals = entering.reveal_plan(
        [str(site), str(runtime), str(runtime / "klambda")], tmp=str(open_dir)
    )
    assert covers == []
    assert reveals == [str(site), str(runtime)]


def test_klambdas_source_root_is_in_the_plan() -> None:
    assert Path(entering.SOURCE_ROOT, "klambda", "environment", "sandbox.py").is_file()
