"""The dispatcher on both backends: Lambda's retries, maximum event age, throttles, DLQ,
destinations and redrive, with the retry schedule shrunk to milliseconds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from klambda.api import limits
from klambda.errors import RequestTooLarge, ResourceNotFound
from klambda.queue import (
    AsyncEvent,
    AsyncMetrics,
    AsyncPolicy,
    Dispatcher,
    Queue,
    RetrySchedule,
    Target,
)
from klambda.testing import eventually_async
from prometheus_client import CollectorRegistry

from tests.integration.queue.conftest import MakeQueue
from tests.integration.queue.functions import Functions, failing_until

FAST = RetrySchedule(error_base=0.05, throttle_base=0.02, throttle_cap=0.1, jitter=0.0)


@dataclass
class Harness:
    queue: Queue
    dispatcher: Dispatcher
    functions: Functions
    registry: CollectorRegistry
    policies: dict[str, AsyncPolicy] = field(default_factory=dict)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def dlq(self, function: str) -> int:
        return (await self.queue.dlq_depths()).get(function, 0)

    async def wait_dlq(self, function: str, n: int) -> None:
        async def reached() -> bool:
            return await self.dlq(function) == n

        await eventually_async(reached, f"{n} dead letters of {function}")

    async def wait_empty(self) -> None:
        async def empty() -> bool:
            return await self.queue.depth() == 0

        await eventually_async(empty, "an empty queue")

    async def records(self, queue: str, n: int) -> list[dict[str, Any]]:
        async def enough() -> bool:
            return len(await self.queue.messages(queue)) >= n

        await eventually_async(enough, f"{n} messages in {queue}")
        return [json.loads(m.body) for m in await self.queue.messages(queue)]


@pytest.fixture
async def h(make_queue: MakeQueue) -> AsyncIterator[Harness]:
    queue = await make_queue(visibility=5.0)
    functions = Functions()
    registry = CollectorRegistry()
    policies: dict[str, AsyncPolicy] = {}

    async def policy(function: str) -> AsyncPolicy:  # the router's lookup may be async
        if function == "deleted":
            raise ResourceNotFound(f"Function not found: {function}")
        return policies.get(function, AsyncPolicy(retry_attempts=2, max_event_age_seconds=60))

    dispatcher = Dispatcher(
        queue,
        functions,
        policy,
        workers=4,
        schedule=FAST,
        metrics=AsyncMetrics(registry),
        poll_wait=0.2,
        dlq_refresh_seconds=0.2,
        rnd=lambda: 0.5,
    )
    await dispatcher.start()
    yield Harness(queue, dispatcher, functions, registry, policies)
    await dispatcher.stop(grace=1)


async def test_success_goes_to_on_success_in_lambdas_record_format(h: Harness) -> None:
    h.functions.add("hello", lambda event, rid: {"greeting": f"Hello, {event['name']}!"})
    h.policies["hello"] = AsyncPolicy(on_success=Target(queue="done"))
    event = await h.dispatcher.submit("hello", b'{"name": "Ada"}', qualifier="prod")
    [record] = await h.records("done", 1)
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": event.request_id,
        "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:hello:prod",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"name": "Ada"}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"greeting": "Hello, Ada!"}
    [call] = h.functions.calls
    assert (call.request_id, call.qualifier) == (event.request_id, "prod")
    await h.wait_empty()
    assert h.metric("klambda_async_events_received_total", function="hello") == 1
    assert h.metric("klambda_async_event_age_seconds_count", function="hello") == 1


async def test_a_function_error_is_retried_with_the_same_request_id(h: Harness) -> None:
    h.functions.add("flaky", failing_until(2))
    h.policies["flaky"] = AsyncPolicy(retry_attempts=2, on_success=Target(queue="done"))
    event = await h.dispatcher.submit("flaky", b'{"k": 1}')
    [record] = await h.records("done", 1)
    calls = h.functions.calls_of("flaky")
    assert [c.request_id for c in calls] == [event.request_id] * 3
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == event.request_id
    assert h.metric("klambda_async_retries_total", function="flaky", reason="function_error") == 2
    assert await h.dlq("flaky") == 0


@pytest.mark.parametrize("retry_attempts", [0, 2])
async def test_an_always_failing_function_ends_in_the_dlq_after_1_plus_retry_attempts(
    h: Harness, retry_attempts: int
) -> None:
    h.functions.add("broken", failing_until(10**6, "the database is down"))
    h.policies["broken"] = AsyncPolicy(
        retry_attempts=retry_attempts,
        on_failure=Target(queue="failures"),
        dead_letter=Target(queue="broken-dlq"),
    )
    event = await h.dispatcher.submit("broken", b'{"order": 7}')
    [record] = await h.records("failures", 1)
    await h.wait_dlq("broken", 1)
    assert len(h.functions.calls_of("broken")) == 1 + retry_attempts

    [dead] = await h.dispatcher.dead_letters("broken")
    assert dead.request_id == event.request_id
    assert dead.attempts == 1 + retry_attempts
    assert dead.error_type == "ValueError"
    assert dead.error == "the database is down"
    assert dead.condition == "RetriesExhausted"
    assert dead.summary()["errorMessage"] == "the database is down"

    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1 + retry_attempts
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "the database is down"

    # The deadLetter queue gets what Lambda sends a DLQ: the event, with error attributes.
    [msg] = await h.queue.messages("broken-dlq")
    assert msg.body == b'{"order": 7}'
    assert msg.attributes["RequestID"] == event.request_id
    assert msg.attributes["ErrorCode"] == "200"
    assert "the database is down" in msg.attributes["ErrorMessage"]

    assert (
        h.metric("klambda_async_events_dropped_total", function="broken", reason="RetriesExhausted")
        == 1
    )
    assert h.metric("klambda_async_retries_total", function="broken", reason="function_error") == (
        retry_attempts
    )
    await eventually_async(
        lambda: h.metric("klambda_dlq_depth", function="broken") == 1, "DLQ depth 1 of broken"
    )


async def test_redrive_after_fixing_the_function_drains_the_dlq(h: Harness) -> None:
    broken = True

    def handler(event: Any, rid: str) -> Any:
        if broken:
            raise RuntimeError("bug")
        return {"fixed": event["i"]}

    h.functions.add("buggy", handler)
    h.policies["buggy"] = AsyncPolicy(retry_attempts=0)
    sent = [await h.dispatcher.submit("buggy", b'{"i": %d}' % i) for i in range(3)]
    await h.wait_dlq("buggy", 3)
    dead_ids = [d.request_id for d in await h.dispatcher.dead_letters("buggy")]
    assert sorted(dead_ids) == sorted(e.request_id for e in sent)

    broken = False
    assert await h.dispatcher.redrive("buggy", request_id=sent[0].request_id) == 1
    assert await h.dlq("buggy") == 2
    assert await h.dispatcher.redrive("buggy") == 2
    assert await h.dlq("buggy") == 0
    await eventually_async(lambda: len(h.functions.calls_of("buggy")) == 6, "6 calls of buggy")
    retried = h.functions.calls_of("buggy")[3:]
    assert sorted(c.request_id for c in retried) == sorted(e.request_id for e in sent)
    await eventually_async(
        lambda: h.metric("klambda_dlq_depth", function="buggy") == 0, "DLQ depth 0 of buggy"
    )
    await h.wait_empty()


async def test_an_event_older_than_max_age_is_never_invoked(h: Harness) -> None:
    h.functions.add("slow", lambda event, rid: "ran")
    h.policies["slow"] = AsyncPolicy(max_event_age_seconds=60, on_failure=Target(queue="failed"))
    old = AsyncEvent.new("slow", b'{"late": true}', received_at=time.time() - 120)
    await h.queue.enqueue(old)
    [record] = await h.records("failed", 1)
    assert h.functions.calls_of("slow") == []
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestContext"]["requestId"] == old.request_id
    assert "responseContext" not in record
    await h.wait_dlq("slow", 1)
    [dead] = await h.dispatcher.dead_letters("slow")
    assert dead.condition == "EventAgeExceeded"
    assert dead.error_type == "EventAgeExceeded"
    assert "maximum event age of 60 s" in (dead.error or "")
    assert (
        h.metric("klambda_async_events_dropped_total", function="slow", reason="EventAgeExceeded")
        == 1
    )


async def test_throttled_events_are_retried_without_using_retry_attempts(h: Harness) -> None:
    h.functions.add("busy", lambda event, rid: {"ok": True})
    h.functions.throttle_next["busy"] = 5
    h.policies["busy"] = AsyncPolicy(retry_attempts=0, on_success=Target(queue="ok"))
    event = await h.dispatcher.submit("busy", b"{}")
    [record] = await h.records("ok", 1)
    assert [c.request_id for c in h.functions.throttled] == [event.request_id] * 5
    assert [c.request_id for c in h.functions.calls] == [event.request_id]
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert h.metric("klambda_async_retries_total", function="busy", reason="throttled") == 5
    assert await h.dlq("busy") == 0


async def test_throttled_until_max_age_goes_to_the_dlq_never_dropped(h: Harness) -> None:
    h.functions.add("jammed", lambda event, rid: "never")
    h.functions.throttle_always.add("jammed")
    h.policies["jammed"] = AsyncPolicy(max_event_age_seconds=0.4)
    event = await h.dispatcher.submit("jammed", b"{}")
    await h.wait_dlq("jammed", 1)
    [dead] = await h.dispatcher.dead_letters("jammed")
    assert dead.request_id == event.request_id
    assert dead.condition == "EventAgeExceeded"
    assert dead.error_type == "TooManyRequestsException"
    assert dead.attempts == 0
    assert len(h.functions.throttled) >= 3
    assert h.functions.calls == []


@pytest.mark.parametrize("name", ["ghost", "deleted"])  # refused by invoke / by the lookup
async def test_a_function_that_no_longer_exists_fails_at_once(h: Harness, name: str) -> None:
    event = await h.dispatcher.submit(name, b"{}")
    await h.wait_dlq(name, 1)
    [dead] = await h.dispatcher.dead_letters(name)
    assert dead.request_id == event.request_id
    assert dead.condition == "RetriesExhausted"
    assert dead.error_type == "ResourceNotFoundException"
    assert dead.record()["responseContext"] == {"statusCode": 404}
    assert h.functions.calls == []


async def test_a_function_destination_is_invoked_asynchronously_with_the_record(
    h: Harness,
) -> None:
    h.functions.add("worker", failing_until(10**6))
    h.functions.add("auditor", lambda event, rid: {"saw": event["requestContext"]["condition"]})
    h.policies["worker"] = AsyncPolicy(retry_attempts=0, on_failure=Target(function="auditor"))
    event = await h.dispatcher.submit("worker", b'{"job": 1}')
    await eventually_async(lambda: h.functions.calls_of("auditor"), "a call of auditor")
    [call] = h.functions.calls_of("auditor")
    assert call.request_id != event.request_id  # a new invocation of its own
    assert call.event["requestContext"]["requestId"] == event.request_id
    assert call.event["requestContext"]["condition"] == "RetriesExhausted"
    assert call.event["requestPayload"] == {"job": 1}


async def test_workers_bound_the_invocations_in_flight(h: Harness) -> None:
    h.functions.add("work", lambda event, rid: event)
    h.functions.delay = 0.03
    for i in range(24):
        await h.dispatcher.submit("work", b"%d" % i)
    await eventually_async(lambda: len(h.functions.calls) == 24, "24 calls")
    assert h.functions.max_running == h.dispatcher.workers == 4


async def test_payloads_over_256_kb_are_refused_naming_the_limit(h: Harness) -> None:
    h.functions.add("big", lambda event, rid: len(event))
    with pytest.raises(RequestTooLarge, match=str(limits.ASYNC_PAYLOAD_MAX_BYTES)):
        await h.dispatcher.submit("big", b'"' + b"x" * limits.ASYNC_PAYLOAD_MAX_BYTES + b'"')
    ok = b'"' + b"x" * (limits.ASYNC_PAYLOAD_MAX_BYTES - 2) + b'"'
    await h.dispatcher.submit("big", ok)
    await eventually_async(lambda: h.functions.calls, "a call")
    assert h.metric("klambda_async_events_received_total", function="big") == 1


async def test_stop_hands_running_events_back_for_redelivery(make_queue: MakeQueue) -> None:
    queue = await make_queue(visibility=30.0)  # far longer than the test: no lease expiry
    functions = Functions()
    functions.add("long", lambda event, rid: "done")
    functions.delay = 60.0
    first = Dispatcher(queue, functions, lambda fn: AsyncPolicy(), poll_wait=0.1)
    await first.start()
    event = await first.submit("long", b"{}")
    await eventually_async(lambda: first.in_flight == 1, "the event in flight")
    await first.stop(grace=0.1)

    functions.delay = 0.0
    second = Dispatcher(queue, functions, lambda fn: AsyncPolicy(), poll_wait=0.1)
    await second.start()
    try:
        await eventually_async(lambda: functions.calls, "the event delivered again", timeout=5)
        assert functions.calls[0].request_id == event.request_id
    finally:
        await second.stop()


async def test_nothing_is_received_before_the_dispatcher_is_ready(make_queue: MakeQueue) -> None:
    # a router that has not listed its functions yet would dead-letter every event it took
    queue = await make_queue(visibility=5.0)
    functions = Functions()
    functions.add("hello", lambda event, rid: {"ok": True})
    ready = asyncio.Event()
    dispatcher = Dispatcher(
        queue,
        functions,
        lambda function: AsyncPolicy(),
        workers=2,
        schedule=FAST,
        poll_wait=0.1,
        metrics=AsyncMetrics(CollectorRegistry()),
        ready=ready,
    )
    await dispatcher.start()
    try:
        await dispatcher.submit("hello", b"{}")
        await asyncio.sleep(0.5)
        assert functions.calls == []
        assert await queue.depth() == 1
        ready.set()

        async def ran() -> bool:
            return len(functions.calls) == 1 and await queue.depth() == 0

        await eventually_async(ran, "the event invoked once ready")
    finally:
        await dispatcher.stop(grace=1)


async def test_a_success_whose_destination_fails_is_not_acknowledged(h: Harness) -> None:
    # the destination's store fails once (NATS restarting): the event is invoked again
    # once its lease runs out, and its success reaches the destination after all
    h.functions.add("hello", lambda event, rid: {"ok": True})
    h.policies["hello"] = AsyncPolicy(on_success=Target(queue="done"))
    send, failures = h.queue.send, [1]

    async def flaky_send(queue: str, body: bytes, attributes: Any) -> None:
        if failures:
            failures.pop()
            raise ConnectionError("the queue's server is restarting")
        await send(queue, body, attributes)

    h.queue.send = flaky_send  # type: ignore[method-assign]
    event = await h.dispatcher.submit("hello", b"{}")
    [record] = await h.records("done", 1)
    assert record["requestContext"]["requestId"] == event.request_id
    assert [c.request_id for c in h.functions.calls] == [event.request_id] * 2
    await h.wait_empty()
