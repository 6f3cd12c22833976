"""The dispatcher: takes asynchronous events from a queue and invokes them, as Lambda does.

    submit ──> queue ──receive──> worker ──invoke──> Succeeded ──> on-success, ack
                 ^                  │                Retry     ──> written back with backoff
                 └──── redrive ─────┤                Failed    ──> on-failure, deadLetter,
                                    └── too old: not invoked        DLQ (+ ack)

It runs at most `workers` invocations at a time and leases no more events than it has free
workers, so a burst of events neither floods the router nor holds leases it cannot serve.
Decisions (age, retry, backoff) are the pure functions of `decisions` and `schedule`; this
module only applies them. Invocation goes through an injected callable, the router's one
invoke path, so async calls are admitted, throttled, logged and measured like sync ones:

    async def invoke(function, payload, *, qualifier, request_id, trace) -> InvokeOutcome

It raises `klambda.errors.TooManyRequests` for a throttle (retried without using a retry
attempt), `ServiceUnavailable` for a service error (likewise), and other `KlambdaError`s for
what retrying cannot fix (the function is gone): those fail at once. Any other exception is
treated as a service error. The policy lookup gives each function's `AsyncPolicy`.

Nothing is acknowledged before the event is done or in the DLQ. Destinations are written
before the ack, so a crash in between repeats them: at-least-once, everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from klambda import lineage
from klambda.errors import KlambdaError, ServiceUnavailable, TooManyRequests
from klambda.queue import records
from klambda.queue.backend import DeadLetter, Delivery, Queue
from klambda.queue.decisions import (
    SUCCESS,
    Attempt,
    Failed,
    Kind,
    Retry,
    Succeeded,
    after_attempt,
    before_attempt,
)
from klambda.queue.event import AsyncEvent, Response
from klambda.queue.intake import Intake
from klambda.queue.metrics import AsyncMetrics
from klambda.queue.policy import AsyncPolicy, Target
from klambda.queue.schedule import RetrySchedule
from klambda.trigger_metrics import TriggerMetrics

log = logging.getLogger("klambda.queue")


class InvokeOutcome(Protocol):
    """What the invoke path returns (the router's `InvokeResult` is one)."""

    @property
    def payload(self) -> bytes: ...

    @property
    def function_error(self) -> str | None: ...

    @property
    def executed_version(self) -> str: ...


class Invoke(Protocol):
    def __call__(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None,
        request_id: str,
        trace: str | None,
    ) -> Awaitable[InvokeOutcome]: ...


PolicyLookup = Callable[[str], AsyncPolicy | Awaitable[AsyncPolicy]]


class Dispatcher:
    def __init__(
        self,
        queue: Queue,
        invoke: Invoke,
        policy: PolicyLookup,
        *,
        workers: int = 8,
        schedule: RetrySchedule | None = None,
        metrics: AsyncMetrics | None = None,
        trigger_metrics: TriggerMetrics | None = None,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        poll_wait: float = 1.0,
        dlq_refresh_seconds: float = 15.0,
        rnd: Callable[[], float] = random.random,
        ready: asyncio.Event | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a dispatcher needs at least one worker")
        self.queue = queue
        self.invoke = invoke
        self.policy = policy
        self.workers = workers
        self.schedule = schedule or RetrySchedule()
        self.metrics = metrics or AsyncMetrics()
        self.intake = Intake(queue, self.metrics)
        self.submit = self.intake.submit
        self.trigger_metrics = trigger_metrics
        self.region = region
        self.account_id = account_id
        self.poll_wait = poll_wait
        self.dlq_refresh_seconds = dlq_refresh_seconds
        self.rnd = rnd
        # nothing is received before it is set (the router's first listing of functions:
        # an event taken before would find no function and be dead-lettered)
        self.ready = ready
        self._free = workers
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._dlq_known: set[str] = set()

    # -- what the router calls -----------------------------------------------------------

    async def dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self.queue.dead_letters(function, limit)

    async def redrive(self, function: str | None = None, request_id: str | None = None) -> int:
        n = await self.queue.redrive(function, request_id)
        await self.refresh_dlq_depth()
        return n

    async def refresh_dlq_depth(self) -> dict[str, int]:
        depths = await self.queue.dlq_depths()
        self.metrics.set_dlq_depths(depths, self._dlq_known)
        self._dlq_known |= set(depths)
        return depths

    async def start(self) -> None:
        if self._loops:
            return
        self._loops = [
            asyncio.create_task(self._receive_loop(), name="klambda-dispatcher"),
            asyncio.create_task(self._dlq_loop(), name="klambda-dlq-depth"),
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking events; give running invocations `grace` seconds, then cancel them
        and hand their events back to the queue for redelivery."""
        loops, self._loops = self._loops, []
        for t in loops:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return self.workers - self._free

    # -- loops ---------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        if self.ready is not None:
            await self.ready.wait()
        failures = 0
        while True:
            while self._free == 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            try:
                deliveries = await self.queue.receive(self._free, self.poll_wait)
                failures = 0
            except Exception as err:
                failures += 1
                log.warning("async queue: receive failed (%s); retrying", err)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            for d in deliveries:
                self._free -= 1
                task = asyncio.create_task(self._handle(d))
                self._tasks.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._free += 1
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("async event handling failed", exc_info=task.exception())

    async def _dlq_loop(self) -> None:
        while True:
            try:
                await self.refresh_dlq_depth()
            except Exception as err:
                log.warning("async queue: DLQ depth refresh failed: %s", err)
            await asyncio.sleep(self.dlq_refresh_seconds)

    # -- one event -----------------------------------------------------------------------

    async def _handle(self, d: Delivery) -> None:
        try:
            await self._process(d)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await d.release()
            raise

    async def _process(self, d: Delivery) -> None:
        event = d.event
        fn = event.function
        try:
            policy = await self._policy_of(event)
        except Exception as err:
            # KlambdaError: the function is gone, nothing to retry for. Anything else: the
            # lookup itself failed; retry as a service error, within the default max age.
            policy = AsyncPolicy()
            attempt = _rejected(err) if isinstance(err, KlambdaError) else _service_error(err)
            if not isinstance(err, KlambdaError):
                log.exception("async event %s: policy lookup failed", event.request_id)
            verdict = after_attempt(event, attempt, policy, self.schedule, time.time(), self.rnd())
            await self._apply(d, verdict, policy)
            return
        now = time.time()
        too_old = before_attempt(event, policy, now)
        if too_old is not None:
            await self._fail(d, too_old, policy)
            return
        self.metrics.event_age.labels(fn).observe(event.age(now))
        attempt = await self._attempt(d)
        verdict = after_attempt(event, attempt, policy, self.schedule, time.time(), self.rnd())
        await self._apply(d, verdict, policy)

    async def _policy_of(self, event: AsyncEvent) -> AsyncPolicy:
        value = self.policy(event.function)
        if inspect.isawaitable(value):
            value = await value
        return value.for_origin(event.origin)

    async def _attempt(self, d: Delivery) -> Attempt:
        event = d.event
        call = asyncio.ensure_future(
            self.invoke(
                event.function,
                event.payload,
                qualifier=event.qualifier,
                request_id=event.request_id,
                trace=event.trace,
            )
        )
        heartbeat = max(0.05, self.queue.visibility_timeout / 3)
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=heartbeat)
                if done:
                    break
                try:
                    await d.extend()
                except Exception as err:
                    log.warning("async event %s: lease extension failed: %s", event.request_id, err)
            result = call.result()
        except TooManyRequests as err:
            return Attempt(Kind.THROTTLED, None, err.code, err.message)
        except ServiceUnavailable as err:
            return Attempt(Kind.SERVICE_ERROR, None, err.code, err.message)
        except KlambdaError as err:
            return _rejected(err)
        except asyncio.CancelledError:
            call.cancel()
            raise
        except Exception as err:
            log.exception("async event %s: invoke failed", event.request_id)
            return _service_error(err)
        response = Response(
            200, result.executed_version, result.function_error, bytes(result.payload)
        )
        if result.function_error is None:
            return Attempt(Kind.SUCCESS, response)
        etype, emsg = records.error_of(response.payload, result.function_error)
        return Attempt(Kind.FUNCTION_ERROR, response, etype, emsg)

    async def _apply(
        self, d: Delivery, verdict: Succeeded | Retry | Failed, policy: AsyncPolicy
    ) -> None:
        fn = d.event.function
        if isinstance(verdict, Retry):
            await d.retry(verdict.event)
            self.metrics.retries.labels(fn, verdict.reason).inc()
        elif isinstance(verdict, Succeeded):
            if policy.on_success is not None and not await self._deliver(
                policy.on_success, verdict.event, SUCCESS
            ):
                # not acknowledged: the lease runs out and the event is invoked again, so
                # its success reaches the destination at least once
                return
            await d.ack()
        else:
            await self._fail(d, verdict, policy)

    async def _fail(self, d: Delivery, failed: Failed, policy: AsyncPolicy) -> None:
        event = failed.event
        dead = DeadLetter(event, failed.condition, time.time(), self._arn(event))
        if policy.on_failure is not None:
            await self._deliver(policy.on_failure, event, failed.condition)
        if policy.dead_letter is not None:
            await self._deliver(policy.dead_letter, event, failed.condition, dead_letter=True)
        try:
            await d.dead_letter(dead)
        except Exception:
            # Not acked: the lease runs out and the event is tried again.
            self.metrics.dead_letter_errors.labels(event.function).inc()
            raise
        self.metrics.dropped.labels(event.function, failed.condition).inc()
        origin = event.origin
        if origin is not None and self.trigger_metrics is not None:
            self.trigger_metrics.failures.labels(
                event.function, event.qualifier or "", origin.trigger, origin.type, failed.condition
            ).inc()
        self.metrics.dlq_depth.labels(event.function).inc()
        self._dlq_known.add(event.function)

    async def _deliver(
        self, target: Target, event: AsyncEvent, condition: str, *, dead_letter: bool = False
    ) -> bool:
        """Send Lambda's destination record to a destination; to a dead-letter queue, send
        the original event with Lambda's DLQ attributes instead. False if that failed
        (counted and logged): a failed event still reaches the DLQ, a succeeded one is
        left unacknowledged, to be tried again."""
        try:
            if target.queue is not None and dead_letter:
                attrs = records.dead_letter_attributes(event)
                await self.queue.send(target.queue, event.payload, attrs)
                return True
            record = records.destination_record(event, condition, time.time(), self._arn(event))
            body = records.record_bytes(record)
            if target.queue is not None:
                await self.queue.send(target.queue, body, {})
            elif target.function is not None:
                # the next hop of the event's chain: a loop through destinations is stopped
                trace = lineage.of_event(event.trace).next_hop().header()
                await self.queue.enqueue(AsyncEvent.new(target.function, body, trace=trace))
                self.metrics.received.labels(target.function).inc()
        except Exception as err:
            self.metrics.dead_letter_errors.labels(event.function).inc()
            log.error("async event %s: delivery to %s failed: %s", event.request_id, target, err)
            return False
        return True

    def _arn(self, event: AsyncEvent) -> str:
        return records.function_arn(
            event.function, event.qualifier, region=self.region, account_id=self.account_id
        )


def _rejected(err: KlambdaError) -> Attempt:
    body = json.dumps({"errorType": err.code, "errorMessage": err.message}).encode()
    return Attempt(
        Kind.REJECTED, Response(err.http_status, None, None, body), err.code, err.message
    )


def _service_error(err: Exception) -> Attempt:
    return Attempt(Kind.SERVICE_ERROR, None, type(err).__name__, str(err))
