"""Running invocations of one function version in its environments: the half of the
execution seam that local mode's router and a worker pod share.

A warm environment is used when one is idle (provisioned ones first); otherwise one is
started (a cold start) if `may_start` allows it, else `NoCapacity` is raised at once with
the reason, for the caller to throttle or try elsewhere. An init that fails writes the
invocation's START, END and REPORT lines to the environment's stream and ends as an
`init_error` outcome, wherever it ran.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from klambda import logformat
from klambda.invocation import Call, Outcome
from klambda.worker.environment import InitFailed
from klambda.worker.logs import LogHub
from klambda.worker.pool import Environment, EnvironmentPool


class NoCapacity(Exception):
    """No idle environment and none may be started; `reason` is Lambda's throttle reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _always() -> tuple[str, str] | None:
    return None


class VersionExecutor:
    def __init__(
        self,
        pool: EnvironmentPool,
        logs: LogHub,
        may_start: Callable[[], tuple[str, str] | None] = _always,
    ) -> None:
        self.pool = pool
        self.logs = logs
        # None when a new environment may start, else (throttle reason, message)
        self.may_start = may_start
        self._ahead: asyncio.Task[Environment] | None = None

    def start_ahead(self) -> None:
        """Start an environment now for the next call, which then waits for its init
        rather than starting one (a pool pod starts init as it is specialised, while the
        router's call is on its way). The call's REPORT carries the Init Duration."""
        if self._ahead is None:
            self._ahead = asyncio.ensure_future(self.pool.start())

    async def run(self, call: Call) -> Outcome:
        pool = self.pool
        env: Environment | None
        if self._ahead is not None:
            ahead, self._ahead = self._ahead, None
            try:
                env = await ahead
            except InitFailed as err:
                return self._init_failed(call, err)
        else:
            env = pool.take_idle()
        if env is None:
            refused = self.may_start()
            if refused is not None:
                raise NoCapacity(*refused)
            try:
                env = await pool.start()
            except InitFailed as err:
                return self._init_failed(call, err)
        try:
            out = await env.invoke(
                call.request_id,
                call.payload,
                invoked_arn=call.invoked_arn,
                tail=call.log_tail,
                trace_id=call.trace_id,
                stream=call.stream,
                phases=call.phases,
            )
        finally:
            pool.release(env)
        out.provisioned = env.provisioned
        return out

    def _init_failed(self, call: Call, err: InitFailed) -> Outcome:
        cfg = self.pool.cfg
        rid = call.request_id
        plat = logformat.platform(cfg.log_format, cfg.system_log_level)
        written = [
            plat.start(rid, cfg.version),
            plat.end(rid, "error", err.init_ms),
            plat.report(rid, err.init_ms, cfg.memory_mb, 0, err.init_ms, "error", err.error_type),
        ]
        lines = [line for line in written if line is not None]
        for line in lines:
            self.logs.write(cfg.function, err.stream, line, rid)
        self.logs.dirty()
        body = json.loads(err.body)
        body.setdefault("requestId", rid)
        return Outcome(
            "init_error",
            json.dumps(body).encode(),
            rid,
            cfg.version,
            err.init_ms,
            0,
            err.init_ms,
            err.error_type,
            lines if call.log_tail else None,
        )
