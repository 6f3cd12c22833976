"""A serving process stops in order on SIGINT or SIGTERM, even one sent while it starts."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from klambda.shutdown import run_until_signal


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("when", ["while starting", "once serving"])
def test_signal_stops_after_start(sig: signal.Signals, when: str) -> None:
    calls: list[str] = []

    async def start() -> None:
        if when == "while starting":
            os.kill(os.getpid(), sig)
            await asyncio.sleep(0.01)  # the handler runs here; start still completes
        else:
            asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), sig)
        calls.append("started")

    async def stop() -> None:
        calls.append("stopped")

    run_until_signal(start, stop)
    assert calls == ["started", "stopped"]
    # the handlers went with the loop: the default ones are back
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
