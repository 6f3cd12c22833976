"""Both queue backends against the same contract: leases and visibility, retries written
back, dead letters and redrive, named queues. Real SQLite files, a real nats-server."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from klambda.api import limits
from klambda.errors import InvalidParameterValue
from klambda.queue import AsyncEvent, DeadLetter, Delivery, Queue
from klambda.testing import eventually_async

from tests.integration.queue.conftest import MakeQueue


def events(n: int, function: str = "hello") -> list[AsyncEvent]:
    return [AsyncEvent.new(function, b'{"n": %d}' % i) for i in range(n)]


async def test_enqueued_events_come_back_intact(make_queue: MakeQueue) -> None:
    q = await make_queue()
    sent = events(5)
    for e in sent:
        await q.enqueue(e)
    assert await q.depth() == 5
    got = await q.receive(10, wait=2)
    assert sorted(d.event.request_id for d in got) == sorted(e.request_id for e in sent)
    by_id = {e.request_id: e for e in sent}
    for d in got:
        assert d.event == by_id[d.event.request_id]
        await d.ack()
    assert await q.receive(10, wait=0.1) == []
    assert await q.depth() == 0


async def test_a_full_size_payload_is_stored(make_queue: MakeQueue) -> None:
    q = await make_queue()
    big = AsyncEvent.new("hello", b"x" * limits.ASYNC_PAYLOAD_MAX_BYTES)
    await q.enqueue(big)
    [d] = await q.receive(1, wait=2)
    assert d.event.payload == big.payload
    await d.ack()


async def test_receive_waits_for_an_event_that_arrives(make_queue: MakeQueue) -> None:
    q = await make_queue()
    waiting = asyncio.create_task(q.receive(1, wait=5))
    # A moment for the receive to start waiting: the point of the test, not a readiness
    # guess (were it late, the event would be there at once and the test would still pass).
    await asyncio.sleep(0.1)
    assert not waiting.done()
    t0 = time.monotonic()
    await q.enqueue(AsyncEvent.new("hello", b"{}"))
    got = await waiting
    assert len(got) == 1
    assert time.monotonic() - t0 < 1.0
    await got[0].ack()


async def test_a_leased_event_is_hidden_then_delivered_again_if_never_acked(
    make_queue: MakeQueue,
) -> None:
    # The lease (1.5 s) outlasts the 0.2 s look by far, so a stall of a busy machine
    # between the two receives does not make the event visible early.
    q = await make_queue(visibility=1.5)
    await q.enqueue(AsyncEvent.new("hello", b"{}"))
    [first] = await q.receive(1, wait=2)
    assert await q.receive(1, wait=0.2) == []  # leased: invisible
    [again] = await q.receive(1, wait=5)  # the lease ran out: delivered again
    assert again.event.request_id == first.event.request_id
    await again.ack()
    assert await q.depth() == 0


async def test_extend_keeps_a_long_running_event_leased(make_queue: MakeQueue) -> None:
    # Held for 1.5 s in all, longer than the 1 s visibility timeout, and extended every
    # 0.25 s: the sleeps are the point (time passing while the event is worked on), and
    # each extension may come 0.75 s late on a busy machine before the lease would lapse.
    q = await make_queue(visibility=1.0)
    await q.enqueue(AsyncEvent.new("hello", b"{}"))
    [d] = await q.receive(1, wait=2)
    held = time.monotonic()
    for _ in range(6):
        await asyncio.sleep(0.25)
        await d.extend()
    assert time.monotonic() - held > 1.0
    assert await q.receive(1, wait=0.1) == []
    await d.ack()


async def test_another_consumer_gets_the_event_when_the_first_dies(make_queue: MakeQueue) -> None:
    dead = await make_queue(visibility=0.5)
    await dead.enqueue(AsyncEvent.new("hello", b"{}"))
    [held] = await dead.receive(1, wait=2)
    await dead.close()  # gone without acking, as a killed process
    alive = await make_queue(visibility=0.5)
    [d] = await alive.receive(1, wait=5)
    assert d.event.request_id == held.event.request_id
    await d.ack()


async def test_retry_writes_the_new_counts_and_waits_until_not_before(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    await q.enqueue(AsyncEvent.new("hello", b"{}"))
    [d] = await q.receive(1, wait=2)
    # not_before 1 s ahead: the 0.2 s look comes well before it even on a busy machine
    later = replace(d.event, attempts=1, last_error="boom", not_before=time.time() + 1.0)
    await d.retry(later)
    assert await q.receive(1, wait=0.2) == []
    [again] = await q.receive(1, wait=5)
    assert time.time() >= later.not_before  # never handed out early
    assert again.event.attempts == 1
    assert again.event.last_error == "boom"
    assert again.event.request_id == d.event.request_id
    await again.ack()


async def test_release_gives_the_event_back_at_once(make_queue: MakeQueue) -> None:
    q = await make_queue(visibility=30)
    await q.enqueue(AsyncEvent.new("hello", b"{}"))
    [d] = await q.receive(1, wait=2)
    await d.release()
    [again] = await q.receive(1, wait=2)
    assert again.event.request_id == d.event.request_id
    await again.ack()


async def dead_letter_all(q: Queue, n: int, function: str) -> list[AsyncEvent]:
    sent = events(n, function)
    for e in sent:
        await q.enqueue(e)
    got: list[Delivery] = []

    async def all_received() -> bool:
        got.extend(await q.receive(n - len(got), wait=1))
        return len(got) >= n

    await eventually_async(all_received, f"{n} events of {function} received", interval=0.01)
    for d in got:
        failed = replace(d.event, attempts=3, last_error_type="ValueError", last_error="boom")
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function}:$LATEST"
        await d.dead_letter(DeadLetter(failed, "RetriesExhausted", time.time(), arn))
    return sent


async def test_dead_letters_are_listed_counted_and_redriven(make_queue: MakeQueue) -> None:
    q = await make_queue()
    a = await dead_letter_all(q, 3, "alpha")
    b = await dead_letter_all(q, 2, "beta")
    assert await q.depth() == 0
    assert await q.dlq_depths() == {"alpha": 3, "beta": 2}
    listed = await q.dead_letters("alpha")
    assert [x.request_id for x in listed] == [e.request_id for e in a]
    first = listed[0]
    assert (first.error_type, first.error, first.attempts) == ("ValueError", "boom", 3)
    assert first.condition == "RetriesExhausted"
    assert first.event.payload == a[0].payload
    assert len(await q.dead_letters()) == 5
    assert len(await q.dead_letters(limit=2)) == 2

    assert await q.redrive(request_id=b[1].request_id) == 1
    assert await q.dlq_depths() == {"alpha": 3, "beta": 1}
    [d] = await q.receive(5, wait=2)
    assert d.event.request_id == b[1].request_id
    assert (d.event.attempts, d.event.redrives, d.event.last_error) == (0, 1, None)
    assert d.event.received_at > b[1].received_at  # a fresh age
    await d.ack()

    assert await q.redrive("alpha") == 3
    assert await q.dlq_depths() == {"beta": 1}
    assert await q.redrive() == 1
    assert await q.dlq_depths() == {}
    assert await q.depth() == 4


async def test_named_queues_keep_messages_with_attributes(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.send("audit", b'{"a": 1}', {"ErrorMessage": "line one\nline two", "RequestID": "r"})
    await q.send("audit", b"second", {})
    await q.send("other", b"elsewhere", {})
    msgs = await q.messages("audit")
    assert [m.body for m in msgs] == [b'{"a": 1}', b"second"]
    assert msgs[0].attributes == {"ErrorMessage": "line one\nline two", "RequestID": "r"}
    assert msgs[1].attributes == {}
    assert msgs[0].sent_at == pytest.approx(time.time(), abs=30)
    assert [m.body for m in await q.messages("other")] == [b"elsewhere"]
    assert await q.messages("empty") == []


async def test_names_that_would_break_the_store_are_refused(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(InvalidParameterValue, match="queue name"):
        await q.send("a.b", b"", {})
    with pytest.raises(InvalidParameterValue, match="function name"):
        await q.enqueue(AsyncEvent.new("a.>", b"{}"))
