"""How a serving process ends: SIGINT or SIGTERM asks it to stop, and it stops in order.

`klambda up`, `klambda router` and `klambda worker` start their servers, serve until one
of these signals arrives, then stop them. The handlers are installed before anything
starts, so a signal that arrives while a server is still starting is kept: the process
stops as soon as it is up, through the same orderly path.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_requested() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets, from now on, in the running loop."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, event.set)
    return event


def run_until_signal(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Start, serve until SIGINT or SIGTERM, stop: the life of a serving process."""

    async def main() -> None:
        stopping = stop_requested()
        await start()
        sys.stdout.flush()
        await stopping.wait()
        await stop()

    asyncio.run(main())
