"""The scheduler on a real durable queue (SQLite) with a clock the test sets: one event per
tick, none again after a restart, missed ticks skipped or fired once, the trigger's own
input and overrides on the event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from klambda.api.triggers import ScheduleEvent
from klambda.queue import Dispatcher, SqliteQueue
from klambda.queue.event import AsyncEvent
from klambda.router.scheduler import FileScheduleState, Scheduler
from klambda.router.triggers import Declared
from klambda.triggers import eventbridge
from pydantic import TypeAdapter

T0 = datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC).timestamp()  # 12:00:30


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def at(self, hhmmss: str) -> None:
        h, m, s = (float(x) for x in hhmmss.split(":"))
        self.t = datetime(2024, 1, 1, int(h), int(m), tzinfo=UTC).timestamp() + s


def declared(name: str = "tick", alias: str | None = None, **event: Any) -> Declared:
    spec = {"type": "Schedule", "schedule": "rate(1 minute)", **event}
    return Declared("hello", alias, name, TypeAdapter(ScheduleEvent).validate_python(spec))


async def never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the dispatcher is not started in these tests")


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteQueue]:
    q = SqliteQueue(str(tmp_path / "queue.db"))
    await q.open()
    yield q
    await q.close()


async def drain(q: SqliteQueue) -> list[AsyncEvent]:
    out = []
    for d in await q.receive(100, 0.05):
        out.append(d.event)
        await d.ack()
    return out


def scheduler(q: SqliteQueue, state: Path, clock: Clock) -> Scheduler:
    dispatcher = Dispatcher(q, never, lambda fn: None)  # type: ignore[arg-type,return-value]
    return Scheduler(
        dispatcher.submit,
        FileScheduleState(state),
        region="us-east-1",
        account="000000000000",
        clock=clock,
    )


async def test_one_event_per_tick_and_none_again_after_a_restart(
    queue: SqliteQueue, tmp_path: Path
) -> None:
    clock, state = Clock(T0), tmp_path / "schedules.json"
    s = scheduler(queue, state, clock)
    s.configure([declared()])
    assert await s.run_due() == pytest.approx(30.0)  # the next tick is 12:01
    assert await drain(queue) == []
    clock.at("12:01:00.01")
    await s.run_due()
    await s.run_due()
    (event,) = await drain(queue)
    body = json.loads(event.payload)
    assert body["source"] == "aws.events"
    assert body["detail-type"] == "Scheduled Event"
    assert body["time"] == "2024-01-01T12:01:00Z"
    assert body["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/hello-tick"]
    assert event.request_id == body["id"] == eventbridge.event_id("hello/tick", _t("12:01:00"))
    assert event.origin is not None
    assert (event.origin.trigger, event.origin.type) == ("tick", "Schedule")
    assert json.loads(state.read_text())["lastFired"] == {"hello/tick": _t("12:01:00").timestamp()}

    # a restart inside the same minute: the tick is not fired again
    clock.at("12:01:30")
    again = scheduler(queue, state, clock)
    again.configure([declared()])
    await again.run_due()
    assert await drain(queue) == []
    assert again.schedules["hello/tick"].next == _t("12:02:00")
    clock.at("12:02:00.5")
    await again.run_due()
    assert [json.loads(e.payload)["time"] for e in await drain(queue)] == ["2024-01-01T12:02:00Z"]


async def test_a_restart_across_a_tick_fires_it_late(queue: SqliteQueue, tmp_path: Path) -> None:
    clock, state = Clock(T0), tmp_path / "schedules.json"
    FileScheduleState(state).fired("hello/tick", _t("12:00:00").timestamp())
    clock.at("12:01:20")  # the 12:01 tick came while no router ran, 20 s ago
    s = scheduler(queue, state, clock)
    s.configure([declared()])
    await s.run_due()
    assert [json.loads(e.payload)["time"] for e in await drain(queue)] == ["2024-01-01T12:01:00Z"]


@pytest.mark.parametrize(("missed", "fired"), [("Skip", []), ("FireOnce", ["12:05:00"])])
async def test_ticks_missed_while_down(
    queue: SqliteQueue, tmp_path: Path, missed: str, fired: list[str]
) -> None:
    clock, state = Clock(T0), tmp_path / "schedules.json"
    FileScheduleState(state).fired("hello/tick", _t("12:01:00").timestamp())
    clock.at("12:05:30")  # down from 12:01:30 to 12:05:30: four ticks missed
    s = scheduler(queue, state, clock)
    s.configure([declared(missed=missed)])
    await s.run_due()
    await s.run_due()
    times = [json.loads(e.payload)["time"] for e in await drain(queue)]
    assert times == [f"2024-01-01T{t}Z" for t in fired]
    assert s.schedules["hello/tick"].next == _t("12:06:00")


async def test_input_and_overrides_reach_the_event(queue: SqliteQueue, tmp_path: Path) -> None:
    clock = Clock(T0)
    s = scheduler(queue, tmp_path / "s.json", clock)
    s.configure(
        [
            declared(
                "nightly",
                alias="prod",
                schedule="cron(0 3 * * ? *)",
                input='{"full": true}',
                retryAttempts=0,
                maxEventAgeSeconds=120,
                deadLetter={"queue": "missed-nightly"},
            )
        ]
    )
    assert s.schedules["hello:prod/nightly"].next == _t("03:00:00").replace(day=2)
    clock.t = _t("03:00:00").replace(day=2).timestamp() + 0.2
    await s.run_due()
    (event,) = await drain(queue)
    assert event.payload == b'{"full": true}'
    assert (event.function, event.qualifier) == ("hello", "prod")
    assert event.origin is not None
    assert event.origin.retry_attempts == 0
    assert event.origin.max_event_age_seconds == 120
    assert event.origin.dead_letter_queue == "missed-nightly"


async def test_a_schedule_in_a_time_zone(queue: SqliteQueue, tmp_path: Path) -> None:
    s = scheduler(queue, tmp_path / "s.json", Clock(T0))
    s.configure([declared(schedule="cron(0 9 * * ? *)", timezone="Asia/Tokyo")])
    # 09:00 in Tokyo is 00:00 UTC: the next one is tomorrow's
    assert s.schedules["hello/tick"].next == datetime(2024, 1, 2, 0, 0, tzinfo=UTC)


def _t(hhmmss: str) -> datetime:
    h, m, sec = (int(x) for x in hhmmss.split(":"))
    return datetime(2024, 1, 1, h, m, sec, tzinfo=UTC)
