"""What every benchmark part is handed: sizes, the running servers and the built tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Echo, Router


@dataclass(frozen=True)
class Sizes:
    """How long and how many: the full run (`make bench`) or a smoke run (`--quick`)."""

    latency_rounds: int = 10
    latency_calls: int = 300  # per round and per target, so 3,000 of each
    direct_calls: int = 20_000
    load_seconds: float = 5.0
    concurrencies: tuple[int, ...] = (1, 10, 50)
    cold: int = 40
    heavy: int = 10
    peer_cold: int = 10
    series_target: int = 1000
    series_functions: int = 40
    scrapes: int = 50
    scale: int = 200
    profile_seconds: float = 5.0
    async_concurrencies: tuple[int, ...] = (1, 16, 64)
    async_seconds: float = 2.0  # each accept run (wrk, Event)
    async_sync_seconds: float = 2.0  # each sync no-op run beside it
    async_burst_seconds: float = 2.0  # wrk submitting the end-to-end burst
    async_burst_c: int = 16
    async_paced: int = 200  # events sent one at a time, for the path's own latency
    log_records: int = 1_000_000  # records queried by the logs part
    log_query_runs: int = 3  # each query's runs (the median is reported)
    pool_cold: int = 20  # cold starts through the warm pool (each waits for a refill)
    pool_warm: int = 300
    runtime_api_cold: int = 20  # cold starts per path (fork, awslambdaric, tutorial)
    runtime_api_warm: int = 500  # warm calls per path
    kind_cold: int = 20  # first calls through the pool on kind (each waits for a refill)
    kind_burst: int = 50  # first calls to as many functions at once
    kind_empty: int = 3  # first calls with pool.size=0 (a pod started each)
    kind_warm: int = 300
    burst: int = 1000  # new environments of one function at once
    burst_hold_s: float = 20.0  # each call is held this long after the burst is sent
    burst_merge_timeout_s: float = 300.0  # at most this long for ksmd to merge (as root)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            latency_rounds=2,
            latency_calls=50,
            direct_calls=2000,
            load_seconds=1.0,
            concurrencies=(1, 10),
            cold=3,
            heavy=1,
            peer_cold=2,
            series_target=150,
            series_functions=4,
            scrapes=5,
            scale=5,
            profile_seconds=1.0,
            async_concurrencies=(16,),
            async_seconds=1.0,
            async_sync_seconds=1.0,
            async_burst_seconds=1.0,
            async_burst_c=1,
            async_paced=20,
            log_records=20_000,
            log_query_runs=1,
            pool_cold=2,
            pool_warm=30,
            runtime_api_cold=2,
            runtime_api_warm=30,
            kind_cold=2,
            kind_burst=4,
            kind_empty=1,
            kind_warm=30,
            burst=10,
            burst_hold_s=1.0,
            burst_merge_timeout_s=30.0,
        )


@dataclass
class Lab:
    work: Path
    sizes: Sizes
    router: Router
    echo: Echo
    functions: Path  # the manifests the router serves
    tools: dict[str, str] = field(default_factory=dict)  # tool -> path
    tool_errors: dict[str, str] = field(default_factory=dict)  # tool -> why it is missing
