"""A hostile handler against a real router run as root: it reaches nothing but its own
function. Each test does what such a handler would and asserts the opposite of what it
wants: other functions' environments, code and /tmp, and the router's state out of reach;
what it starts dies with its environment and with the router; its processes, threads and
/tmp bounded. The victim's next call succeeds throughout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner, eventually
from klambda.worker.sandbox import HOST_UIDS

FUNCTIONS = Path(__file__).parent / "functions"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="sandboxing needs root (README: Isolation)"
)


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    # the state outside /tmp, which every environment has its own of: what a handler
    # finds there is its own, so reading the state would fail for that reason alone
    state = Path(tempfile.mkdtemp(prefix="klambda-isolation-", dir="/var/tmp"))
    try:
        with RouterRunner.up(
            FUNCTIONS, workdir=tmp_path_factory.mktemp("r"), state=state / "state"
        ) as r:
            yield r
    finally:
        shutil.rmtree(state)


def call(router: RouterRunner, name: str, event: dict[str, Any]) -> tuple[dict[str, str], Any]:
    status, headers, body = router.invoke(name, event)
    assert status == 200, body
    return headers, json.loads(body)


def ok(router: RouterRunner, name: str, event: dict[str, Any]) -> Any:
    headers, body = call(router, name, event)
    assert "x-amz-function-error" not in headers, body
    return body


def processes_of(uid: int) -> list[int]:
    """The live processes running as `uid`."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        # a zombie has ended: only its parent's wait is missing
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            pids.append(int(entry.name))
    return pids


def cgroups_of(router_pid: int) -> list[Path]:
    return list(Path("/sys/fs/cgroup").glob(f"*/**/klambda-{router_pid}"))


def test_functions_run_as_their_own_unprivileged_uids(router: RouterRunner) -> None:
    victim = ok(router, "victim", {})
    hostile = ok(router, "hostile", {"mode": "whoami"})
    assert victim["uid"] >= 20000
    assert hostile["uid"] >= 20000
    assert victim["uid"] != hostile["uid"]
    assert victim["task_root"] == victim["cwd"] == "/var/task"
    # stable: kept on the host by state folder, so a restart finds them and no other
    # router on the host is given them
    assert router.state is not None
    uids = json.loads(HOST_UIDS.read_text())
    assert uids[f"{router.state.resolve()}:victim"] == victim["uid"]
    assert uids[f"{router.state.resolve()}:hostile"] == hostile["uid"]
    assert list(uids.values()).count(victim["uid"]) == 1
    assert "a uid per function" in router.output()


def test_killing_another_functions_environment_is_refused(router: RouterRunner) -> None:
    victim = ok(router, "victim", {})
    refused = ok(router, "hostile", {"mode": "kill", "pid": victim["pid"]})
    assert refused["errno"] == "EPERM"
    assert ok(router, "victim", {})["pid"] == victim["pid"]  # the same, untouched


def test_an_environment_killed_while_idle_is_replaced_unnoticed(router: RouterRunner) -> None:
    victim = ok(router, "victim", {})
    os.kill(victim["pid"], signal.SIGKILL)  # root can: as another process on the host might
    again = ok(router, "victim", {})  # no Runtime.ExitError for a death it did not cause
    assert again["pid"] != victim["pid"]


def test_other_functions_code_and_the_routers_state_are_unreadable(
    router: RouterRunner,
) -> None:
    state = router.state
    assert state is not None
    (code,) = [d for d in (state / "code").glob("*") if "task_root" in (d / "app.py").read_text()]
    for path in (
        code / "app.py",
        code,
        state,
        state / "queue.db",
        HOST_UIDS,
        state / "logs",
        state / "code",
    ):
        got = ok(router, "hostile", {"mode": "read", "path": str(path)})
        assert got.get("errno") == "EACCES", (path, got)
    # its own code is at /var/task, read-only
    assert ok(router, "hostile", {"mode": "read", "path": "/var/task"})["listed"]


