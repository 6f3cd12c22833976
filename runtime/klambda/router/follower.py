"""A follower: one more router process of `klambda up --processes N`, serving invokes.

The leader (the process `klambda up` started, klambda.router.server.Router) owns
everything that must happen once: the control API and its writes, the async queue and its
dispatcher, schedules, event source pollers, the log store, metrics history and the
autoscaler. A follower serves synchronous invokes on the same gRPC and REST ports
(SO_REUSEPORT: the kernel hands each new connection to one of the processes) with
environments of its own, forked from its own zygotes, and passes on the rest:

- admission is the shared file's (klambda.router.sharedpools): the same throttling as one
  process, whichever process a call lands on;
- its registry is read from the same manifests and state folder as the leader's, and read
  again when the leader bumps the shared generation (after any change through the API);
- asynchronous invocations of functions it knows are accepted here: the event is made
  durable in the same queue as the leader's (the same SQLite file, or the same JetStream
  stream) and answered 202, and the leader's dispatcher runs it (SQLite rings the
  receiver's wake-up FIFO, so the leader leases it at once rather than at its next poll);
- what it cannot serve goes to the leader's private loopback ports, request as received
  (headers and signature included, so access control is the leader's too): functions or
  qualifiers it does not know (a power-tuning copy, or a function created a moment ago),
  and every other REST path.

A follower stops with its leader: it checks every second that its parent is still the
leader, and exits when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from aiohttp import web

from klambda.api import limits
from klambda.api.limits import LATEST
from klambda.api.manifest import ManifestError
from klambda.api.manifest import load as load_manifests
from klambda.errors import InvalidParameterValue
from klambda.metrics import Metrics
from klambda.proto import invoker_pb2
from klambda.queue import AsyncMetrics, Intake, Queue, local_queue_url, open_queue
from klambda.router.access import Access, CredentialsFile, LocalAccess
from klambda.router.dbproxies import inject
from klambda.router.executor import LocalEnvironments, reclaim_forever
from klambda.router.grpc_api import OPTIONS, InvokerService, Unreadable, build_server
from klambda.router.http_api.app import access_check, lambda_errors
from klambda.router.http_api.invoke import InvokeApi
from klambda.router.http_api.params import API
from klambda.router.invoke import Invoker
from klambda.router.local import load_registry
from klambda.router.registry import Registry
from klambda.router.routing import parse_function_name
from klambda.router.sharedpools import SharedPools
from klambda.settings import RouterSettings
from klambda.shutdown import stop_requested
from klambda.worker.cgroups import Cgroups
from klambda.worker.logs import LogHub
from klambda.worker.sandbox import Sandbox

log = logging.getLogger("klambda.router")

ADMISSION_FILE = "admission.map"
SPEC_VARIABLE = "KLAMBDA_FOLLOWER"
# not passed on by the proxy: they describe one connection, not the request
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    )
)
# gRPC metadata that the channel sets itself
GRPC_OWN = frozenset(("user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-timeout"))


@dataclass
class FollowerSpec:
    """What the leader hands a follower (JSON in KLAMBDA_FOLLOWER)."""

    row: int
    functions_dir: str
    settings: dict[str, Any]  # RouterSettings.to_json(), with the ports the leader bound
    leader_http: str  # http://127.0.0.1:PORT, the leader's private site
    leader_grpc: str  # 127.0.0.1:PORT
    leader_pid: int
    ready_fd: int

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> FollowerSpec:
        return cls(**json.loads(text))


def knows(registry: Registry, name: str, qualifier: str | None) -> bool:
    """Whether this registry can answer for `name` (and `qualifier`): a function or version
    it does not have is the leader's to answer. A name Lambda would refuse is answered here
    (the same refusal)."""
    if qualifier is None and name in registry.functions:
        return True
    try:
        fn, q = parse_function_name(name, qualifier)
    except InvalidParameterValue:
        return True
    entry = registry.functions.get(fn)
    if entry is None:
        return False
    return q is None or q == LATEST or q in entry.targets or q in entry.aliases or q in entry.tuning


class Follower:
    def __init__(self, spec: FollowerSpec) -> None:
        self.spec = spec
        self.settings = RouterSettings.from_json(spec.settings)
        self.functions_dir = Path(spec.functions_dir)
        assert self.settings.state_dir is not None
        self.state_dir = self.settings.state_dir
        self.pools = SharedPools(self.state_dir / ADMISSION_FILE, spec.row)
        self.generation = -1
        self.invoker: Invoker | None = None
        self.environments: LocalEnvironments | None = None
        self.sandbox: Sandbox | None = None
        self.cgroups: Cgroups | None = None
        self.grpc_server: grpc.aio.Server | None = None
        self.http_runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None
        self.channel: grpc.aio.Channel | None = None
        self.queue: Queue | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _registry(self) -> Registry:
        self.generation = self.pools.generation  # read before: a change during the load shows
        registry = load_registry(self.functions_dir, self.state_dir, self.settings, self.pools)
        inject(registry, load_manifests(self.functions_dir, allow_empty=True).proxies)
        if self.sandbox is not None and self.sandbox.enabled:
            self.sandbox.assign(registry.functions)
        return registry

    def load(self) -> Invoker:
        s = self.settings
        self.cgroups = Cgroups(enabled=s.cgroups)
        self.sandbox = Sandbox(self.state_dir, enabled=s.sandbox and os.geteuid() == 0)
        registry = self._registry()
        # this process's own log files, in a folder the leader's log store reads too
        logs = LogHub(
            self.state_dir / "logs" / f"router-{self.spec.row}",
            sys.stdout if s.echo_logs else None,
            max_bytes=s.log_max_mb * 1024 * 1024,
        )
        self.environments = LocalEnvironments(
            s, logs, self.cgroups, self.sandbox, scale_up=self.pools.scale_up(), kill_uids=False
        )
        metrics = Metrics(prices=s.prices)
        # events are accepted into the leader's queue; its dispatcher runs them
        self.queue = open_queue(s.queue_url or local_queue_url(self.state_dir))
        intake = Intake(self.queue, AsyncMetrics(metrics.registry))
        self.invoker = Invoker(
            registry, s, metrics, self.environments, self.pools, logs, intake=intake
        )
        return self.invoker

    def refresh(self) -> None:
        """Read the registry again if the leader changed it (checked at every invoke: one
        read of the shared file)."""
        if self.pools.generation == self.generation:
            return
        assert self.invoker is not None
        assert self.environments is not None
        old = self.invoker.registry
        try:
            new = self._registry()
        except (ManifestError, ValueError, OSError) as err:
            log.warning("router process %d: functions not reloaded: %s", self.spec.row, err)
            return
        self.invoker.registry = new
        # environments of a version whose configuration changed (new code of $LATEST, say)
        # are not used again
        now = {t.key: t.config for e in new.functions.values() for t in _targets(e)}
        for e in old.functions.values():
            for t in _targets(e):
                if now.get(t.key) != t.config:
                    task = asyncio.ensure_future(self.environments.discard(t))
                    self._tasks.append(task)

    async def start(self) -> None:
        invoker = self.invoker or self.load()
        s = self.settings
        assert self.environments is not None
        await self.environments.start(
            {e.latest.config.runtime for e in invoker.registry.functions.values()}
        )
        assert self.queue is not None
        await self.queue.open()
        self.session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        )
        self.channel = grpc.aio.insecure_channel(self.spec.leader_grpc, options=OPTIONS)
        access = LocalAccess(CredentialsFile(Path(s.auth))) if s.auth else None
        service = FollowerService(self, access)
        self.grpc_server, port = build_server(
            invoker, s.grpc_host, s.grpc_port, access, service=service, reuse_port=True
        )
        if port == 0:
            raise OSError(f"cannot listen for gRPC on {s.grpc_host}:{s.grpc_port}")
        await self.grpc_server.start()
        self.http_runner = web.AppRunner(self._app(access), access_log=None)
        await self.http_runner.setup()
        await web.TCPSite(self.http_runner, s.http_host, s.http_port, reuse_port=True).start()
        self._tasks.append(asyncio.create_task(self._reap(), name="reaper"))

    def _app(self, access: Access | None) -> web.Application:
        middlewares = [lambda_errors] + ([access_check(access)] if access is not None else [])
        app = web.Application(
            middlewares=middlewares, client_max_size=limits.SYNC_PAYLOAD_MAX_BYTES + 64 * 1024
        )
        assert self.invoker is not None
        local = InvokeApi(self.invoker)

        async def invoke(request: web.Request) -> web.StreamResponse:
            self.refresh()
            assert self.invoker is not None
            if not knows(
                self.invoker.registry, request.match_info["name"], request.query.get("Qualifier")
            ):
                return await self.proxy(request)
            return await local.invoke(request)

        app.router.add_post(API + "/{name}/invocations", invoke)
        app.router.add_route("*", "/{tail:.*}", self.proxy)
        return app

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """The request, as received, to the leader; its answer back as it comes (a
        response stream, `logs --follow`)."""
        assert self.session is not None
        body = await request.read() if request.can_read_body else None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self.session.request(
            request.method,
            self.spec.leader_http + request.raw_path,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            for k, v in answer.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    response.headers.add(k, v)
            if answer.content_length is not None:
                response.content_length = answer.content_length
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def forward(
        self, request: invoker_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> invoker_pb2.InvokeResponse:
        """A gRPC invoke the leader answers, with the caller's metadata (its token)."""
        assert self.channel is not None
        call = self.channel.unary_unary(
            "/klambda.v1.Invoker/Invoke",
            request_serializer=invoker_pb2.InvokeRequest.SerializeToString,
            response_deserializer=invoker_pb2.InvokeResponse.FromString,
        )
        metadata = tuple(
            (k, v)
            for k, v in context.invocation_metadata() or ()
            if not k.startswith(":") and k not in GRPC_OWN
        )
        try:
            answer: invoker_pb2.InvokeResponse = await call(
                request, metadata=metadata, timeout=context.time_remaining()
            )
            return answer
        except grpc.aio.AioRpcError as err:
            context.set_trailing_metadata(tuple(err.trailing_metadata() or ()))
            await context.abort(err.code(), err.details() or "")
            raise  # abort raises

    async def _reap(self) -> None:
        assert self.invoker is not None
        await reclaim_forever(self.invoker.executor, self.settings.keep_warm_seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=1.0)
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.session is not None:
            await self.session.close()
        if self.channel is not None:
            await self.channel.close()
        if self.invoker is not None:
            await self.invoker.close()
            self.invoker.logs.close()
        if self.queue is not None:
            await self.queue.close()
        if self.cgroups is not None:
            self.cgroups.close()
        self.pools.close()


