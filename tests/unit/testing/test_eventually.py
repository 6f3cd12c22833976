"""`eventually` and `eventually_async`: what counts as done, not yet, and given up, and
what the failure says. Timeouts of 0 try exactly once, so most cases never sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from klambda.testing import StopWaiting, eventually, eventually_async

NOPE = ValueError("nope")
GONE = StopWaiting("the router exited with 2")


def script(*steps: Any) -> Callable[[], Any]:
    """A check that gives `steps` in turn: a value is returned, an exception raised."""
    queue = list(steps)

    def check() -> Any:
        step = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(step, BaseException):
            raise step
        return step

    return check


def async_script(*steps: Any) -> Callable[[], Any]:
    sync = script(*steps)

    async def check() -> Any:
        return sync()

    return check


DONE = [
    # (steps, returned)
    ((True,), True),
    (("ok",), "ok"),
    ((0, None, "", [], "ok"), "ok"),  # falsy values are "not yet"
    ((NOPE, AssertionError("no"), 5), 5),  # so are exceptions
    (([], [1, 2]), [1, 2]),  # the truthy value itself comes back
]


@pytest.mark.parametrize(("steps", "returned"), DONE)
def test_returns_the_first_truthy_value(steps: Iterable[Any], returned: Any) -> None:
    assert eventually(script(*steps), "it", interval=0) == returned


@pytest.mark.parametrize(("steps", "returned"), DONE)
async def test_async_returns_the_first_truthy_value(steps: Iterable[Any], returned: Any) -> None:
    assert await eventually_async(script(*steps), "it", interval=0) == returned
    assert await eventually_async(async_script(*steps), "it", interval=0) == returned


FAILED = [
    # (steps, the message says)
    ((False,), "timed out after 0s waiting for the DLQ to hold 1 event (1 tries); last value:"),
    ((None,), "last value: None"),
    ((0,), "last value: 0"),
    ((NOPE,), "(1 tries); last exception: ValueError: nope"),
]


@pytest.mark.parametrize(("steps", "message"), FAILED)
def test_a_timeout_says_what_it_waited_for_and_the_last_outcome(
    steps: Iterable[Any], message: str
) -> None:
    with pytest.raises(AssertionError) as err:
        eventually(script(*steps), "the DLQ to hold 1 event", timeout=0)
    assert message in str(err.value)


@pytest.mark.parametrize(("steps", "message"), FAILED)
async def test_async_timeout_says_what_it_waited_for_and_the_last_outcome(
    steps: Iterable[Any], message: str
) -> None:
    with pytest.raises(AssertionError) as err:
        await eventually_async(async_script(*steps), "the DLQ to hold 1 event", timeout=0)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("steps", "message"),
    [((NOPE, False), "last value: False"), ((False, NOPE), "last exception: ValueError: nope")],
)
def test_the_last_outcome_is_shown_not_the_first(steps: Iterable[Any], message: str) -> None:
    with pytest.raises(AssertionError) as err:
        eventually(script(*steps), "it", timeout=0.01, interval=0)
    assert message in str(err.value)


def test_the_last_exception_is_the_cause() -> None:
    with pytest.raises(AssertionError) as err:
        eventually(script(NOPE), "it", timeout=0)
    assert err.value.__cause__ is NOPE


def test_a_long_last_value_is_cut() -> None:
    with pytest.raises(AssertionError) as err:
        eventually(lambda: "x" * 10_000 == "", "it", timeout=0)
    assert len(str(err.value)) < 300
    with pytest.raises(AssertionError) as err:
        eventually(script(ValueError("y" * 10_000)), "it", timeout=0)
    assert str(err.value).endswith("y [...]")
    assert len(str(err.value)) < 2200


def test_stop_waiting_ends_the_wait_at_once() -> None:
    calls: list[float] = []

    def check() -> bool:
        calls.append(time.monotonic())
        raise GONE

    with pytest.raises(AssertionError, match=r"gave up waiting for the router after .*s: the "):
        eventually(check, "the router", timeout=60)
    assert len(calls) == 1


async def test_async_stop_waiting_ends_the_wait_at_once() -> None:
    with pytest.raises(AssertionError, match="gave up waiting for the router"):
        await eventually_async(async_script(False, GONE), "the router", timeout=60, interval=0)


def test_what_is_not_an_exception_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        eventually(script(KeyboardInterrupt()), "it", timeout=60)


def test_polls_until_the_timeout_then_fails() -> None:
    calls = []
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0\.2s"):
        eventually(lambda: calls.append(1), "it", timeout=0.2, interval=0.05)
    assert time.monotonic() - t0 >= 0.2
    assert len(calls) >= 3  # one at the start, some between, one at the deadline


async def test_async_waits_let_the_loop_run() -> None:
    ticks: list[int] = []

    async def check() -> bool:
        return len(ticks) >= 3

    async def tick() -> None:
        while len(ticks) < 3:
            ticks.append(1)
            await asyncio.sleep(0)

    task = asyncio.create_task(tick())
    assert await eventually_async(check, "the ticks", timeout=5, interval=0.001)
    await task


@pytest.mark.parametrize(("timeout", "interval"), [(-1, 0.05), (1, -0.1)])
def test_negative_times_are_refused(timeout: float, interval: float) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        eventually(lambda: True, "it", timeout=timeout, interval=interval)
