"""A function's asynchronous invocation configuration: the `AsyncPolicy`.

Lambda's `PutFunctionEventInvokeConfig` plus the dead-letter config: how many times to
retry a function error (0-2), how old an event may get before it is given up, and where
failures and successes are sent. The dispatcher asks for a policy by function name each
time it handles an event, so a changed manifest applies to events already queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from klambda.api import limits
from klambda.api.function import Destination as SpecDestination
from klambda.api.function import FunctionSpec


@dataclass(frozen=True)
class Target:
    """Where a record goes: a function (invoked asynchronously) or a named queue."""

    function: str | None = None
    queue: str | None = None

    def __post_init__(self) -> None:
        if (self.function is None) == (self.queue is None):
            raise ValueError("a destination is exactly one of function, queue")

    @classmethod
    def of(cls, d: SpecDestination | None) -> Target | None:
        return None if d is None else cls(function=d.function, queue=d.queue)

    def __str__(self) -> str:
        return f"function:{self.function}" if self.function else f"queue:{self.queue}"


@dataclass(frozen=True)
class AsyncPolicy:
    retry_attempts: int = limits.RETRY_ATTEMPTS_DEFAULT
    max_event_age_seconds: float = limits.MAX_EVENT_AGE_DEFAULT_S
    dead_letter: Target | None = None
    on_success: Target | None = None
    on_failure: Target | None = None

    @classmethod
    def from_spec(cls, spec: FunctionSpec) -> AsyncPolicy:
        dest = spec.destinations
        return cls(
            retry_attempts=spec.retry_attempts,
            max_event_age_seconds=float(spec.max_event_age_seconds),
            dead_letter=Target.of(spec.dead_letter),
            on_success=Target.of(dest.on_success if dest else None),
            on_failure=Target.of(dest.on_failure if dest else None),
        )
