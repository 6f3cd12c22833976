"""One SQLite queue file shared by processes (the router processes of `klambda up
--processes N`): an enqueue in one process wakes the receiver in another at once, and
the writers of different processes take turns on the queue's lock. Real processes, a real
SQLite file. And one batch: its new events share an INSERT, its operations keep their
order."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from klambda.queue import AsyncEvent, SqliteQueue

ENQUEUE = """
import asyncio, sys
from klambda.queue import AsyncEvent, SqliteQueue

async def main():
    q = SqliteQueue(sys.argv[1])
    await q.open()
    for n in range(int(sys.argv[2])):
        await q.enqueue(AsyncEvent.new("hello", b'{"n": %d}' % n))
    await q.close()

asyncio.run(main())
"""


async def enqueue_elsewhere(path: Path, n: int) -> None:
    """`n` events enqueued by another Python process, which then exits."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ENQUEUE, str(path), str(n), stderr=subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def test_another_process_s_enqueue_wakes_the_receiver_at_once(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    async with SqliteQueue(path, poll_interval=60) as q:
        waiting = asyncio.create_task(q.receive(1, wait=30))
        # A moment for the receive to start waiting (were it late, the event would be
        # there at its first lease and the test would still pass).
        await asyncio.sleep(0.2)
        assert not waiting.done()
        t0 = time.monotonic()
        await enqueue_elsewhere(path, 1)
        got = await waiting
        # without the wake-up it would lease again only at the end of its 30 s wait
        assert len(got) == 1, got
        assert time.monotonic() - t0 < 15
        await got[0].ack()


async def test_a_transaction_waits_for_the_lock_of_another_process(tmp_path: Path) -> None:
    """The lock is what another process's writer holds from BEGIN to COMMIT."""
    path = tmp_path / "queue.db"
    async with SqliteQueue(path) as q:
        other = os.open(q.lock_path, os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX)  # as another process's writer would
            enqueue = asyncio.create_task(q.enqueue(AsyncEvent.new("hello", b"{}")))
            await asyncio.sleep(0.5)
            assert not enqueue.done()
            fcntl.flock(other, fcntl.LOCK_UN)
            await asyncio.wait_for(enqueue, 10)
        finally:
            os.close(other)
        assert await q.depth() == 1


async def test_writers_of_two_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    async with SqliteQueue(path) as q:
        mine = [AsyncEvent.new("hello", b"{}") for _ in range(300)]
        elsewhere = asyncio.create_task(enqueue_elsewhere(path, 300))
        await asyncio.gather(*(q.enqueue(e) for e in mine))
        await elsewhere
        assert await q.depth() == 600


async def test_a_batch_s_new_events_and_operations_keep_their_order(tmp_path: Path) -> None:
    """Operations that arrive in one loop iteration share a transaction: the depth asked
    for between two groups of new events counts the first group only."""
    async with SqliteQueue(tmp_path / "queue.db") as q:
        first = [q.enqueue(AsyncEvent.new("hello", b"{}")) for _ in range(3)]
        depth = q.depth()
        second = [q.enqueue(AsyncEvent.new("hello", b"{}")) for _ in range(250)]
        commits = q.commits
        *_, seen, _ = await asyncio.gather(*first, depth, *second[:1])
        await asyncio.gather(*second[1:])
        assert seen == 3
        assert q.commits - commits <= 2
        assert await q.depth() == 253


async def test_a_file_where_the_fifo_goes_costs_the_wake_ups_not_the_queue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "queue.db"
    (tmp_path / "queue.db.wake").write_text("not a FIFO")
    async with SqliteQueue(path, poll_interval=0.2) as q:
        assert "is not a FIFO" in caplog.text
        await enqueue_elsewhere(path, 1)
        got = await q.receive(1, wait=10)  # seen at the next poll instead
        assert len(got) == 1
        await got[0].ack()
