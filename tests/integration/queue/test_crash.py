"""Kill -9 the process that holds the queue while 1,000 events are queued and some are in
flight; restart it; every accepted event is processed at least once. Both backends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from klambda.queue import open_queue

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
    proc: subprocess.Popen[bytes], out: Path, check: Callable[[], bool], within: float
) -> None:
    deadline = time.monotonic() + within
    while not check():
        if proc.poll() is not None:
            raise AssertionError(
                f"worker exited with {proc.returncode}:\n{(out / 'worker.log').read_text()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out:\n{(out / 'worker.log').read_text()}")
        await asyncio.sleep(0.01)


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
        await wait_for(second, out, lambda: submitted <= set(ids(out / "done")), within=60)
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
