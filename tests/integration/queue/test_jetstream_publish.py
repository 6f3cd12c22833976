"""An acknowledgement that does not come in time, on a real nats-server made to stall
(SIGSTOP): the publish is tried again, the stream holds the event once, and a server that
stays silent gets the caller a ServiceUnavailable (503) rather than a bare timeout."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.errors import ServiceUnavailable
from klambda.queue.event import AsyncEvent
from klambda.queue.jetstream import PUBLISH_ATTEMPTS, JetStreamQueue

from tests.integration.queue.natsserver import NatsServer, nats_server

TIMEOUT_S = 1.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    # its own: the package's shared server must not stall under other tests
    with nats_server(tmp_path) as s:
        yield s


async def _stalled(server: NatsServer, seconds: float) -> None:
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


async def test_a_late_acknowledgement_is_retried_and_stored_once(server: NatsServer) -> None:
    q = JetStreamQueue(server.url, request_timeout=TIMEOUT_S)
    await q.open()
    try:
        await q.enqueue(AsyncEvent.new("fn", b"{}"))  # the streams exist, the server answers
        stall = asyncio.create_task(_stalled(server, TIMEOUT_S * 1.5))
        await asyncio.sleep(0.1)
        event = AsyncEvent.new("fn", b'{"n": 2}')
        await q.enqueue(event)  # first attempt times out in the stall, the second is acked
        await stall
        assert await q.depth() == 2  # not 3: the retried publish was the same message
        got = await q.receive(10, 1.0)
        assert sorted(d.event.request_id for d in got).count(event.request_id) == 1
    finally:
        await q.close()


async def test_a_silent_server_gets_the_caller_service_unavailable(server: NatsServer) -> None:
    q = JetStreamQueue(server.url, request_timeout=TIMEOUT_S)
    await q.open()
    try:
        await q.enqueue(AsyncEvent.new("fn", b"{}"))
        stall = asyncio.create_task(_stalled(server, TIMEOUT_S * (PUBLISH_ATTEMPTS + 1.5)))
        await asyncio.sleep(0.1)
        with pytest.raises(ServiceUnavailable, match="did not store the message within 3"):
            await q.enqueue(AsyncEvent.new("fn", b"{}"))
        await stall
    finally:
        await q.close()
