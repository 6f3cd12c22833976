"""When to try an asynchronous event again: the `RetrySchedule`, pure arithmetic.

Lambda retries a function error twice, about one minute and then about two minutes after
the failure, and each retry counts against `retryAttempts`. Throttles and service errors
(the function never ran) are retried without counting, from one second after the first
refusal, doubling, to at most five minutes apart, until the event reaches its maximum age.
The bases are parameters so that tests can run the same schedule in milliseconds.

Jitter spreads retries of events that failed together; the random number is an argument
(0.5 means none), so the schedule stays a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrySchedule:
    error_base: float = 60.0
    throttle_base: float = 1.0
    throttle_cap: float = 300.0
    jitter: float = 0.1
    """Fraction of the delay added or taken away at random (0.1: within +-10 %)."""

    def error_delay(self, attempt: int, rnd: float = 0.5) -> float:
        """Delay before retry number `attempt` (1, 2, ...) of a function error."""
        if attempt < 1:
            raise ValueError(f"retry numbers start at 1, got {attempt}")
        return self._jittered(self.error_base * 2 ** (attempt - 1), rnd)

    def throttle_delay(self, throttles: int, rnd: float = 0.5) -> float:
        """Delay after the `throttles`-th refusal (1, 2, ...) before the next try."""
        if throttles < 1:
            raise ValueError(f"throttle counts start at 1, got {throttles}")
        # Cap the exponent too: 2**n for a six-hour stream of refusals stays small.
        raw = self.throttle_base * 2 ** min(throttles - 1, 62)
        return self._jittered(min(self.throttle_cap, raw), rnd)

    def _jittered(self, delay: float, rnd: float) -> float:
        return max(0.0, delay * (1.0 + self.jitter * (2.0 * rnd - 1.0)))
