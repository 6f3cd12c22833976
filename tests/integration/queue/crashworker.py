"""A dispatcher and its queue in a process of their own, for the crash tests to SIGKILL.

    python -m tests.integration.queue.crashworker QUEUE_URL OUT_DIR [--submit N]

With `--submit N` it accepts N events (as the router does for `--async` invocations) and
appends each request id to OUT_DIR/submitted once `submit` has returned, that is once the
event is durable. Every invocation appends its request id to OUT_DIR/started, works for
`--invoke-ms`, then appends it to OUT_DIR/done. An id in `started` but not in `done` was in
flight when the process died.

The files are opened with O_APPEND and written with one write() per line, without fsync:
the test kills this process, not the machine, and the page cache outlives the process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from klambda.queue import AsyncMetrics, AsyncPolicy, Dispatcher, RetrySchedule, open_queue

from tests.integration.queue.functions import Outcome


class Journal:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("queue_url")
    ap.add_argument("out", type=Path)
    ap.add_argument("--submit", type=int, default=0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--invoke-ms", type=float, default=10.0)
    ap.add_argument("--visibility", type=float, default=1.0)
    args = ap.parse_args()

    started, done = Journal(args.out / "started"), Journal(args.out / "done")
    submitted = Journal(args.out / "submitted")

    async def invoke(
        function: str,
        payload: bytes,
        *,
        qualifier: str | None,
        request_id: str,
        trace: str | None = None,
    ) -> Outcome:
        started.write(request_id)
        await asyncio.sleep(args.invoke_ms / 1000)
        done.write(request_id)
        return Outcome(b"null")

    queue = open_queue(args.queue_url, visibility_timeout=args.visibility)
    await queue.open()
    dispatcher = Dispatcher(
        queue,
        invoke,
        lambda fn: AsyncPolicy(),
        workers=args.workers,
        schedule=RetrySchedule(error_base=0.05, throttle_base=0.02, jitter=0.0),
        metrics=AsyncMetrics(),
        poll_wait=0.2,
    )
    await dispatcher.start()

    async def submit(i: int) -> None:
        event = await dispatcher.submit("crashy", b'{"i": %d}' % i)
        submitted.write(event.request_id)

    for first in range(0, args.submit, 50):
        await asyncio.gather(*(submit(i) for i in range(first, min(first + 50, args.submit))))
    print("submitted", args.submit, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await dispatcher.stop(grace=5)
    await queue.close()


if __name__ == "__main__":
    asyncio.run(main())
