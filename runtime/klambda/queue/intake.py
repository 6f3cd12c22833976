"""Accepting an asynchronous invocation: the event made durable in the queue, counted.

This is all a process needs to answer 202: the dispatcher (which leases and invokes) uses
it, and so does a router process that accepts events without dispatching them (a
follower of `klambda up --processes N`, whose events the leader's dispatcher runs).
"""

from __future__ import annotations

from typing import Any

from klambda.queue.backend import Queue
from klambda.queue.event import AsyncEvent, Origin, check_payload
from klambda.queue.metrics import AsyncMetrics


class Intake:
    def __init__(self, queue: Queue, metrics: AsyncMetrics) -> None:
        self.queue = queue
        self.metrics = metrics
        self._received: dict[str, Any] = {}  # each function's counter child, looked up once

    async def submit(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        origin: Origin | None = None,
        trace: str | None = None,
    ) -> AsyncEvent:
        """Accept an asynchronous invocation: durable in the queue when this returns (the
        moment to answer 202). Raises `RequestTooLarge` over 256 KB. `origin` names the
        trigger of the event and its own retry and dead-letter settings; `trace` is the
        trace header the invocation will run with (klambda.lineage)."""
        check_payload(payload)
        event = AsyncEvent.new(
            function,
            payload,
            qualifier=qualifier,
            request_id=request_id,
            origin=origin,
            trace=trace,
        )
        await self.queue.enqueue(event)
        received = self._received.get(function)
        if received is None:
            received = self._received[function] = self.metrics.received.labels(function)
        received.inc()
        return event
