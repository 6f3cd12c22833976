"""A function's asynchronous invocation configuration: the `AsyncPolicy`.

Lambda's `PutFunctionEventInvokeConfig` plus the dead-letter config: how many times to
retry a function error (0-2), how old an event may get before it is given up, and where
failures and successes are sent. The dispatcher asks for a policy by function name each
time it handles an event, so a changed manifest applies to events already queued.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from klambda.api import limits
from klambda.api.function import Destination as SpecDestination
from klambda.api.function import FunctionSpec
from klambda.queue.event import Origin


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

    def for_origin(self, origin: Origin | None) -> AsyncPolicy:
        """The policy of a trigger's events: the trigger's own retry attempts, maximum age
        and dead letter where it sets them, the function's elsewhere."""
        if origin is None:
            return self
        dead_letter = self.dead_letter
        if origin.dead_letter_function or origin.dead_letter_queue:
            dead_letter = Target(origin.dead_letter_function, origin.dead_letter_queue)
        return replace(
            self,
            retry_attempts=self.retry_attempts
            if origin.retry_attempts is None
            else origin.retry_attempts,
            max_event_age_seconds=self.max_event_age_seconds
            if origin.max_event_age_seconds is None
            else origin.max_event_age_seconds,
            dead_letter=dead_letter,
        )
