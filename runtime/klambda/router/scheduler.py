"""The scheduler: fires the Schedule triggers, one asynchronous event per tick.

Each schedule's next tick comes from its expression (klambda.triggers.schedule). At the
tick the scheduler queues the event through the dispatcher (`Dispatcher.submit`, so
retries, maximum age and the DLQ apply, with the trigger's own overrides), then records
the tick as fired in the `ScheduleState`. The event's request id (and a Scheduled Event's
`id`) is derived from the schedule and the tick, so the same tick always carries the same
id.

Exactly one firing per tick across restarts: the last fired tick of every schedule is
kept (local mode: `STATE/schedules.json`, written atomically). A router that starts again
continues after that tick, so a tick fired before a restart is never fired again. A tick
whose time came while no router ran is fired late if it is less than `grace` seconds old
(a restart across a tick), and otherwise missed: skipped (EventBridge's way, the
default) or, with `missed: FireOnce`, fired once on recovery for the latest missed tick.
A crash in the instant between queueing an event and recording its tick can repeat that
one tick, with the same request id (at least once, as every asynchronous event).

Across router replicas (cluster mode) one router holds the schedules: the scheduler
fires only while its `Holder` says so (klambda.router.schedule_lease, a Lease that also
keeps the last fired ticks), and plans again from the Lease's ticks when it takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from klambda.api.triggers import ScheduleEvent
from klambda.queue.event import AsyncEvent, Origin
from klambda.router.triggers import Declared
from klambda.trigger_metrics import TriggerMetrics
from klambda.triggers import eventbridge
from klambda.triggers.schedule import ScheduleExpression, next_tick, parse, prev_tick, time_zone

log = logging.getLogger("klambda.router.scheduler")

# the longest the loop sleeps before looking again (a changed clock, new schedules)
MAX_SLEEP_S = 30.0


class Submit(Protocol):
    def __call__(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        origin: Origin | None = None,
        trace: str | None = None,
    ) -> Awaitable[AsyncEvent]: ...


class ScheduleState(Protocol):
    """Where the last fired tick of each schedule is kept (epoch seconds)."""

    def last(self, key: str) -> float | None: ...

    async def fired(self, key: str, tick: float) -> None: ...


class Holder(Protocol):
    """Whether this router holds the schedules now (one router of many, cluster mode)."""

    def holding(self) -> bool: ...


class MemoryScheduleState:
    """Ticks kept for the life of the process (a router whose state lives elsewhere)."""

    def __init__(self) -> None:
        self._ticks: dict[str, float] = {}

    def last(self, key: str) -> float | None:
        return self._ticks.get(key)

    async def fired(self, key: str, tick: float) -> None:
        self._ticks[key] = tick


class FileScheduleState:
    """The ticks in a JSON file, rewritten atomically (and fsynced) after every firing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ticks: dict[str, float] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self._ticks = {str(k): float(v) for k, v in data.get("lastFired", {}).items()}
            except (ValueError, AttributeError) as err:
                log.warning("%s is unreadable (%s): schedules start afresh", path, err)

    def last(self, key: str) -> float | None:
        return self._ticks.get(key)

    async def fired(self, key: str, tick: float) -> None:
        self._ticks[key] = tick
        await asyncio.to_thread(self._save, dict(self._ticks))

    def _save(self, ticks: dict[str, float]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"lastFired": ticks}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)


@dataclass
class Scheduled:
    """One schedule and where it stands."""

    declared: Declared
    event: ScheduleEvent
    expr: ScheduleExpression
    tz: ZoneInfo
    rule: str  # the rule's ARN
    next: datetime | None  # None: it never fires again
    last: datetime | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.declared.key


