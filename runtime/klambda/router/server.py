"""Running the router: gRPC and HTTP servers, zygotes, and the idle-environment reaper.

`Router` owns every long-lived piece of a router process and starts and stops them in
order; `klambda up` and the tests use it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from klambda.api.logconfig import MetricFilter
from klambda.api.manifest import Manifests
from klambda.api.manifest import load as load_manifests
from klambda.logengine.client import LogEngine
from klambda.logengine.housekeeping import EngineMetricFilters, EngineRetention
from klambda.logstore import Ingester, LogStore
from klambda.logstore.metricfilters import MetricFilters
from klambda.logstore.retention import Retention
from klambda.metrics import Metrics
from klambda.queue import (
    AsyncMetrics,
    AsyncPolicy,
    Dispatcher,
    Queue,
    RetrySchedule,
    local_queue_url,
    open_queue,
)
from klambda.queue.streamstore import StreamStore
from klambda.queue.streamstore_jetstream import open_stream_store
from klambda.queue.streamstore_sqlite import SqliteStreamStore
from klambda.queue.workqueue import WorkQueues
from klambda.queue.workqueue_jetstream import open_work_queues
from klambda.queue.workqueue_sqlite import SqliteWorkQueues
from klambda.router.access import Access, CredentialsFile, KubernetesAccess, LocalAccess
from klambda.router.admission import Admission, ConcurrencyPools, ReservationError
from klambda.router.autoscaler import Autoscaler
from klambda.router.buckets import Buckets
from klambda.router.cluster import ClusterSource
from klambda.router.cluster_control import ClusterProvisioned
from klambda.router.cluster_functions import ClusterFunctions
from klambda.router.cluster_sources import ClusterMappings
from klambda.router.control import LocalControl
from klambda.router.dbchanges import PostgresPollers
from klambda.router.dbproxies import DatabaseProxies, inject
from klambda.router.executor import Executor, LocalEnvironments, reclaim_forever
from klambda.router.follower import ADMISSION_FILE, FollowerSpec
from klambda.router.grpc_api import build_server
from klambda.router.history import Sampler
from klambda.router.http_api import HttpApi
from klambda.router.http_api.workqueues import WorkQueueApi
from klambda.router.invoke import Invoker, InvokeResult
from klambda.router.local import load_registry
from klambda.router.pollers import Pollers
from klambda.router.processes import Followers
from klambda.router.registry import Registry, provisioned_by_version
from klambda.router.remote import WAIT_FOR_WORKER_S, RemoteWorkers
from klambda.router.schedule_lease import ScheduleLease
from klambda.router.scheduler import (
    FileScheduleState,
    Scheduler,
    ScheduleState,
)
from klambda.router.sharedpools import MAX_PROCESSES, SharedPools
from klambda.router.streams import StreamPollers
from klambda.router.topics import Topics
from klambda.router.triggers import Triggers, TriggerTable
from klambda.settings import RouterSettings
from klambda.source_metrics import SourceMetrics
from klambda.trigger_metrics import TriggerMetrics
from klambda.worker.cgroups import Cgroups
from klambda.worker.logs import LogHub
from klambda.worker.logship import Shipper
from klambda.worker.sandbox import Sandbox

log = logging.getLogger("klambda.router")
# cluster mode: how long the start waits for the first listing of functions and workers
CLUSTER_SYNC_WAIT_S = 30


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the new soft limit.

    Each environment holds two of the router's descriptors (its socket and its
    /proc/PID/stat), and each client connection one: a thousand environments do not fit
    in the soft limit of 1,024 that many shells start with. The zygote sets its
    environments' own limit back to Lambda's 1,024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError) as err:
        log.warning("open files limit stays %d: %s", soft, err)
        return soft
    return want


@dataclass
class ClusterOptions:
    namespace: str = "default"
    kubeconfig: str | None = None
    wait_for_worker_s: float = WAIT_FOR_WORKER_S


class Router:
    """A router process. Local mode (`functions_dir`) runs environments itself; cluster mode
    (`cluster`) learns everything from the API server and forwards to worker pods."""

    def __init__(
        self,
        settings: RouterSettings,
        functions_dir: Path | None = None,
        cluster: ClusterOptions | None = None,
    ) -> None:
        self.settings = settings
        self.functions_dir = functions_dir
        self.cluster = cluster
        self.source: ClusterSource | None = None
        self.workers = RemoteWorkers()
        self.environments: LocalEnvironments | None = None
        self.dispatcher: Dispatcher | None = None
        self._queue_open = False
        base = functions_dir / ".klambda" if functions_dir else Path(".klambda")
        self.state_dir = (settings.state_dir or base).resolve()
        self.invoker: Invoker | None = None
        self.grpc_server: grpc.aio.Server | None = None
        self.http_runner: web.AppRunner | None = None
        self.open_files_limit = 0  # the soft limit set at start
        self.grpc_port = 0
        self.http_port = 0
        self._reaper: asyncio.Task[None] | None = None
        self.cgroups: Cgroups | None = None
        self.sandbox: Sandbox | None = None
        self.access: Access | None = None
        self._warned_urls: set[str] = set()
        self.control: LocalControl | None = None
        self.queue: Queue | None = None
        # triggers (klambda.router.triggers): rebuilt from the registry on every change
        self.triggers = Triggers()
        self.trigger_metrics: TriggerMetrics | None = None
        self.scheduler: Scheduler | None = None
        self.schedule_lease: ScheduleLease | None = None
        self.logstore: LogStore | None = None
        # the cluster's log engine, when configured: queries go there (logs.engine.enabled)
        self.logengine = LogEngine(settings.log_engine_url) if settings.log_engine_url else None
        # local mode with a log engine ships its records there too, as worker pods do
        self.shipper: Shipper | None = None
        self.ingester: Ingester | None = None
        self.metric_filters: MetricFilters | None = None
        self.sampler: Sampler | None = None  # the console's history
        self.autoscaler: Autoscaler | None = None  # provisioned autoscaling
        # with a log engine and no store of its own: metric filters and retention there
        self._engine_jobs: list[asyncio.Task[None]] = []
        # event source mappings (klambda.router.pollers): local mode's queues and pollers
        self.sources = Manifests()
        self.work_queues: WorkQueues | None = None
        self.pollers: Pollers | None = None
        self.stream_store: StreamStore | None = None
        self.stream_pollers: StreamPollers | None = None
        self.postgres_pollers: PostgresPollers | None = None
        self.db_proxies: DatabaseProxies | None = None
        # cluster mode: the sources the API server declares, polled by the Lease's holder
        self.cluster_mappings: ClusterMappings | None = None
        # `--processes N` (local mode): the concurrency pools shared with N-1 followers,
        # which serve invokes on the same ports; this process is their leader
        self.shared: SharedPools | None = None
        self.followers: Followers | None = None
        self.private_grpc_port = 0
        self.private_http_port = 0

    @property
    def processes(self) -> int:
        return self.settings.processes if self.cluster is None else 1

    def load(self) -> Invoker:
        """Read and check everything and build the invoke path; raises ManifestError
        before anything starts."""
        s = self.settings
        metrics = Metrics(prices=s.prices)
        self.cgroups = Cgroups(enabled=s.cgroups)
        pools: Admission = ConcurrencyPools(s.account_concurrency, s.unreserved_min)
        executor: Executor
        if self.cluster is None:
            assert self.functions_dir is not None
            self.state_dir.mkdir(parents=True, exist_ok=True)
            # code snapshots, logs, the queue: the router's alone (environments reach
            # their own code through /var/task when sandboxed)
            self.state_dir.chmod(0o700)
            if not 1 <= s.processes <= MAX_PROCESSES:
                raise ValueError(f"processes: {s.processes} is not between 1 and {MAX_PROCESSES}")
            if s.processes > 1:
                pools = self.shared = SharedPools(
                    self.state_dir / ADMISSION_FILE,
                    0,
                    create=True,
                    account_limit=s.account_concurrency,
                    unreserved_min=s.unreserved_min,
                    scale_up_per_minute=s.scale_up_per_minute,
                    now=time.monotonic(),
                )
            registry = load_registry(self.functions_dir, self.state_dir, s, pools)
            self.sources = load_manifests(self.functions_dir, allow_empty=True)
            inject(registry, self.sources.proxies)
            self.db_proxies = DatabaseProxies(self.sources.proxies, self.state_dir)
            if s.log_engine_url:
                self.shipper = Shipper(LogEngine(s.log_engine_url), account=s.account_id)
            logs = LogHub(
                self.state_dir / "logs",
                sys.stdout if s.echo_logs else None,
                ship=self.shipper.add if self.shipper is not None else None,
                max_bytes=s.log_max_mb * 1024 * 1024,
            )
            self.sandbox = Sandbox(self.state_dir, enabled=s.sandbox and os.geteuid() == 0)
            if not s.sandbox:
                self.sandbox.reason = "turned off (--no-sandbox)"
            if self.sandbox.enabled:
                self.sandbox.assign(registry.functions)
            executor = self.environments = LocalEnvironments(
                s,
                logs,
                self.cgroups,
                self.sandbox,
                scale_up=self.shared.scale_up() if self.shared is not None else None,
            )
            if s.log_store:
                # the store's threads at nice 10: ingestion yields to invocations
                self.logstore = LogStore(
                    self.state_dir / "logs.duckdb",
                    threads=s.log_store_threads,
                    memory_mb=s.log_store_memory_mb,
                    nice=10,
                )
                self.metric_filters = MetricFilters(metrics.registry, self._metric_filters)
                retention = Retention(
                    self.logstore,
                    s.log_archive_dir or self.state_dir / "logs" / "archive",
                    self._retention,
                )
                self.ingester = Ingester(
                    self.logstore,
                    self.state_dir / "logs",
                    period=s.log_ingest_seconds,
                    after=[self.metric_filters.after_batch],
                    every=[(s.log_retention_check_seconds, retention.run)],
                    nice=10,
                )
        else:  # function logs are the worker pods' (kubectl logs)
            registry = Registry()
            logs = LogHub(None, None)
            executor = self.workers = RemoteWorkers(
                wait_for_worker_s=self.cluster.wait_for_worker_s,
                scale_up_per_minute=s.scale_up_per_minute,
                scale_up_burst=s.scale_up_burst,
            )
        self.trigger_metrics = TriggerMetrics(metrics.registry)
        self.dispatcher = self._dispatcher(metrics)
        self.invoker = Invoker(registry, s, metrics, executor, pools, logs, self.dispatcher)
        # local mode: on the async queue's NATS server when it has one, else in the state
        # folder; cluster mode: on the cluster's NATS JetStream, when the router has one
        work_queues = open_work_queues(s.queue_url)
        if self.cluster is None or work_queues is not None:
            self.work_queues = work_queues or SqliteWorkQueues(self.state_dir / "workqueues.db")
            source_metrics = SourceMetrics(metrics.registry)
            self.pollers = Pollers(
                self.invoker,
                self.work_queues,
                source_metrics,
                region=s.region,
                account=s.account_id,
            )
            self.stream_store = open_stream_store(s.queue_url) or SqliteStreamStore(
                self.state_dir / "streams.db"
            )
            self.postgres_pollers = PostgresPollers(
                self.invoker,
                self.work_queues,
                source_metrics,
                region=s.region,
                account=s.account_id,
            )
            self.stream_pollers = StreamPollers(
                self.invoker,
                self.stream_store,
                self.work_queues,
                source_metrics,
                region=s.region,
                account=s.account_id,
            )
        self.triggers.refresh(registry)
        if self.logengine is not None and self.logstore is None:
            self.metric_filters = MetricFilters(metrics.registry, self._metric_filters)
        if self.metric_filters is not None:
            for name in registry.functions:
                self.metric_filters.declare(name)
        return self.invoker

    def _dispatcher(self, metrics: Metrics) -> Dispatcher | None:
        """The durable queue and its dispatcher, for InvocationType Event (not yet open)."""
        s = self.settings
        url = s.queue_url
        if not url and self.cluster is None:
            url = local_queue_url(self.state_dir)
        if not url:
            log.warning("no KLAMBDA_QUEUE_URL: asynchronous invocation is off")
            return None
        self.queue = open_queue(url)

        def policy(function: str) -> AsyncPolicy:
            return AsyncPolicy.from_spec(self._invoker().registry.get(function).function.spec)

        async def invoke_event(
            function: str,
            payload: bytes,
            *,
            qualifier: str | None,
            request_id: str,
            trace: str | None,
        ) -> InvokeResult:
            return await self._invoker().invoke_event(
                function, payload, qualifier=qualifier, request_id=request_id, trace=trace
            )

        return Dispatcher(
            self.queue,
            invoke_event,
            policy,
            workers=s.async_workers,
            schedule=RetrySchedule(
                error_base=s.async_retry_base_seconds, throttle_base=s.async_throttle_base_seconds
            ),
            metrics=AsyncMetrics(metrics.registry),
            trigger_metrics=self.trigger_metrics,
            region=s.region,
            account_id=s.account_id,
        )

    def _metric_filters(self, function: str) -> list[MetricFilter]:
        """A function's metric filters now ($LATEST's), none once it is gone."""
        entry = self._invoker().registry.functions.get(function)
        return list(entry.function.spec.metric_filters or []) if entry is not None else []

    def _retention(self, function: str) -> int | None:
        """A function's logRetentionInDays ($LATEST's); None (keep) once it is gone."""
        entry = self._invoker().registry.functions.get(function)
        return entry.function.spec.log_retention_in_days if entry is not None else None

    def _invoker(self) -> Invoker:
        assert self.invoker is not None
        return self.invoker

    def _use_registry(self, registry: Registry) -> None:
        """Cluster mode: swap in a registry rebuilt from the API server."""
        assert self.invoker is not None
        for name, entry in registry.functions.items():
            try:
                self.invoker.pools.set_reserved(name, entry.function.spec.reserved_concurrency)
            except ReservationError as err:
                log.warning("Function %s: reservedConcurrency not applied: %s", name, err)
        for name in set(self.invoker.pools.reserved) - set(registry.functions):
            self.invoker.pools.set_reserved(name, None)
        for entry in registry.functions.values():
            want = provisioned_by_version(entry)
            for number, target in entry.targets.items():
                self.workers.set_provisioned(target, want.get(number, 0))
        self.invoker.registry = registry
        self.triggers.refresh(registry)

    async def start(self) -> None:
        invoker = self.invoker or self.load()
        s = self.settings
        self.open_files_limit = raise_open_files_limit()
        if self.cluster is not None:
            self.source = ClusterSource(
                s,
                self.cluster.namespace,
                self.cluster.kubeconfig,
                self._use_registry,
                self.workers,
                on_sources=self._on_sources if self.pollers is not None else None,
            )
            if self.pollers is not None:
                assert self.stream_pollers is not None
                assert self.postgres_pollers is not None
                self.cluster_mappings = ClusterMappings(
                    self.pollers, self.stream_pollers, self.postgres_pollers, self.source
                )
            self.workers.specialiser = self.source  # cold starts from the warm pool
            await self.source.start()
            if self.dispatcher is not None:
                self.dispatcher.ready = self.source.synced
            # A router that answered before its first listing would refuse functions that
            # exist (404) while its readiness probe already passed; an API server that does
            # not answer only delays the start this long.
            try:
                await asyncio.wait_for(self.source.synced.wait(), CLUSTER_SYNC_WAIT_S)
            except TimeoutError:
                log.warning(
                    "no first listing of functions after %d s: serving; queued events wait",
                    CLUSTER_SYNC_WAIT_S,
                )
        if self.shipper is not None:
            self.shipper.start()
        if self.db_proxies is not None:
            await self.db_proxies.start()
        if self.environments is not None:
            await self.environments.start(
                {e.latest.config.runtime for e in invoker.registry.functions.values()}
            )
        if self.queue is not None and self.dispatcher is not None:
            await self.queue.open()
            self._queue_open = True
            await self.dispatcher.start()
            self.scheduler = self._scheduler(self.dispatcher)
            self.triggers.listen(self._schedule)
            if self.schedule_lease is not None:
                await self.schedule_lease.start()
            await self.scheduler.start()
            if self.cluster_mappings is not None:  # the Lease's holder polls
                self.cluster_mappings.lease = self.schedule_lease
        self.access = self._access()
        if self.access is None:
            self.triggers.listen(self._warn_unchecked_urls)
        many = self.processes > 1
        self.grpc_server, self.grpc_port = build_server(
            invoker, s.grpc_host, s.grpc_port, self.access, reuse_port=many
        )
        if self.grpc_port == 0:
            raise OSError(f"cannot listen for gRPC on {s.grpc_host}:{s.grpc_port}")
        if many:  # where followers pass what they do not serve
            self.private_grpc_port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        await self.grpc_server.start()
        if self.cluster is None:
            self.control = LocalControl(invoker, self.state_dir)

            def changed() -> None:
                self.triggers.refresh(invoker.registry)
                if self.shared is not None:
                    self.shared.bump_generation()

            self.control.changed = changed
            self.control.start()
        if self.ingester is not None:
            self.ingester.start()
        topics = None
        if self.dispatcher is not None and self.trigger_metrics is not None:
            topics = Topics(
                self.triggers,
                self.dispatcher.submit,
                self.trigger_metrics,
                region=s.region,
                account=s.account_id,
            )
        self.sampler = Sampler(invoker.metrics, s.console_sample_seconds, s.console_samples)
        self.sampler.start()
        # provisioned autoscaling: local mode sets counts through LocalControl, a cluster
        # router writes them on the Alias or Version (router/cluster_control.py)
        put = (
            self._put_provisioned
            if self.control is not None
            else ClusterProvisioned(invoker, self.source).put
            if self.source is not None
            else None
        )
        if put is not None:
            self.autoscaler = Autoscaler(
                invoker, put, s.autoscale_period_seconds, s.autoscale_evaluation_seconds
            )
            self.autoscaler.start()
        api = HttpApi(
            invoker,
            self.control,
            self.triggers,
            self.scheduler,
            self.trigger_metrics,
            topics,
            self.logstore,
            self.sampler,
            self.autoscaler,
            (
                ClusterFunctions(self.source, s.region, s.account_id)
                if self.source is not None and s.control_api
                else None
            ),
            self.logengine,
            self.access,
        )
        app = api.app()
        if self.work_queues is not None:
            await self.work_queues.open()
        if self.stream_store is not None:
            await self.stream_store.open()
        if self.cluster_mappings is not None:
            self.cluster_mappings.start()
        else:
            if self.pollers is not None:
                await self.pollers.configure(self.sources.queues, self.sources.mappings)
            if self.stream_pollers is not None:
                await self.stream_pollers.configure(self.sources.streams, self.sources.mappings)
            if self.postgres_pollers is not None:
                await self.postgres_pollers.configure(self.sources.mappings)
        # S3 triggers in both modes; queues, streams and tables too (a cluster needs NATS)
        buckets = None
        if self.dispatcher is not None and self.trigger_metrics is not None:
            buckets = Buckets(
                self.triggers, self.dispatcher.submit, self.trigger_metrics, region=s.region
            )
        WorkQueueApi(self.pollers, self.stream_pollers, self.postgres_pollers, buckets).add_routes(
            app.router
        )
        if self.shared is not None:
            app.middlewares.append(changes(self.shared))
        self.http_runner = web.AppRunner(app, access_log=None)
        await self.http_runner.setup()
        site = web.TCPSite(self.http_runner, s.http_host, s.http_port, reuse_port=many or None)
        await site.start()
        self.http_port = int(self.http_runner.addresses[0][1])
        if many:
            private = web.TCPSite(self.http_runner, "127.0.0.1", 0)
            await private.start()
            self.private_http_port = int(self.http_runner.addresses[-1][1])
        self._reaper = asyncio.create_task(self._reap(), name="reaper")
        self._start_engine_jobs()
        if self.shared is not None:
            self.followers = Followers(
                self.shared, self.processes - 1, self._follower_spec, self._write_endpoint
            )
            await self.followers.start()
        if self.cluster is None:
            self._write_endpoint()

    def _write_endpoint(self) -> None:
        (self.state_dir / "endpoint.json").write_text(json.dumps(self.endpoint()))

    def _follower_spec(self, row: int, ready_fd: int) -> FollowerSpec:
        assert self.functions_dir is not None
        settings = self.settings.to_json()
        # the ports bound (a port 0 asked for is one port now), the state folder resolved
        settings.update(
            grpc_port=self.grpc_port, http_port=self.http_port, state_dir=str(self.state_dir)
        )
        return FollowerSpec(
            row=row,
            functions_dir=str(self.functions_dir.resolve()),
            settings=settings,
            leader_http=f"http://127.0.0.1:{self.private_http_port}",
            leader_grpc=f"127.0.0.1:{self.private_grpc_port}",
            leader_pid=os.getpid(),
            ready_fd=ready_fd,
        )

    async def _put_provisioned(self, function: str, qualifier: str, count: int) -> None:
        """Local mode's autoscaler sets a count as `klambda provisioned put` would."""
        assert self.control is not None
        self.control.put_provisioned(function, qualifier, count)

    def _warn_unchecked_urls(self, table: TriggerTable) -> None:
        """Without access control AWS_IAM URLs are refused (klambda.router.url_access): say
        so where the operator looks, once per URL."""
        for path, url in table.urls.items():
            if url.config.auth_type == "AWS_IAM" and path not in self._warned_urls:
                self._warned_urls.add(path)
                log.warning(
                    "function URL %s has authType AWS_IAM, but this router checks no "
                    "identities: it answers 403 Forbidden until auth is on (--auth)",
                    path,
                )

    def _access(self) -> Access | None:
        """Who may call (klambda.router.access), from settings.auth."""
        auth = self.settings.auth
        if not auth:
            return None
        if self.cluster is not None:
            return KubernetesAccess.connect(self.cluster.namespace, self.cluster.kubeconfig)
        return LocalAccess(CredentialsFile(Path(auth)))

    def isolation(self) -> str:
        """How environments are kept apart here, in a line (`klambda up` prints it)."""
        cg = self.cgroups
        procs = "pids cgroup" if cg is not None and cg.pids_parent else "RLIMIT_NPROC"
        zygotes = list(self.environments.zygotes.values()) if self.environments else []
        sb = self.sandbox
        if sb is None:
            return "worker pods"
        problems = [p for p in (sb.problem(z.python) for z in zygotes) if p]
        if sb.enabled and not problems:
            return (
                "a uid per function, code at /var/task, a private /tmp of "
                f"ephemeralStorageMB, 1024 processes ({procs})"
            )
        why = "; ".join(problems) or sb.reason
        return f"environments run as this user and share /tmp ({why}): see README, Isolation"

    def _on_sources(self, sources: Manifests) -> None:
        self.sources = sources
        if self.cluster_mappings is not None:
            self.cluster_mappings.sources_changed(sources)

    def _scheduler(self, dispatcher: Dispatcher) -> Scheduler:
        s = self.settings
        state: ScheduleState
        if self.cluster is None:
            state = FileScheduleState(self.state_dir / "schedules.json")
        else:  # one router of the replicas fires, its ticks kept in the Lease
            assert self.source is not None
            assert self.source.client is not None
            state = self.schedule_lease = ScheduleLease(
                self.source.client,
                self.cluster.namespace,
                s.router_id or f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}",
                duration_s=s.schedule_lease_seconds,
                renew_s=max(1.0, s.schedule_lease_seconds / 3),
            )
        scheduler = Scheduler(
            dispatcher.submit,
            state,
            region=s.region,
            account=s.account_id,
            metrics=self.trigger_metrics,
            grace=s.schedule_grace_seconds,
            holder=self.schedule_lease,
        )
        if self.schedule_lease is not None:
            self.schedule_lease.on_taken = scheduler.replan
        return scheduler

    def _schedule(self, table: TriggerTable) -> None:
        if self.scheduler is not None:
            self.scheduler.configure(table.schedules)

    def endpoint(self) -> dict[str, Any]:
        s = self.settings
        return {
            "http": f"http://{s.http_host}:{self.http_port}",
            "grpc": f"{s.grpc_host}:{self.grpc_port}",
            "pid": os.getpid(),
            "processes": [os.getpid(), *(self.followers.pids() if self.followers else [])],
        }

    async def _reap(self) -> None:
        assert self.invoker is not None
        await reclaim_forever(self.invoker.executor, self.settings.keep_warm_seconds)

    def _start_engine_jobs(self) -> None:
        """Metric filters and retention over the log engine (klambda.logengine.housekeeping),
        when the records are there and not in a store of this router's."""
        if self.logengine is None or self.logstore is not None:
            return
        assert self.metric_filters is not None
        s = self.settings

        def functions() -> list[str]:
            return list(self._invoker().registry.functions)

        counting = EngineMetricFilters(
            self.logengine,
            self.metric_filters,
            functions,
            period=s.log_metric_filter_seconds,
            lag=min(5.0, s.log_metric_filter_seconds),
        )
        retention = EngineRetention(
            self.logengine,
            s.log_archive_dir or self.state_dir / "logs" / "archive",
            functions,
            self._retention,
        )

        async def expire() -> None:
            while True:
                try:
                    await retention.run()
                except Exception:  # the next check tries again
                    log.exception("log retention over the log engine failed")
                await asyncio.sleep(s.log_retention_check_seconds)

        self._engine_jobs = [asyncio.create_task(counting.run(), name="log-metric-filters")]
        if s.log_retention_check_seconds > 0:  # 0: another replica enforces retention
            self._engine_jobs.append(asyncio.create_task(expire(), name="log-retention"))

    async def stop(self) -> None:
        if self.followers is not None:  # they finish what they serve first
            await self.followers.stop()
        if self.sampler is not None:
            await self.sampler.stop()
        if self.autoscaler is not None:
            await self.autoscaler.stop()
        for job in self._engine_jobs:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.schedule_lease is not None:
            await self.schedule_lease.stop()
        if self.cluster_mappings is not None:
            await self.cluster_mappings.stop()
        if self.pollers is not None:
            await self.pollers.stop()
        if self.stream_pollers is not None:
            await self.stream_pollers.stop()
        if self.postgres_pollers is not None:
            await self.postgres_pollers.stop()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=1.0)
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.dispatcher is not None:
            await self.dispatcher.stop(grace=5.0)
        if self.queue is not None and self._queue_open:
            await self.queue.close()
        if self.work_queues is not None:
            await self.work_queues.close()
        if self.stream_store is not None:
            await self.stream_store.close()
        if self.db_proxies is not None:
            await self.db_proxies.stop()
        if self.source is not None:
            await self.workers.settle()  # their claims go through the source's client
            await self.source.stop()
        if isinstance(self.access, KubernetesAccess):
            await self.access.close()
        if self.invoker is not None:
            await self.invoker.close()
            self.invoker.logs.close()
        if self.ingester is not None:  # a last pass over what was just flushed
            await asyncio.to_thread(self.ingester.stop)
        if self.logstore is not None:
            self.logstore.close()
        if self.shipper is not None:
            await self.shipper.close()
        if self.logengine is not None:
            await self.logengine.close()
        if self.cgroups is not None:
            self.cgroups.close()
        if self.shared is not None:
            self.shared.close()
        with contextlib.suppress(OSError):
            (self.state_dir / "endpoint.json").unlink()


# Lambda's control API (its dated paths) and klambda's own function paths; invocations
# are POSTs there too, and change nothing
_CONTROL = ("/2015-", "/2016-", "/2017-", "/2019-", "/2020-", "/2021-", "/klambda/v1/functions")
_NOT_CONTROL = ("/invocations", "/response-streaming-invocations")
_READS = ("GET", "HEAD", "OPTIONS")


def changes(shared: SharedPools) -> Any:
    """Middleware of a leader: after a successful write through the control API (functions,
    versions, aliases, concurrency), bump the shared generation so that followers read
    their registry again."""

    @web.middleware
    async def bump(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        path = request.path
        if (
            request.method not in _READS
            and response.status < 400
            and path.startswith(_CONTROL)
            and not path.endswith(_NOT_CONTROL)
        ):
            shared.bump_generation()
        return response

    return bump
