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
    scale_up_per_minute: int = limits.SCALE_UP_PER_MINUTE_DEFAULT
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
    # async invocation: `sqlite:///path` or `nats://host:4222` (local mode defaults to a
    # SQLite file in the state folder); Lambda retries function errors after ~1 and ~2 min
    queue_url: str = ""
    async_workers: int = 8
    async_retry_base_seconds: float = 60.0
    async_throttle_base_seconds: float = 1.0
    # a schedule's tick missed by less than this (a restart across it) is fired late
    schedule_grace_seconds: float = 60.0
    price_per_gb_second: float = 0.00001667
    price_per_million_requests: float = 0.20
    # the log store (local mode): STATE/logs.duckdb, fed from STATE/logs every N seconds
    log_store: bool = True
    log_ingest_seconds: float = 1.0
    # expired records (logRetentionInDays) go to this folder (default STATE/logs/archive)
    log_archive_dir: Path | None = None
    log_retention_check_seconds: float = 3600.0

    @property
    def prices(self) -> Prices:
        return Prices(
            per_million_requests=self.price_per_million_requests,
            per_gb_second=self.price_per_gb_second,
        )

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
