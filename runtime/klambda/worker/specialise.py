"""A pool worker becomes one function version's worker, once.

A pool pod (`klambda worker --pool RUNTIME`) starts with its runtime's zygote ready and no
function, so that a cold start in the cluster costs a fork and the function's own init,
not a pod start. The router's `Specialise` call gives it one version's configuration and
code; the code is checked against its CodeSha256 (content-addressed: the pod keeps it, and
the same specialisation again is answered without writing anything) and written to the
code root, and from then on the worker serves that version only.

A specialisation for anything else is refused for the life of the pod: nothing a function
left behind (files in /tmp, module globals, processes) may reach another function, so a
specialised pod is deleted when idle (by the operator), never returned to the pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from klambda import codestore
from klambda.api import limits
from klambda.contract import config_digest
from klambda.execution import FunctionConfig
from klambda.proto import worker_pb2
from klambda.worker.executor import VersionExecutor


class SpecialiseInvalid(ValueError):
    """The request is not a version this pool can run; the message names the field."""


class SpecialiseRefused(RuntimeError):
    """The worker already serves another function version (or is not a pool worker)."""


def config_of_request(
    req: worker_pb2.SpecialiseRequest, runtime: str, code_root: str
) -> FunctionConfig:
    """The FunctionConfig a Specialise request describes; SpecialiseInvalid naming the
    field and its bounds otherwise. Pure."""
    if req.runtime != runtime:
        raise SpecialiseInvalid(
            f"runtime: this worker is of the {runtime} pool, not {req.runtime!r}"
        )
    for name in ("function", "version", "handler", "code_sha256"):
        if not getattr(req, name):
            raise SpecialiseInvalid(f"{name}: must not be empty")
    if not limits.MEMORY_MIN_MB <= req.memory_mb <= limits.MEMORY_MAX_MB:
        raise SpecialiseInvalid(
            f"memory_mb: {req.memory_mb} is not within "
            f"{limits.MEMORY_MIN_MB}-{limits.MEMORY_MAX_MB}"
        )
    if not limits.TIMEOUT_MIN_S <= req.timeout_seconds <= limits.TIMEOUT_MAX_S:
        raise SpecialiseInvalid(
            f"timeout_seconds: {req.timeout_seconds} is not within "
            f"{limits.TIMEOUT_MIN_S}-{limits.TIMEOUT_MAX_S}"
        )
    return FunctionConfig(
        function=req.function,
        version=req.version,
        handler=req.handler,
        runtime=req.runtime,
        memory_mb=req.memory_mb,
        timeout_s=req.timeout_seconds,
        environment=dict(req.environment),
        code_root=code_root,
        code_sha256=req.code_sha256,
        region=req.region or "us-east-1",
        account=req.account or "000000000000",
    )


@dataclass
class Specialisation:
    """What a pool worker serves: nothing until `specialise`, then one version for good."""

    runtime: str
    code_root: Path
    # builds the executor of the version (its environment pool on this worker's zygote)
    executor_of: Callable[[FunctionConfig], VersionExecutor]
    cfg: FunctionConfig | None = None
    executor: VersionExecutor | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def specialise(self, req: worker_pb2.SpecialiseRequest) -> float:
        """Take on the version of `req` (ms spent checking and writing the code);
        SpecialiseInvalid or SpecialiseRefused."""
        async with self._lock:
            cfg = config_of_request(req, self.runtime, str(self.code_root))
            if self.cfg is not None:
                if config_digest(self.cfg) == config_digest(cfg):
                    return 0.0  # the same again (a retry, or a second router): nothing to do
                raise SpecialiseRefused(
                    f"this worker serves {self.cfg.function}:{self.cfg.version}; a "
                    "specialised worker never serves another function or configuration"
                )
            t0 = time.perf_counter()
            files = {f.path: f.content for f in req.files}
            if not files:
                raise SpecialiseInvalid("files: the code has no files")
            got = codestore.digest(files)
            if got != cfg.code_sha256:
                raise SpecialiseInvalid(
                    f"code_sha256: the files digest to {got}, not {cfg.code_sha256}"
                )
            try:
                codestore.unpack(files, self.code_root)
            except ValueError as err:
                raise SpecialiseInvalid(f"files: {err}") from None
            self.cfg = cfg
            self.executor = self.executor_of(cfg)
            # the router's first call is on its way: its environment's init starts now
            self.executor.start_ahead()
            return (time.perf_counter() - t0) * 1000
