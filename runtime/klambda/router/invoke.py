"""The one invoke path: every entry point (gRPC, REST, async dispatcher, event sources)
calls `Invoker.invoke`, so admission, routing, cold starts, logs and metrics are the
same whoever asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from klambda import logformat
from klambda.api import limits
from klambda.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
    TooManyRequests,
)
from klambda.metrics import FunctionMetrics, Metrics
from klambda.queue import Dispatcher
from klambda.router.admission import SCALE_UP_LIMIT, ConcurrencyPools, ScaleUpLimiter
from klambda.router.registry import Registry, Target
from klambda.router.routing import parse_function_name
from klambda.settings import RouterSettings
from klambda.usage import UsageLedger
from klambda.worker.cgroups import Cgroups
from klambda.worker.environment import InitFailed, Outcome
from klambda.worker.logs import LogHub
from klambda.worker.pool import EnvironmentPool
from klambda.worker.zygote import Zygote

REQUEST_RESPONSE = "RequestResponse"
EVENT = "Event"
DRY_RUN = "DryRun"
INVOCATION_TYPES = (REQUEST_RESPONSE, EVENT, DRY_RUN)

ERROR_REASONS = {
    "error": "function_error",
    "timeout": "timeout",
    "init_error": "init_error",
}


class RemoteCold(Protocol):
    cold_start: bool
    init_ms: float


class RemoteExecutor(Protocol):
    """Runs invocations in worker pods (cluster mode): klambda.router.cluster.RemoteWorkers."""

    async def invoke(
        self, target: Target, request_id: str, payload: bytes, arn: str, tail: bool
    ) -> tuple[Outcome, RemoteCold]: ...

    async def close(self) -> None: ...


@dataclass
class InvokeResult:
    status_code: int
    payload: bytes
    request_id: str
    executed_version: str
    function_error: str | None = None
    log_tail: list[str] | None = None

    def log_result(self) -> str:
        """The last 4 KB of the invocation's log, as Lambda's X-Amz-Log-Result carries."""
        if not self.log_tail:
            return ""
        text = ("\n".join(self.log_tail) + "\n").encode()
        return text[-4096:].decode("utf-8", "ignore")


class Invoker:
    def __init__(
        self,
        registry: Registry,
        settings: RouterSettings,
        logs: LogHub,
        metrics: Metrics,
        zygotes: dict[str, Zygote],
        cgroups: Cgroups,
        pools: ConcurrencyPools | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.logs = logs
        self.metrics = metrics
        self.zygotes = zygotes
        self.cgroups = cgroups
        self.pools = pools or ConcurrencyPools(
            settings.account_concurrency, settings.unreserved_min
        )
        self.env_pools: dict[str, EnvironmentPool] = {}
        self.scale_up = ScaleUpLimiter(settings.scale_up_per_minute, time.monotonic())
        self._concurrent = metrics.concurrent
        self._concurrent_of: dict[str, Any] = {}
        # read at scrape time rather than set on every invocation
        metrics.account_concurrent.set_function(lambda: self.pools.account_in_flight)
        metrics.unreserved_concurrent.set_function(lambda: self.pools.unreserved_in_flight)
        self._background: set[asyncio.Future[Any]] = set()
        self.usage = UsageLedger()
        self._timeouts_known: set[str] = set()
        # the async queue's dispatcher (klambda.queue), when the router has a queue
        self.dispatcher: Dispatcher | None = None
        # cluster mode: environments live in worker pods (klambda.router.cluster)
        self.remote: RemoteExecutor | None = None

    def spawn_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        fut = asyncio.ensure_future(coro)
        self._background.add(fut)
        fut.add_done_callback(self._background.discard)

    def pool_for(self, target: Target) -> EnvironmentPool:
        pool = self.env_pools.get(target.key)
        if pool is None:
            pool = self.env_pools[target.key] = EnvironmentPool(
                target.config,
                self.zygotes[target.config.runtime],
                self.logs,
                self.cgroups,
                cpu_limits=self.settings.cpu_limits,
            )
        return pool

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = REQUEST_RESPONSE,
        log_tail: bool = False,
        request_id: str | None = None,
    ) -> InvokeResult:
        if invocation_type not in INVOCATION_TYPES:
            raise InvalidParameterValue(
                f"InvocationType must be one of {', '.join(INVOCATION_TYPES)}, "
                f"got {invocation_type!r}"
            )
        if len(payload) > limits.SYNC_PAYLOAD_MAX_BYTES:
            raise RequestTooLarge(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                f"InvokeFunction operation (got {len(payload)} bytes)"
            )
        target, alias = self.registry.resolve(name, qualifier)
        cfg = target.config
        if invocation_type == DRY_RUN:
            return InvokeResult(204, b"", "", cfg.version)
        if invocation_type == EVENT:
            if self.dispatcher is None:
                raise InvalidParameterValue("this router has no queue for asynchronous invocation")
            if len(payload) <= limits.ASYNC_PAYLOAD_MAX_BYTES:
                # refused now, as Lambda does, rather than dead-lettered later; larger
                # payloads are refused by submit() with the limit named
                try:
                    json.loads(payload or b"{}")
                except ValueError as err:
                    raise InvalidRequestContent(
                        f"Could not parse request body into json: {err}"
                    ) from None
            _fn, q = parse_function_name(name, qualifier)
            event = await self.dispatcher.submit(cfg.function, payload, qualifier=q)
            return InvokeResult(202, b"", event.request_id, cfg.version)
        return await self._invoke_now(target, alias, payload, log_tail, request_id, invocation_type)

    async def invoke_event(
        self, function: str, payload: bytes, *, qualifier: str | None, request_id: str
    ) -> InvokeResult:
        """One attempt of an async event, for the dispatcher: the sync path, labelled Event."""
        target, alias = self.registry.resolve(function, qualifier)
        return await self._invoke_now(target, alias, payload, False, request_id, EVENT)

    async def _invoke_now(
        self,
        target: Target,
        alias: str,
        payload: bytes,
        log_tail: bool,
        request_id: str | None,
        invocation_type: str,
    ) -> InvokeResult:
        cfg = target.config
        if target.key not in self._timeouts_known:
            self._timeouts_known.add(target.key)
            self.metrics.function_timeout.labels(cfg.function, cfg.version).set(cfg.timeout_s)
        rid = request_id or str(uuid.uuid4())
        fn = cfg.function
        pools = self.pools
        reason = pools.try_acquire(fn)
        if reason is not None:
            self.metrics.throttles.labels(fn, reason).inc()
            raise TooManyRequests("Rate Exceeded.", reason)
        gauge = self._concurrent_of.get(fn)
        if gauge is None:
            gauge = self._concurrent_of[fn] = self._concurrent.labels(fn)
        gauge.inc()
        try:
            out = await self._run(target, alias, rid, payload, log_tail, invocation_type)
        finally:
            gauge.dec()
            pools.release(fn)
        if out.status == "invalid":
            raise InvalidRequestContent(out.body.decode())
        return InvokeResult(
            200,
            out.body,
            rid,
            out.version,
            None if out.status == "ok" else "Unhandled",
            out.log_tail,
        )

    async def _run(
        self, target: Target, alias: str, rid: str, payload: bytes, tail: bool, itype: str
    ) -> Outcome:
        cfg = target.config
        fm = self.metrics.of(cfg.function, cfg.version, alias, itype)
        if self.remote is not None:
            qualified = alias or (cfg.version if cfg.version != limits.LATEST else "")
            out, resp = await self.remote.invoke(
                target, rid, payload, _arn(cfg.arn, qualified), tail
            )
            if resp.cold_start:
                fm.cold_start(resp.init_ms)
            self._account(fm, cfg.function, cfg.version, cfg.memory_mb, alias, out)
            return out
        pool = self.pool_for(target)
        env = pool.take_idle()
        if env is None:
            if not self.scale_up.try_take(time.monotonic()):
                self.metrics.throttles.labels(cfg.function, SCALE_UP_LIMIT).inc()
                raise TooManyRequests("Rate Exceeded.", SCALE_UP_LIMIT)
            try:
                env = await pool.start()
            except InitFailed as err:
                out = self._init_failed(target, rid, err, tail)
                fm.cold_start(err.init_ms)
                gbs = fm.invoked(False, 0.0, cfg.memory_mb, 0, "init_error")
                self.usage.record(time.time(), (cfg.function, cfg.version, alias), gbs, True)
                return out
            fm.cold_start(env.init_ms)
        if pool.provisioned_target:
            self._provisioned_gauges(pool)
            if not env.provisioned:
                fm.spillover.inc()
        try:
            qualified = alias or (cfg.version if cfg.version != limits.LATEST else "")
            out = await env.invoke(rid, payload, invoked_arn=_arn(cfg.arn, qualified), tail=tail)
        finally:
            pool.release(env)
            if pool.provisioned_target:
                self._provisioned_gauges(pool)
        self._account(fm, cfg.function, cfg.version, cfg.memory_mb, alias, out)
        return out

    def _account(
        self,
        fm: FunctionMetrics,
        function: str,
        version: str,
        memory_mb: int,
        alias: str,
        out: Outcome,
    ) -> None:
        """Metrics and the usage ledger for one finished invocation."""
        if out.status == "invalid":
            return
        reason = None
        if out.status != "ok":
            reason = ERROR_REASONS.get(out.status) or (
                "out_of_memory" if out.error_type == "Runtime.OutOfMemory" else "exit"
            )
        ok = out.status == "ok"
        gbs = fm.invoked(ok, out.duration_ms, memory_mb, out.max_memory_mb, reason)
        self.usage.record(time.time(), (function, version, alias), gbs, not ok)

    def _provisioned_gauges(self, pool: EnvironmentPool) -> None:
        cfg, m = pool.cfg, self.metrics
        busy = pool.busy_provisioned
        m.provisioned_concurrent.labels(cfg.function, cfg.version).set(busy)
        m.provisioned_configured.labels(cfg.function, cfg.version).set(pool.provisioned_target)
        m.provisioned_utilization.labels(cfg.function, cfg.version).set(
            busy / pool.provisioned_target if pool.provisioned_target else 0.0
        )

    def _init_failed(self, target: Target, rid: str, err: InitFailed, tail: bool) -> Outcome:
        cfg = target.config
        lines = [
            logformat.start(rid, cfg.version),
            logformat.end(rid),
            logformat.report(
                rid, err.init_ms, cfg.memory_mb, 0, err.init_ms, "error", err.error_type
            ),
        ]
        stream = err.stream
        for line in lines:
            self.logs.write(cfg.function, stream, line)
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
            lines if tail else None,
        )

    async def reclaim_idle(self) -> None:
        for pool in list(self.env_pools.values()):
            await pool.reclaim(self.settings.keep_warm_seconds)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.env_pools.values()))
        for z in self.zygotes.values():
            with contextlib.suppress(Exception):
                await z.stop()


def _arn(base: str, alias: str) -> str:
    return f"{base}:{alias}" if alias else base
