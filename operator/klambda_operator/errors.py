"""Why a resource cannot be realised, in words a `kubectl describe` reader acts on.

    Failure            the object as written cannot run: state Failed, a Warning Event,
                       tried again at the next resync (the cause may be fixed elsewhere,
                       e.g. a missing ConfigMap created later)

Errors of the API server itself (`lightkube.ApiError`: conflicts, timeouts) are not
Failures: they propagate to kopf, which retries the handler with backoff.
"""

from __future__ import annotations


class Failure(Exception):
    """`reason` is a CamelCase condition reason; `message` names the field or object;
    `condition` the condition type, besides Ready, that the failure sets False."""

    def __init__(self, reason: str, message: str, condition: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.condition = condition
