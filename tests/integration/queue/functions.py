"""Handler-like functions for the dispatcher tests, behind the invoke signature the router
gives the dispatcher.

A function here is `handler(event, request_id)`, run in-process: what it returns is the
response; what it raises becomes Lambda's error body (`errorType`, `errorMessage`,
`stackTrace`) with `FunctionError: Unhandled`, as the router reports a handler exception.
Throttles are what the router raises when concurrency is exhausted: `TooManyRequests`.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from klambda.api import limits
from klambda.errors import ResourceNotFound, TooManyRequests

Handler = Callable[[Any, str], Any]


@dataclass
class Outcome:
    payload: bytes
    function_error: str | None = None
    executed_version: str = limits.LATEST


@dataclass
class Call:
    function: str
    request_id: str
    event: Any
    qualifier: str | None


@dataclass
class Functions:
    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    """Invocations that ran the handler (not the throttled ones)."""
    throttled: list[Call] = field(default_factory=list)
    throttle_next: dict[str, int] = field(default_factory=dict)
    """Refuse the next N invocations of a function with a throttle."""
    throttle_always: set[str] = field(default_factory=set)
    delay: float = 0.0
    running: int = 0
    max_running: int = 0

    def add(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def calls_of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.function == name]

    async def __call__(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None,
        request_id: str,
        trace: str | None = None,
    ) -> Outcome:
        event = json.loads(payload) if payload else None
        call = Call(function, request_id, event, qualifier)
        if function not in self.handlers:
            raise ResourceNotFound(f"Function not found: {function}")
        if function in self.throttle_always or self.throttle_next.get(function, 0) > 0:
            self.throttle_next[function] = self.throttle_next.get(function, 0) - 1
            self.throttled.append(call)
            raise TooManyRequests(
                "Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.calls.append(call)
            try:
                result = self.handlers[function](event, request_id)
            except Exception as err:
                body = {
                    "errorMessage": str(err),
                    "errorType": type(err).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_tb(err.__traceback__),
                }
                return Outcome(json.dumps(body).encode(), "Unhandled")
            return Outcome(json.dumps(result).encode())
        finally:
            self.running -= 1


def failing_until(n: int, message: str = "boom") -> Handler:
    """A handler that raises ValueError on its first `n` calls for each request id."""
    seen: dict[str, int] = {}

    def handler(event: Any, request_id: str) -> Any:
        seen[request_id] = seen.get(request_id, 0) + 1
        if seen[request_id] <= n:
            raise ValueError(message)
        return {"ok": True, "event": event}

    return handler
