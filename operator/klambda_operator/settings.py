"""The operator's settings: one typed object, from `KLAMBDA_OPERATOR_*` environment variables.

Read once at startup: the kopf startup handler puts it in the operator's memo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import klambda
from klambda.api import limits

PREFIX = "KLAMBDA_OPERATOR_"
#: six vCPUs, Lambda's largest function's
POOL_CPU_MAX_MILLICORES = 6000
#: an image function's worker runs on this alone (its function's share is the runtime's)
WORKER_CPU_MIN_MILLICORES = 10


@dataclass(frozen=True)
class OperatorSettings:
    # The image of worker pods: it runs `klambda worker` (see docs/operator.md).
    image: str = f"klambda/runtime:{klambda.__version__}"
    image_pull_policy: str = "IfNotPresent"
    # How often every object is reconciled again (scaling, drift, alias validity).
    resync_seconds: float = 10.0
    # Environments kept after the last invocation before scaling to zero (Lambda keeps
    # idle environments for minutes).
    idle_seconds: float = 600.0
    # New environments a minute per function version, the router's default as well.
    scale_up_per_minute: int = limits.SCALE_UP_PER_MINUTE_DEFAULT
    # No version ever gets more environments than the account's concurrency.
    max_environments: int = limits.ACCOUNT_CONCURRENCY_DEFAULT
    # Memory for the worker agent and its zygote, added to memoryMB in the pod's
    # request and limit (each environment's own limit is memoryMB, set by the worker).
    memory_overhead_mb: int = 128
    # CPU for the worker agent, in millicores, added to the function's share in the pod's
    # request and limit as memory_overhead_mb is to its memory. In a pod the environment
    # is not in a cgroup of its own (the container's cgroup file system is read-only), so
    # without it the worker's per-call gRPC work would be charged to a 128 MB function's
    # 73 m and throttled by the kernel's CPU quota with the handler; with it, a handler
    # may use up to its share plus this when the worker is idle.
    worker_cpu_millicores: int = 100
    # The ServiceAccount worker pods run as ("": the namespace's default). Its token is
    # never mounted either way: a handler gets no Kubernetes API access.
    function_service_account: str = ""
    # The warm pool: generic worker pods kept ready per runtime (in each namespace that
    # has Functions of it), which the router specialises on a cold start. 0 turns it off:
    # every version then scales its own Deployment from the router's demand.
    pool_size: int = 2
    # The memory size pool pods start with (their resources as a function of that size's);
    # a specialised pod is resized in place to its function's memoryMB.
    pool_memory_mb: int = limits.MEMORY_MIN_MB
    # The CPU limit pool pods start with, in millicores (0: pool_memory_mb's share and the
    # worker's): what a cold start's specialise and init run with, until the pod is
    # resized to its function's. They request pool_memory_mb's share either way.
    pool_cpu_millicores: int = 0
    region: str = "us-east-1"
    account_id: str = "000000000000"
    # The cluster's log engine (the chart's VictoriaLogs, logs.engine.enabled): given to
    # every worker pod, which ships its records there ("": stdout only).
    log_engine_url: str = ""
    # The cluster's store of code and layers (the chart's MinIO, store.enabled): an S3
    # endpoint, its bucket and the credentials that write it ("": no store; code then
    # comes from ConfigMaps or images only, and Layers are refused). Worker pods read it
    # without credentials: the bucket lets anyone get `code/*` and `layers/*` objects by
    # their digest, nothing else.
    store_endpoint: str = ""
    store_bucket: str = "klambda"
    store_access_key: str = ""
    store_secret_key: str = ""
    # The image of DatabaseProxy pods: Debian's pgbouncer (scripts/cluster/base-image.sh
    # pgbouncer), or any image with pgbouncer, sh and awk on its PATH.
    db_proxy_image: str = f"klambda/pgbouncer:{klambda.__version__}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> OperatorSettings:
        """Defaults, overridden by KLAMBDA_OPERATOR_<FIELD> variables; ValueError if bad."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        defaults = cls()
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            default = getattr(defaults, f.name)
            try:
                if isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ValueError(f"{PREFIX}{f.name.upper()}={raw!r} is not a number") from None
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.resync_seconds <= 0 or settings.scale_up_per_minute <= 0:
            raise ValueError("resync_seconds and scale_up_per_minute must be positive")
        if settings.pool_size < 0:
            raise ValueError(f"{PREFIX}POOL_SIZE must be 0 (no pool) or more")
        if (
            not WORKER_CPU_MIN_MILLICORES
            <= settings.worker_cpu_millicores
            <= POOL_CPU_MAX_MILLICORES
        ):
            raise ValueError(
                f"{PREFIX}WORKER_CPU_MILLICORES must be within "
                f"{WORKER_CPU_MIN_MILLICORES}-{POOL_CPU_MAX_MILLICORES}"
            )
        if not 0 <= settings.pool_cpu_millicores <= POOL_CPU_MAX_MILLICORES:
            raise ValueError(
                f"{PREFIX}POOL_CPU_MILLICORES must be within 0-{POOL_CPU_MAX_MILLICORES}"
                " (0: the CPU share of the pool's memory size)"
            )
        if not limits.MEMORY_MIN_MB <= settings.pool_memory_mb <= limits.MEMORY_MAX_MB:
            raise ValueError(
                f"{PREFIX}POOL_MEMORY_MB must be within "
                f"{limits.MEMORY_MIN_MB}-{limits.MEMORY_MAX_MB}"
            )
        return settings