class Scheduler:
    def __init__(
        self,
        submit: Submit,
        state: ScheduleState,
        *,
        region: str,
        account: str,
        metrics: TriggerMetrics | None = None,
        grace: float = 60.0,
        clock: Callable[[], float] = time.time,
        holder: Holder | None = None,
    ) -> None:
        self.submit = submit
        self.state = state
        self.region = region
        self.account = account
        self.metrics = metrics or TriggerMetrics()
        self.grace = grace
        self.clock = clock
        self.holder = holder
        self.schedules: dict[str, Scheduled] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- what the router calls -----------------------------------------------------------

    def configure(self, declared: list[Declared]) -> None:
        """Serve these schedules from now on; a schedule that stays keeps its place."""
        now = self._now()
        fresh: dict[str, Scheduled] = {}
        for d in declared:
            event = d.event
            assert isinstance(event, ScheduleEvent)
            old = self.schedules.get(d.key)
            if old is not None and old.event == event:
                fresh[d.key] = old
                continue
            fresh[d.key] = self._plan(d, event, now)
        self.schedules = fresh
        self._changed.set()

    def replan(self) -> None:
        """Plan every schedule again from the state's ticks (this router has just taken
        the schedules over from another, whose ticks the state now holds)."""
        now = self._now()
        for key, s in list(self.schedules.items()):
            self.schedules[key] = self._plan(s.declared, s.event, now)
        self._changed.set()

    def _plan(self, d: Declared, event: ScheduleEvent, now: datetime) -> Scheduled:
        expr, tz = parse(event.schedule), time_zone(event.timezone)
        name = eventbridge.rule_name(d.function, d.alias, d.name)
        s = Scheduled(
            d, event, expr, tz, eventbridge.rule_arn(self.region, self.account, name), None
        )
        last = self.state.last(d.key)
        s.last = None if last is None else datetime.fromtimestamp(last, UTC)
        try:
            if s.last is None:
                s.next = next_tick(expr, now, tz)
                return s
            first = next_tick(expr, s.last, tz)
            if first > now or (now - first).total_seconds() < self.grace:
                s.next = first  # not due yet, or due just now (a restart across a tick)
            elif event.missed == "FireOnce":
                s.next = prev_tick(expr, now, tz) or first
                log.info(
                    "schedule %s: ticks missed since %s, firing the latest once", d.key, s.last
                )
            else:
                s.next = next_tick(expr, now, tz)
                log.info("schedule %s: ticks missed since %s skipped", d.key, s.last)
        except ValueError as err:
            s.next, s.error = None, str(err)
        return s

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="klambda-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the loop ------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def run_due(self) -> float:
        """Fire every schedule that is due; the seconds until the next one is."""
        if self.holder is not None and not self.holder.holding():
            return 1.0  # another router fires; look again soon, to take over in time
        now = self._now()
        failed = False
        for s in sorted(self.schedules.values(), key=lambda s: s.next or now):
            if s.next is None or s.next > now:
                continue
            if self.holder is not None and not self.holder.holding():
                break
            tick = s.next
            if (now - tick).total_seconds() >= self.grace:
                # the loop fell behind (a suspended machine, a clock change): as at start
                if s.event.missed == "Skip":
                    log.warning("schedule %s: tick %s missed, skipped", s.key, tick)
                    self._advance(s, now)
                    continue
                tick = prev_tick(s.expr, now, s.tz) or tick
            if await self._fire(s, tick):
                self._advance(s, tick)
            else:
                failed = True
        if failed:
            return 1.0
        pending = [s.next for s in self.schedules.values() if s.next is not None]
        if not pending:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, (min(pending) - self._now()).total_seconds()))

    def _advance(self, s: Scheduled, after: datetime) -> None:
        try:
            s.next = next_tick(s.expr, after, s.tz)
        except ValueError as err:
            s.next, s.error = None, str(err)

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            try:
                wait = await self.run_due()
            except Exception:
                log.exception("scheduler: firing failed")
                wait = 1.0
            with contextlib.suppress(TimeoutError):
                # a moment past the tick, so that the clock has reached it when we wake
                await asyncio.wait_for(self._changed.wait(), wait + 0.005)

    async def _fire(self, s: Scheduled, tick: datetime) -> bool:
        """Queue the tick's event and record the tick; False if it could not be queued (the
        next loop tries again, within the grace period)."""
        d, event = s.declared, s.event
        rid = eventbridge.event_id(s.key, tick)
        if event.input is not None:
            payload = event.input.encode()
        else:
            payload = json.dumps(
                eventbridge.scheduled_event(
                    event_id=rid,
                    tick=tick,
                    region=self.region,
                    account=self.account,
                    rule=s.rule,
                )
            ).encode()
        dl = event.dead_letter
        origin = Origin(
            trigger=d.name,
            type="Schedule",
            retry_attempts=event.retry_attempts,
            max_event_age_seconds=event.max_event_age_seconds,
            dead_letter_function=dl.function if dl else None,
            dead_letter_queue=dl.queue if dl else None,
        )
        labels = (d.function, d.alias or "", d.name)
        try:
            await self.submit(d.function, payload, qualifier=d.alias, request_id=rid, origin=origin)
        except Exception as err:
            self.metrics.failures.labels(*labels, "Schedule", "QueueError").inc()
            log.warning("schedule %s: tick %s not queued: %s", s.key, tick, err)
            s.error = f"tick {eventbridge.iso_time(tick)} not queued: {err}"
            return False
        await self.state.fired(s.key, tick.timestamp())
        s.last, s.error = tick, None
        self.metrics.events.labels(*labels, "Schedule").inc()
        self.metrics.schedule_delay.labels(*labels).observe(
            max(0.0, self.clock() - tick.timestamp())
        )
        return True
