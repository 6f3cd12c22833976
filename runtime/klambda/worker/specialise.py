"""A pool worker becomes one function version's worker, once.

A pool pod (`klambda worker --pool RUNTIME`) starts with its runtime's zygote ready and no
function, so that a cold start in the cluster costs a fork and the function's own init,
not a pod start. The router's `Specialise` call gives it one version's configuration and
code; the code is checked against its CodeSha256 (content-addressed: the pod keeps it, and
the same specialisation again is answered without writing anything) and written to the
code root, and from then on the worker serves that version only. The code comes in the
call (its files) or from the cluster's code store (`code_object`), and the layers from the
store (`layer_objects`, into the opt root): the worker fetches, checks and unpacks them
(klambda.worker.store) before it answers.

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
from klambda.contract import (
    OBJECT_CODE,
    OBJECT_LAYER,
    STORE_URL_ENV,
    config_digest,
    parse_object_key,
)
from klambda.execution import FunctionConfig
from klambda.proto import worker_pb2
from klambda.worker.executor import VersionExecutor


class SpecialiseInvalid(ValueError):
    """The request is not a version this pool can run; the message names the field."""


class SpecialiseRefused(RuntimeError):
    """The worker already serves another function version (or is not a pool worker)."""


def config_of_request(
    req: worker_pb2.SpecialiseRequest, runtime: str, code_root: str, opt_root: str = ""
) -> FunctionConfig:
    """The FunctionConfig a Specialise request describes (its layers at `opt_root`);
    SpecialiseInvalid naming the field and its bounds otherwise. Pure."""
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
    if req.code_object:
        try:
            key = parse_object_key(req.code_object, OBJECT_CODE)
        except ValueError as err:
            raise SpecialiseInvalid(f"code_object: {err}") from None
        if req.code_sha256 != key.code_sha256:
            raise SpecialiseInvalid(
                f"code_sha256: {req.code_sha256} is not the CodeSha256 of code_object "
                f"{req.code_object} ({key.code_sha256})"
            )
    for layer in req.layer_objects:
        try:
            parse_object_key(layer, OBJECT_LAYER)
        except ValueError as err:
            raise SpecialiseInvalid(f"layer_objects: {err}") from None
    if len(req.layer_objects) > limits.LAYERS_MAX:
        raise SpecialiseInvalid(
            f"layer_objects: {len(req.layer_objects)} layers, more than {limits.LAYERS_MAX}"
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
        opt_root=opt_root if req.layer_objects else "",
    )


NOT_A_POOL_WORKER = "this worker serves one function version from its start: not a pool worker"


@dataclass
class Specialisation:
    """What a pool worker serves: nothing until `specialise`, then one version for good."""

    runtime: str
    code_root: Path
    # builds the executor of the version (its environment pool on this worker's zygote)
    executor_of: Callable[[FunctionConfig], VersionExecutor]
    opt_root: Path = Path("/opt")  # where the layers go
    store_url: str = ""  # the code store, with its bucket ("": none)
    cfg: FunctionConfig | None = None
    layers: tuple[str, ...] = ()  # the layer objects of cfg
    executor: VersionExecutor | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def specialise(self, req: worker_pb2.SpecialiseRequest) -> float:
        """Take on the version of `req` (ms spent fetching, checking and writing the code
        and layers); SpecialiseInvalid or SpecialiseRefused."""
        async with self._lock:
            cfg = config_of_request(req, self.runtime, str(self.code_root), str(self.opt_root))
            layers = tuple(req.layer_objects)
            if self.cfg is not None:
                if config_digest(self.cfg) == config_digest(cfg) and self.layers == layers:
                    return 0.0  # the same again (a retry, or a second router): nothing to do
                raise SpecialiseRefused(
                    f"this worker serves {self.cfg.function}:{self.cfg.version}; a "
                    "specialised worker never serves another function or configuration"
                )
            t0 = time.perf_counter()
            files: dict[str, bytes] = {}
            if not req.code_object:
                files = {f.path: f.content for f in req.files}
                if not files:
                    raise SpecialiseInvalid("files: the code has no files")
                got = codestore.digest(files)
                if got != cfg.code_sha256:
                    raise SpecialiseInvalid(
                        f"code_sha256: the files digest to {got}, not {cfg.code_sha256}"
                    )
                bad = [name for name in files if not codestore.safe_path(name)]
                if bad:  # before anything is fetched
                    raise SpecialiseInvalid(f"files: {bad[0]!r} is not a path inside the code")
            if req.code_object or layers:
                await self._from_store(req.code_object, layers, sum(map(len, files.values())))
            if files:
                try:
                    codestore.unpack(files, self.code_root)
                except ValueError as err:
                    raise SpecialiseInvalid(f"files: {err}") from None
            self.cfg = cfg
            self.layers = layers
            self.executor = self.executor_of(cfg)
            # the router's first call is on its way: its environment's init starts now
            self.executor.start_ahead()
            return (time.perf_counter() - t0) * 1000

    async def _from_store(self, code: str, layers: tuple[str, ...], code_bytes: int) -> None:
        """The code object and the layers fetched and unpacked; SpecialiseInvalid naming the
        field, the object and why (the pod is left as it was: still a pool pod)."""
        field = "code_object" if code else "layer_objects"
        if not self.store_url:
            raise SpecialiseInvalid(
                f"{field}: this worker has no code store to fetch {code or layers[0]} from "
                f"({STORE_URL_ENV} is not set)"
            )
        from klambda.worker import store  # zipfile and the fetching, only when used

        try:
            await store.place(
                self.store_url, code, self.code_root, layers, self.opt_root, code_bytes=code_bytes
            )
        except store.StoreError as err:
            if err.subject != code:
                layer = err.subject.startswith(OBJECT_LAYER + "/")
                field = "layer_objects" if layer else "code_object, layer_objects"
            raise SpecialiseInvalid(
                f"{field}: {err.subject} from {self.store_url}: {err.reason}"
            ) from None
