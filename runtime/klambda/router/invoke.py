"""The one invoke path: every entry point (gRPC, REST, async dispatcher, event sources)
calls `Invoker.invoke`, so admission, routing, cold starts, logs and metrics are the
same whoever asks.

A sync invocation: the REST or gRPC handler calls `invoke` -> checks of the request ->
`Registry.resolve` (qualifier, alias weights) -> `Admission.try_acquire` (a throttle
is a refusal, never a queue) -> `Executor.run` (klambda.router.executor: a local
environment or a worker pod; cold starts happen there) -> metrics and the usage ledger
from the `Outcome` -> `InvokeResult` back to the handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from klambda import ids, lineage
from klambda.api import limits
from klambda.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    RecursiveInvocation,
    RequestTooLarge,
    TooManyRequests,
)
from klambda.execution import FunctionConfig
from klambda.invocation import Call, Outcome, StreamSink
from klambda.metrics import FunctionMetrics, Metrics
from klambda.queue import Dispatcher, Intake
from klambda.router.admission import Admission
from klambda.router.executor import Executor, NoCapacity
from klambda.router.registry import Registry, Target
from klambda.router.routing import parsed_function_name
from klambda.settings import RouterSettings
from klambda.usage import UsageLedger
from klambda.worker.logs import LogHub

log = logging.getLogger("klambda.router")

REQUEST_RESPONSE = "RequestResponse"
EVENT = "Event"
DRY_RUN = "DryRun"
INVOCATION_TYPES = (REQUEST_RESPONSE, EVENT, DRY_RUN)

ERROR_REASONS = {
    "error": "function_error",
    "timeout": "timeout",
    "init_error": "init_error",
}


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
    """Admission, routing and accounting around one `Executor`; built whole by the router."""

    def __init__(
        self,
        registry: Registry,
        settings: RouterSettings,
        metrics: Metrics,
        executor: Executor,
        pools: Admission,
        logs: LogHub,
        dispatcher: Dispatcher | None = None,
        intake: Intake | None = None,
    ) -> None:
        self.registry = registry  # swapped whole when the cluster's objects change
        self.settings = settings
        self.metrics = metrics
        self.executor = executor
        self.pools = pools
        self.logs = logs
        self.dispatcher = dispatcher  # the async queue (klambda.queue), if the router has one
        # where InvocationType Event is accepted: the dispatcher's own, or (a router process
        # that does not dispatch) the queue alone
        self.intake = intake or (dispatcher.intake if dispatcher is not None else None)
        self.usage = UsageLedger()
        self._concurrent = metrics.concurrent
        self._concurrent_of: dict[str, Any] = {}
        # read at scrape time rather than set on every invocation
        metrics.account_concurrent.set_function(lambda: self.pools.account_in_flight)
        metrics.unreserved_concurrent.set_function(lambda: self.pools.unreserved_in_flight)
        self._timeouts_known: set[str] = set()
        self._left: set[asyncio.Task[None]] = set()  # invocations whose callers went away
        self._provisioned_known: set[str] = set()

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = REQUEST_RESPONSE,
        log_tail: bool = False,
        request_id: str | None = None,
        stream: StreamSink | None = None,
        trace: str | None = None,
    ) -> InvokeResult:
        """`stream`: a synchronous invocation's response goes there as it is produced.
        `trace`: the caller's X-Amzn-Trace-Id, which a handler's SDK sends (its hop count
        stops recursive loops: klambda.lineage)."""
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
            if self.intake is None:
                raise InvalidParameterValue("this router has no queue for asynchronous invocation")
            if len(payload) <= limits.ASYNC_PAYLOAD_MAX_BYTES:
                # refused now, as Lambda does, rather than dead-lettered later; larger
                # payloads are refused by submit() with the limit named
                try:
                    json.loads(payload or b"{}")
                except (ValueError, RecursionError) as err:
                    raise InvalidRequestContent(
                        f"Could not parse request body into json: {err}"
                    ) from None
            _fn, q = parsed_function_name(name, qualifier)
            # a loop is stopped when the event is run, as Lambda does: to the DLQ
            event = await self.intake.submit(
                cfg.function, payload, qualifier=q, trace=lineage.of_request(trace).header()
            )
            return InvokeResult(202, b"", event.request_id, cfg.version)
        hop = lineage.of_request(trace)
        self._check_loop(cfg, hop)
        return await self._invoke_now(
            target, alias, payload, log_tail, request_id, invocation_type, stream, hop
        )

    async def invoke_event(
        self,
        function: str,
        payload: bytes,
        *,
        qualifier: str | None,
        request_id: str,
        trace: str | None = None,
    ) -> InvokeResult:
        """One attempt of an async event, for the dispatcher: the sync path, labelled Event."""
        target, alias = self.registry.resolve(function, qualifier)
        hop = lineage.of_event(trace)
        self._check_loop(target.config, hop)
        return await self._invoke_now(target, alias, payload, False, request_id, EVENT, hop=hop)

    def _check_loop(self, cfg: FunctionConfig, hop: lineage.Trace) -> None:
        """RecursiveInvocation for the 16th hop of a chain, unless the function allows it."""
        if not hop.stopped or cfg.recursive_loop == "Allow":
            return
        self.metrics.recursive_dropped.labels(cfg.function).inc()
        log.warning(
            "Function %s: invocation stopped as hop %d of a recursive loop (trace root %s); "
            "set recursiveLoop: Allow if the loop is meant",
            cfg.function,
            hop.hops,
            hop.root,
        )
        raise RecursiveInvocation(
            "Lambda has detected your function being invoked in a recursive loop with other "
            "AWS resources and stopped your function's invocation."
        )

    async def _invoke_now(
        self,
        target: Target,
        alias: str,
        payload: bytes,
        log_tail: bool,
        request_id: str | None,
        invocation_type: str,
        stream: StreamSink | None = None,
        hop: lineage.Trace | None = None,
    ) -> InvokeResult:
        cfg = target.config
        if target.key not in self._timeouts_known:
            self._timeouts_known.add(target.key)
            # the version's first call, mostly a cold start: its metric children (~0.3 ms)
            # are made at the call's first wait, while its environment starts
            asyncio.get_running_loop().call_soon(self._first_call, target, alias, invocation_type)
        rid = request_id or ids.request_id()
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
        qualified = alias or (cfg.version if cfg.version != limits.LATEST else "")
        hop = hop or lineage.of_request(None)
        call = Call(rid, payload, _arn(cfg.arn, qualified), log_tail, hop.header(), stream=stream)
        # A caller that goes away (a client's deadline, a closed connection) does not stop
        # its invocation, as on Lambda: it runs to its end (its logs, metrics, billing) and
        # holds its concurrency until then, and its environment takes no other call
        # meanwhile (its next call would otherwise read this one's result). The invocation
        # is a task of its own that hands its outcome to the caller's future itself: a
        # cancelled caller cancels only that future (what asyncio.shield does, without its
        # second future and the turn of the loop that passes the result between them).
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        run = asyncio.ensure_future(
            self._run_for(answer, gauge, target, alias, call, invocation_type)
        )
        try:
            out = await answer
        except asyncio.CancelledError:
            self._left.add(run)  # referenced until it ends (the loop keeps weak ones only)
            run.add_done_callback(self._left.discard)
            raise
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

    async def _run_for(
        self,
        answer: asyncio.Future[Outcome],
        gauge: Any,
        target: Target,
        alias: str,
        call: Call,
        itype: str,
    ) -> None:
        """`_run`, its outcome or error handed to `answer` unless its caller went away;
        the concurrency is released when it ends, whoever waits."""
        try:
            out = await self._run(target, alias, call, itype)
        except asyncio.CancelledError:
            answer.cancel()
            raise
        except BaseException as err:
            if not answer.done():
                answer.set_exception(err)
            if not isinstance(err, Exception):
                raise
        else:
            if not answer.done():
                answer.set_result(out)
        finally:
            gauge.dec()
            self.pools.release(target.config.function)

    def _first_call(self, target: Target, alias: str, itype: str) -> None:
        cfg = target.config
        self.metrics.function_timeout.labels(cfg.function, cfg.version).set(cfg.timeout_s)
        self.metrics.of(cfg.function, cfg.version, alias, itype)

    async def _run(self, target: Target, alias: str, call: Call, itype: str) -> Outcome:
        cfg = target.config
        try:
            out = await self.executor.run(target, call)
        except NoCapacity as err:
            self.metrics.throttles.labels(cfg.function, err.reason).inc()
            raise TooManyRequests(str(err), err.reason) from None
        fm = self.metrics.of(cfg.function, cfg.version, alias, itype)
        if out.init_ms is not None:
            fm.cold_start(out.init_ms, out.duration_ms, out.phases)
        if not out.provisioned and self._has_provisioned(target):
            fm.spillover.inc()
        self._account(fm, cfg.function, cfg.version, cfg.memory_mb, alias, out)
        return out

    def _has_provisioned(self, target: Target) -> bool:
        """Whether the version has provisioned concurrency; its gauges are read at scrape
        time from the executor once it has."""
        if not self.executor.provisioned(target).configured:
            return False
        if target.key not in self._provisioned_known:
            self._provisioned_known.add(target.key)
            m, cfg, ex = self.metrics, target.config, self.executor
            m.provisioned_concurrent.labels(cfg.function, cfg.version).set_function(
                lambda: ex.provisioned(target).busy
            )
            m.provisioned_configured.labels(cfg.function, cfg.version).set_function(
                lambda: ex.provisioned(target).configured
            )

            def utilization() -> float:
                p = ex.provisioned(target)
                return p.busy / p.configured if p.configured else 0.0

            m.provisioned_utilization.labels(cfg.function, cfg.version).set_function(utilization)
        return True

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

    async def close(self) -> None:
        await self.executor.close()


def _arn(base: str, alias: str) -> str:
    return f"{base}:{alias}" if alias else base