def _targets(entry: Any) -> list[Any]:
    return [entry.latest, *entry.targets.values(), *entry.tuning.values()]


class FollowerService(InvokerService):
    """klambda.v1.Invoker in a follower: invokes of what it knows here, the rest at the
    leader's."""

    def __init__(self, follower: Follower, access: Access | None) -> None:
        assert follower.invoker is not None
        super().__init__(follower.invoker, access)
        self.follower = follower

    async def Invoke(
        self,
        request: invoker_pb2.InvokeRequest | Unreadable,
        context: grpc.aio.ServicerContext,
    ) -> invoker_pb2.InvokeResponse:
        if isinstance(request, invoker_pb2.InvokeRequest):
            self.follower.refresh()
            if not knows(self.invoker.registry, request.function_name, request.qualifier or None):
                return await self.follower.forward(request, context)
        return await super().Invoke(request, context)


async def serve(spec: FollowerSpec) -> None:
    follower = Follower(spec)
    stopping = stop_requested()
    try:
        await follower.start()
    except BaseException:
        await follower.stop()
        raise
    os.write(spec.ready_fd, b"ready\n")
    os.close(spec.ready_fd)

    async def leader_gone() -> None:
        while os.getppid() == spec.leader_pid:  # noqa: ASYNC110 - no event says it
            await asyncio.sleep(1.0)
        log.warning("router process %d: the leader is gone; stopping", spec.row)
        stopping.set()

    watch = asyncio.create_task(leader_gone())
    await stopping.wait()
    watch.cancel()
    await follower.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    spec = FollowerSpec.from_json(os.environ.pop(SPEC_VARIABLE))
    asyncio.run(serve(spec))


if __name__ == "__main__":
    main()
