"""The warm pool as a router sees it: ready generic worker pods per runtime, and which of
them this router has taken.

In cluster mode a cold start of a version with no free worker takes a pool pod of its
runtime (one with its zygote ready and no function), specialises it for the version (its
configuration and code, over `klambda.v1.Worker/Specialise`) and invokes it at once; the
pod is then relabelled out of the pool and into the version (`contract.claim_patch`), so
the pool's ReplicaSet makes a new pool pod and the version's Service lists this one. A
pod is taken once: the worker itself refuses a second specialisation, and `WarmPool`
keeps this router from trying a pod it has taken while the EndpointSlices still list it
in the pool.

`Specialiser` is what the cold start needs from the API server (klambda.router.cluster
implements it): which pool may serve a version, the version's code, and the claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from klambda.execution import FunctionConfig
from klambda.proto import worker_pb2
from klambda.router.registry import Target


@dataclass(frozen=True)
class PoolPod:
    name: str
    uid: str
    address: str  # ip:port of its klambda.v1.Worker


class Specialiser(Protocol):
    def runtime_of(self, target: Target) -> str | None:
        """The runtime whose pool may serve `target`; None when only its own pods may
        (a function whose code is an image, or that mounts a file system)."""
        ...

    def given_config(self, target: Target) -> FunctionConfig:
        """The configuration a pool pod is given for `target` (its CodeSha256 that of the
        files it gets); no I/O."""
        ...

    async def code(self, target: Target) -> tuple[FunctionConfig, CodePackage]:
        """The configuration to give a pool pod (with the CodeSha256 of its code) and the
        code; CodeUnavailable when it cannot be had."""
        ...

    def owner_of(self, target: Target) -> Mapping[str, str] | None:
        """The object a pod specialised for `target` belongs to (kind, name, uid: its
        Version, or the Function for $LATEST); None once it is gone. No I/O."""
        ...

    def claim(self, pod: PoolPod, cfg: FunctionConfig, owner: Mapping[str, str]) -> None:
        """Move `pod` out of its pool and into `owner` (in the background). `owner` is
        the one named before the pod was specialised: should it be deleted meanwhile, the
        claimed pod goes with it (the garbage collector), rather than staying in the pool
        specialised for nobody."""
        ...


@dataclass(frozen=True)
class CodePackage:
    """What a pool pod is given to run: the code's files, or its .zip in the cluster's
    store, and the layers' .zips of the store, in order (the pod downloads those)."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    code_object: str = ""
    layer_objects: tuple[str, ...] = ()

    @property
    def from_store(self) -> bool:
        return bool(self.code_object or self.layer_objects)


class CodeUnavailable(Exception):
    """A version's code cannot be read (its snapshot is missing, or not what it says)."""


@dataclass
class WarmPool:
    """Ready pool pods by runtime, from the pools' EndpointSlices, minus those taken."""

    ready: dict[str, list[PoolPod]] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)  # uids

    def update(self, ready: dict[str, list[PoolPod]]) -> None:
        """New EndpointSlice contents; a taken pod is forgotten once it is gone from them."""
        self.ready = ready
        listed = {p.uid for pods in ready.values() for p in pods}
        self.taken &= listed

    def has_pool(self, runtime: str) -> bool:
        """A pool of `runtime` exists (its EndpointSlices do), even if no pod is ready."""
        return runtime in self.ready

    def available(self, runtime: str) -> int:
        return sum(1 for p in self.ready.get(runtime, ()) if p.uid not in self.taken)

    def take(self, runtime: str) -> PoolPod | None:
        for pod in self.ready.get(runtime, ()):
            if pod.uid not in self.taken:
                self.taken.add(pod.uid)
                return pod
        return None

    def give_back(self, pod: PoolPod) -> None:
        self.taken.discard(pod.uid)


def specialise_request(cfg: FunctionConfig, code: CodePackage) -> worker_pb2.SpecialiseRequest:
    return worker_pb2.SpecialiseRequest(
        function=cfg.function,
        version=cfg.version,
        handler=cfg.handler,
        runtime=cfg.runtime,
        memory_mb=cfg.memory_mb,
        timeout_seconds=cfg.timeout_s,
        environment=cfg.environment,
        code_sha256=cfg.code_sha256,
        region=cfg.region,
        account=cfg.account,
        files=[worker_pb2.CodeFile(path=p, content=c) for p, c in sorted(code.files.items())],
        code_object=code.code_object,
        layer_objects=list(code.layer_objects),
    )
