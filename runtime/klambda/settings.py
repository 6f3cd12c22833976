"""One typed settings object per process, from flags and `KLAMBDA_*` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from klambda.api import limits
from klambda.pricing import Prices


@dataclass
class RouterSettings:
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    state_dir: Path | None = None
    account_concurrency: int = limits.ACCOUNT_CONCURRENCY_DEFAULT
    unreserved_min: int = limits.UNRESERVED_CONCURRENCY_MIN
    # new on-demand environments of one function: a burst, then a rate (Lambda: 1,000
    # every 10 s); the burst is at most a minute's worth
    scale_up_per_minute: int = limits.SCALE_UP_PER_MINUTE_DEFAULT
    scale_up_burst: int = limits.SCALE_UP_BURST_DEFAULT
    keep_warm_seconds: float = 600.0
    cgroups: bool = True
    # as root: a uid per function, a private /tmp, code only at /var/task (worker.sandbox)
    sandbox: bool = True
    # who may call: "" (anyone), "kubernetes" (cluster mode: TokenReview, SigV4 keys in
    # Secrets, SubjectAccessReview), or an AWS credentials file (local mode's --auth)
    auth: str = ""
    cpu_limits: bool = True
    echo_logs: bool = True
    # a function's log files in STATE/logs at most (rotated past a quarter of it)
    log_max_mb: int = 256
    region: str = "us-east-1"
    account_id: str = "000000000000"
    preload: tuple[str, ...] = field(default_factory=tuple)
    # environments marked for the kernel's same-page merging (KSM): identical pages of idle
    # environments merged into one, where the host runs ksmd (/sys/kernel/mm/ksm/run = 1)
    memory_merge: bool = True
    # async invocation: `sqlite:///path` or `nats://host:4222` (local mode defaults to a
    # SQLite file in the state folder); Lambda retries function errors after ~1 and ~2 min
    queue_url: str = ""
    async_workers: int = 8
    async_retry_base_seconds: float = 60.0
    async_throttle_base_seconds: float = 1.0
    # a schedule's tick missed by less than this (a restart across it) is fired late
    schedule_grace_seconds: float = 60.0
    # cluster mode: the schedules' Lease lasts this long unrenewed before another router
    # takes it (renewed every third of it); this router's name in it (default HOSTNAME_UUID)
    schedule_lease_seconds: int = 15
    router_id: str = ""
    price_per_gb_second: float = 0.00001667
    price_per_million_requests: float = 0.20
    # the log store (local mode): STATE/logs.duckdb, fed from STATE/logs every N seconds
    log_store: bool = True
    log_ingest_seconds: float = 1.0
    # the store's DuckDB: its memory limit (buffer pool and queries' work; past it, blocks
    # are evicted and a large query spills to disk) and threads (klambda.logstore.store)
    log_store_memory_mb: int = 128
    log_store_threads: int = 2
    # expired records (logRetentionInDays) go to this folder (default STATE/logs/archive)
    log_archive_dir: Path | None = None
    log_retention_check_seconds: float = 3600.0
    # the console (/console): the metrics sampled every N seconds, the last M samples kept
    console_sample_seconds: float = 5.0
    console_samples: int = 360
    # provisioned autoscaling: a reading and a decision every N seconds; scale-out on the
    # mean utilization of the last M seconds (Application Auto Scaling: 3 one-minute points)
    autoscale_period_seconds: float = 10.0
    autoscale_evaluation_seconds: float = 60.0
    # cluster mode: serve Lambda's function requests (CreateFunction ...) by writing
    # Functions; off by default, since whoever reaches the router could then run code
    control_api: bool = False
    # the cluster's log engine (VictoriaLogs' URL, KLAMBDA_LOG_ENGINE_URL): queries and
    # `logs --since` go there instead of the local store
    log_engine_url: str = ""
    # how often metric filters read the engine's new records (cluster mode)
    log_metric_filter_seconds: float = 10.0
    # local mode: router processes serving the same ports (SO_REUSEPORT), one the leader
    # (control, queue, schedules, log store), the others invokes only (router/follower.py)
    processes: int = 1

    @property
    def prices(self) -> Prices:
        return Prices(
            per_million_requests=self.price_per_million_requests,
            per_gb_second=self.price_per_gb_second,
        )

    def to_json(self) -> dict[str, object]:
        """The settings as JSON values (for another router process: `from_json`)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = (
                str(value)
                if isinstance(value, Path)
                else list(value)
                if isinstance(value, tuple)
                else value
            )
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RouterSettings:
        values = dict(data)
        for name in ("state_dir", "log_archive_dir"):
            if values.get(name) is not None:
                values[name] = Path(str(values[name]))
        if isinstance(values.get("preload"), list):
            values["preload"] = tuple(values["preload"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, **overrides: object) -> RouterSettings:
        """Defaults, then KLAMBDA_<FIELD> variables, then explicit overrides (flags)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"KLAMBDA_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls(), f.name)
            if isinstance(default, bool):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            elif isinstance(default, tuple):
                values[f.name] = tuple(x for x in raw.split(",") if x)
            elif f.name in ("state_dir", "log_archive_dir"):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