def test_tmp_is_private_to_each_environment(router: RouterRunner) -> None:
    secret = f"victims-secret-{uuid.uuid4().hex}"  # no file a run before left can match
    victim = ok(router, "victim", {"write": secret})
    assert secret in victim["tmp"]
    hostile = ok(router, "hostile", {"mode": "whoami"})
    assert secret not in hostile["tmp"]
    assert not Path("/tmp", secret).exists()  # nor on the host


def test_writing_past_ephemeral_storage_fails_with_enospc(router: RouterRunner) -> None:
    got = ok(router, "hostile", {"mode": "write-tmp", "mb": 600})
    assert got["errno"] in ("ENOSPC", "EFBIG"), got
    assert 500 <= got["written_mb"] <= 512
    # within the limit it works, and the environment lived through it
    assert ok(router, "hostile", {"mode": "write-tmp", "mb": 100}) == {"written_mb": 100}


def test_more_than_1024_threads_are_refused(router: RouterRunner) -> None:
    got = ok(router, "hostile", {"mode": "threads", "count": 1100})
    assert 900 < got["started"] < 1024, got
    assert "can't start new thread" in got["error"]
    assert ok(router, "hostile", {"mode": "threads", "count": 500}) == {"started": 500}


def test_a_result_nested_too_deep_is_a_marshal_error(router: RouterRunner) -> None:
    pid = ok(router, "hostile", {"mode": "whoami"})["pid"]
    headers, err = call(router, "hostile", {"mode": "deep", "depth": 100_000})
    assert headers["x-amz-function-error"] == "Unhandled"
    assert err["errorType"] == "Runtime.MarshalError"
    assert ok(router, "hostile", {"mode": "whoami"})["pid"] == pid  # the same environment


def test_a_fork_bomb_dies_with_its_timed_out_environment(router: RouterRunner) -> None:
    uid = ok(router, "hostile", {"mode": "whoami"})["uid"]
    headers, err = call(router, "hostile", {"mode": "fork-bomb", "children": 4})
    assert err["errorType"] == "Sandbox.Timedout"
    assert headers["x-amz-function-error"] == "Unhandled"
    eventually(lambda: not processes_of(uid), "the fork bomb's processes gone", timeout=10)
    # its cgroups went with it: every one left holds a live environment (or the spare)
    for folder in cgroups_of(router.pid):
        for env in (d for d in folder.iterdir() if d.is_dir()):
            assert (env / "cgroup.procs").read_text().split(), f"{env} left behind"
    assert ok(router, "hostile", {"mode": "whoami"})["uid"] == uid


def test_what_a_handler_leaves_running_dies_with_the_router(tmp_path: Path) -> None:
    with RouterRunner.up(FUNCTIONS, workdir=tmp_path) as r:
        uid = ok(r, "hostile", {"mode": "whoami"})["uid"]
        assert ok(r, "hostile", {"mode": "daemon"}) == {"started": True}
        assert len(processes_of(uid)) == 2  # the environment and the daemon it left
        assert cgroups_of(r.pid)
        pid = r.pid
    assert processes_of(uid) == []
    assert cgroups_of(pid) == []


def test_without_cgroups_the_process_group_dies_and_nproc_limits(tmp_path: Path) -> None:
    """The fallback where no cgroups can be made: RLIMIT_NPROC on the function's uid, and
    the environment's process group killed with it; what left the group (setsid) is
    killed when the router stops, by uid."""
    with RouterRunner.up(FUNCTIONS, "--no-cgroups", workdir=tmp_path) as r:
        assert "1024 processes (RLIMIT_NPROC)" in r.output()
        uid = ok(r, "hostile", {"mode": "whoami"})["uid"]
        got = ok(r, "hostile", {"mode": "threads", "count": 1100})
        assert 900 < got["started"] < 1024, got
        _, err = call(r, "hostile", {"mode": "children", "children": 5})
        assert err["errorType"] == "Sandbox.Timedout"
        eventually(lambda: not processes_of(uid), "the environment's children gone", timeout=10)
        assert ok(r, "hostile", {"mode": "daemon"}) == {"started": True}
        assert len(processes_of(uid)) == 2
    assert processes_of(uid) == []
