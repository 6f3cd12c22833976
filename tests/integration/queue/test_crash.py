"""Kill -9 the process that holds the queue while 1,000 events are queued and some are in
flight; restart it; every accepted event is processed at least once. Both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from klambda.queue import open_queue
from klambda.testing import eventually_async, still_running

from tests.helpers import ROOT
from tests.integration.queue.conftest import queue_url

EVENTS = 1000


def ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def start(url: str, out: Path, *args: str) -> subprocess.Popen[bytes]:
    log = open(out / "worker.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.queue.crashworker", url, str(out), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def wait_for(
    proc: subprocess.Popen[bytes], out: Path, check: Callable[[], bool], what: str, within: float
) -> None:
    try:
        await eventually_async(
            lambda: still_running(proc, out / "worker.log") and check(), what, timeout=within
        )
    except AssertionError as err:
        if proc.poll() is not None:
            raise  # it exited: the message has its log
        proc.kill()
        raise AssertionError(f"{err}\n{(out / 'worker.log').read_text()}") from err


async def test_kill_9_with_events_in_flight_loses_none(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = queue_url(backend, tmp_path, request)
    out = tmp_path / "out"
    out.mkdir()
    # 32 invocations of 40 ms at a time: there is always something in flight to kill.
    common = ("--workers", "32", "--invoke-ms", "40", "--visibility", "1")

    first = start(url, out, "--submit", str(EVENTS), *common)
    try:
        await wait_for(
            first,
            out,
            lambda: (
                len(ids(out / "submitted")) == EVENTS
                and len(ids(out / "done")) >= 150
                and len(ids(out / "started")) > len(ids(out / "done"))
            ),
            "every event submitted, 150 done and some in flight",
            within=30,
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    submitted = set(ids(out / "submitted"))
    in_flight = set(ids(out / "started")) - set(ids(out / "done"))
    assert len(submitted) == EVENTS
    assert in_flight, "nothing was in flight at the kill: the test proved nothing"
    assert len(set(ids(out / "done"))) < EVENTS

    second = start(url, out, *common)
    try:
        await wait_for(
            second, out, lambda: submitted <= set(ids(out / "done")), "every event done", 60
        )
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, (out / "worker.log").read_text()

    done = ids(out / "done")
    assert submitted <= set(done)
    assert in_flight <= set(done)
    queue = open_queue(url)
    await queue.open()
    try:
        assert await queue.depth() == 0
        assert await queue.dlq_depths() == {}
    finally:
        await queue.close()
