"""Cluster mode: the router learns functions, versions, aliases and worker endpoints from
the API server, and forwards invocations to worker pods over gRPC.

Watches (list, then watch from the list's resourceVersion; on any error, start again)
keep a cache of Function, Version, Alias and DatabaseProxy objects of one namespace and of
the EndpointSlices of worker Services (label `klambda.io/function`) and of the warm pools'
Services (label `klambda.io/pool`). A function a DatabaseProxy lists gets its address
(PGHOST/PGPORT/PGDATABASE, its own values winning) in every version's configuration, as
the operator gives it to the function's own pods: a pool pod specialised for it gets the
same, and its configuration digest agrees with the operator's. Every change rebuilds the
registry from the cache and swaps it in whole, so a `kubectl apply` of an Alias reroutes
the next request. Demand (in-flight invocations per version, peak per second) and the last
invocation time are written back as annotations for the operator's scaling.

`ClusterSource` is also the remote executor's `Specialiser` (klambda.router.pool): for a
cold start on a pool pod it gives the version's code and claims the pod. The code is
taken from the spec the router already watches when it is inline (no API call; a
Version's inline files are immutable and the worker checks them against codeSha256), else
from the version's code snapshot ConfigMap (`<function>-code-<hash>`, the exact bytes the
version was published with: the user's ConfigMap may have changed since), read once per
CodeSha256 and kept, since a snapshot never changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.core_v1 import ConfigMap, Pod
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import PatchType
from pydantic import TypeAdapter, ValidationError

from klambda import codestore, contract, kinds
from klambda.api import Alias, Function, Version
from klambda.api.databaseproxy import DatabaseProxySpec
from klambda.api.eventsourcemapping import EventSourceMapping
from klambda.api.function import Code, FunctionStatus, LayerObjectStatus
from klambda.api.limits import LATEST
from klambda.api.manifest import Manifests, parse_document
from klambda.api.queue import Queue
from klambda.api.stream import Stream
from klambda.api.triggers import Trigger
from klambda.api.version import VersionStatus
from klambda.dbproxy import environments, with_proxy
from klambda.execution import FunctionConfig, config_of
from klambda.router.pool import CodePackage, CodeUnavailable, PoolPod
from klambda.router.registry import (
    FunctionEntry,
    Registry,
    Target,
    provisioned_by_version,
    state_of,
)
from klambda.router.remote import RemoteWorkers
from klambda.settings import RouterSettings

#: attempts to relabel a specialised pool pod (backing off 0.5 s doubling to 8 s: ~35 s)
CLAIM_ATTEMPTS = 8
#: how long stopping waits for the claims in flight
CLAIM_DRAIN_S = 5.0

log = logging.getLogger("klambda.router.cluster")

FunctionRes = kinds.FunctionResource
VersionRes = kinds.VersionResource
AliasRes = kinds.AliasResource
DatabaseProxyRes = kinds.DatabaseProxyResource
# the polled sources: followed, but not waited for before the router serves
SOURCE_KINDS: dict[str, Any] = {
    "Queue": kinds.QueueResource,
    "Stream": kinds.StreamResource,
    "EventSourceMapping": kinds.EventSourceMappingResource,
}


def _config(
    name: str, spec: Any, version: str, sha: str, s: RouterSettings, proxy: dict[str, str]
) -> FunctionConfig:
    # environments run in the worker pods: the router needs no code root
    cfg = config_of(
        name, version, spec, code_root="", code_sha256=sha, region=s.region, account=s.account_id
    )
    return replace(cfg, environment=with_proxy(cfg.environment, proxy)) if proxy else cfg


def proxy_environments(proxies: list[dict[str, Any]], namespace: str) -> dict[str, dict[str, str]]:
    """function -> its DatabaseProxy's variables, as the operator decides them
    (klambda_operator.reconcile.proxy_environment): proxies being deleted and malformed ones
    serve no function. Pure."""
    specs: dict[str, DatabaseProxySpec] = {}
    for raw in proxies:
        meta = raw.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        try:
            specs[meta["name"]] = DatabaseProxySpec.model_validate(raw.get("spec") or {})
        except ValidationError as err:
            log.warning("ignoring DatabaseProxy %s: %s", meta.get("name"), err)
    return environments(specs, lambda proxy: contract.dbproxy_host(proxy, namespace))


def build_registry(
    functions: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    aliases: list[dict[str, Any]],
    settings: RouterSettings,
    proxies: list[dict[str, Any]] | None = None,
    namespace: str = "default",
) -> Registry:
    """A registry from raw API objects; malformed ones are left out with a warning; the
    functions `proxies` list get their address in `namespace`. Pure."""
    reg = Registry()
    proxied = proxy_environments(proxies or [], namespace)
    for raw in functions:
        try:
            fn = Function.model_validate(_without_bad_triggers(raw))
        except ValidationError as err:
            log.warning("ignoring Function %s: %s", raw.get("metadata", {}).get("name"), err)
            continue
        fn = fn.model_copy(update={"status": FunctionStatus(**_store_status(raw))})
        status = raw.get("status") or {}
        proxy = proxied.get(fn.name, {})
        target = Target(
            _config(fn.name, fn.spec, LATEST, status.get("codeSha256", ""), settings, proxy)
        )
        target.state, target.state_reason = state_of(status)
        reg.functions[fn.name] = FunctionEntry(fn, target)
    for raw in versions:
        try:
            v = Version.model_validate({**raw, "status": None})
        except ValidationError as err:
            log.warning("ignoring Version %s: %s", raw.get("metadata", {}).get("name"), err)
            continue
        v = v.model_copy(update={"status": VersionStatus(**_store_status(raw))})
        entry = reg.functions.get(v.spec.function)
        if entry is None:
            continue
        entry.versions[v.spec.version] = v
        proxy = proxied.get(v.spec.function, {})
        target = Target(
            _config(
                v.spec.function,
                v.spec.config,
                v.spec.version,
                v.spec.code_sha256,
                settings,
                proxy,
            )
        )
        target.state, target.state_reason = state_of(raw.get("status"))
        entry.targets[v.spec.version] = target
    for raw in aliases:
        try:
            a = Alias.model_validate(_without_bad_triggers(raw))
        except ValidationError as err:
            log.warning("ignoring Alias %s: %s", raw.get("metadata", {}).get("name"), err)
            continue
        entry = reg.functions.get(a.spec.function)
        if entry is not None:
            entry.aliases[a.alias_name] = a
    return reg


def build_sources(cache: dict[str, dict[str, dict[str, Any]]]) -> Manifests:
    """Queues, Streams and EventSourceMappings from raw API objects, as local mode's
    manifests hold them; malformed ones are left out with a warning. Pure."""
    out = Manifests()
    for kind in SOURCE_KINDS:
        for name, raw in sorted(cache.get(kind, {}).items()):
            doc = {"apiVersion": contract.API_VERSION, "kind": kind,
                   "metadata": {"name": name}, "spec": raw.get("spec") or {}}  # fmt: skip
            try:
                obj = parse_document(doc)
            except ValueError as err:
                log.warning("ignoring %s %s: %s", kind, name, err)
                continue
            if isinstance(obj, Queue):
                out.queues[name] = obj
            elif isinstance(obj, Stream):
                out.streams[name] = obj
            elif isinstance(obj, EventSourceMapping):
                out.mappings[name] = obj
    return out


def _store_status(raw: dict[str, Any]) -> dict[str, Any]:
    """What a version runs from the store, from the operator's status (read leniently: a
    status the model refuses gives nothing, and a pool pod is not given that version)."""
    status = raw.get("status") or {}
    key = status.get("codeObject")
    try:
        layers = [LayerObjectStatus.model_validate(x) for x in status.get("layers") or []]
    except ValidationError:
        layers = []
    return {"code_object": key if isinstance(key, str) else None, "layers": layers or None}


def _without_bad_triggers(raw: dict[str, Any]) -> dict[str, Any]:
    """The object without status and without the triggers its model refuses (a cron field
    the CRD's rules cannot check): those show Failed in its status (the operator writes
    it), and the function stays invocable."""
    spec = dict(raw.get("spec") or {})
    events = dict(spec.get("events") or {})
    for name, event in list(events.items()):
        try:
            _TRIGGER.validate_python(event)
        except ValidationError:
            log.warning("%s: trigger %s not served: it is invalid", raw["metadata"]["name"], name)
            del events[name]
    if "events" in spec:
        spec["events"] = events or None
    return {**raw, "spec": spec, "status": None}


_TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)


def endpoints_of(slices: list[dict[str, Any]]) -> dict[str, list[str]]:
    """`function:version` -> ready worker addresses (`ip:port`) from EndpointSlices. Pure."""
    out: dict[str, list[str]] = {}
    for s in slices:
        labels = (s.get("metadata") or {}).get("labels") or {}
        fn, version = labels.get(contract.LABEL_FUNCTION), labels.get(contract.LABEL_VERSION)
        if not fn or not version:
            continue
        version = contract.version_of_label(version)
        ports = [
            p.get("port")
            for p in s.get("ports") or []
            if p.get("name") in (contract.WORKER_PORT_NAME, None, "") and p.get("port")
        ]
        if not ports:
            continue
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for addr in ep.get("addresses") or []:
                out.setdefault(f"{fn}:{version}", []).append(f"{addr}:{ports[0]}")
    return {k: sorted(set(v)) for k, v in out.items()}


def pool_endpoints_of(slices: list[dict[str, Any]]) -> dict[str, list[PoolPod]]:
    """runtime -> ready pool pods, from the pools' EndpointSlices; a runtime whose pool
    has no ready pod maps to []. Pure."""
    out: dict[str, dict[str, PoolPod]] = {}
    for s in slices:
        labels = (s.get("metadata") or {}).get("labels") or {}
        runtime = labels.get(contract.LABEL_POOL)
        if not runtime:
            continue
        pods = out.setdefault(runtime, {})
        ports = [
            p.get("port")
            for p in s.get("ports") or []
            if p.get("name") in (contract.WORKER_PORT_NAME, None, "") and p.get("port")
        ]
        for ep in s.get("endpoints") or [] if ports else []:
            ref = ep.get("targetRef") or {}
            if (ep.get("conditions") or {}).get("ready") is False or ref.get("kind") != "Pod":
                continue
            for addr in (ep.get("addresses") or [])[:1]:
                pod = PoolPod(ref.get("name", ""), ref.get("uid", ""), f"{addr}:{ports[0]}")
                if pod.name and pod.uid:
                    pods[pod.uid] = pod
    return {r: sorted(p.values(), key=lambda p: p.name) for r, p in out.items()}


def lanes_of(slices: list[dict[str, Any]]) -> dict[str, str]:
    """Worker address (`ip:port` of gRPC) -> the address of its invoke lane, for the
    endpoints of slices that list both ports (a pod that declares no lane port is listed in
    a slice of its own without it). Pure."""
    out: dict[str, str] = {}
    for s in slices:
        ports = {p.get("name"): p.get("port") for p in s.get("ports") or [] if p.get("port")}
        grpc_port, lane_port = (
            ports.get(contract.WORKER_PORT_NAME),
            ports.get(contract.WORKER_LANE_PORT_NAME),
        )
        if not grpc_port or not lane_port:
            continue
        for ep in s.get("endpoints") or []:
            for addr in ep.get("addresses") or []:
                out[f"{addr}:{grpc_port}"] = f"{addr}:{lane_port}"
    return out


def beyond_provisioned(peak: int, registry: Registry, function: str, version: str) -> int:
    """The operator's `klambda.io/demand`: environments wanted beyond the provisioned ones
    (the operator adds those itself). Pure."""
    entry = registry.functions.get(function)
    provisioned = provisioned_by_version(entry).get(version, 0) if entry else 0
    return max(0, peak - provisioned)


class ClusterSource:
    """Keeps the invoker's registry and the remote endpoints in step with the API server."""

    def __init__(
        self,
        settings: RouterSettings,
        namespace: str,
        kubeconfig: str | None,
        on_registry: Callable[[Registry], None],
        workers: RemoteWorkers,
        on_sources: Callable[[Manifests], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_sources = on_sources
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.on_registry = on_registry
        self.workers = workers
        self.cache: dict[str, dict[str, dict[str, Any]]] = {
            "Function": {},
            "Version": {},
            "Alias": {},
            "DatabaseProxy": {},
            "EndpointSlice": {},
            "PoolSlice": {},
        }
        self.client: AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.synced = asyncio.Event()
        self.registry = Registry()
        self._synced_kinds: set[str] = set()
        self._snapshots: dict[str, dict[str, bytes]] = {}  # by CodeSha256: they never change
        self._claims: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        config = KubeConfig.from_file(self.kubeconfig) if self.kubeconfig else None
        self.client = (
            AsyncClient(config=config, namespace=self.namespace)
            if config
            else AsyncClient(namespace=self.namespace)
        )
        for kind, res, labels in (
            ("Function", FunctionRes, None),
            ("Version", VersionRes, None),
            ("Alias", AliasRes, None),
            ("DatabaseProxy", DatabaseProxyRes, None),
            ("EndpointSlice", EndpointSlice, {contract.LABEL_FUNCTION: None}),
            ("PoolSlice", EndpointSlice, {contract.LABEL_POOL: None}),
            *(((k, r, None) for k, r in SOURCE_KINDS.items()) if self.on_sources else ()),
        ):
            self._tasks.append(asyncio.create_task(self._follow(kind, res, labels)))
        self._tasks.append(asyncio.create_task(self._write_demand()))

    async def _follow(self, kind: str, res: Any, labels: dict[str, Any] | None) -> None:
        assert self.client is not None
        while True:
            try:
                listing = self.client.list(res, namespace=self.namespace, labels=labels)
                items = {}
                async for obj in listing:
                    raw = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
                    items[raw["metadata"]["name"]] = raw
                self.cache[kind] = items
                self._rebuild(kind)
                rv = listing.resourceVersion
                async for event, obj in self.client.watch(
                    res, namespace=self.namespace, labels=labels, resource_version=rv
                ):
                    raw = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
                    name = raw["metadata"]["name"]
                    if event == "DELETED":
                        self.cache[kind].pop(name, None)
                    else:
                        self.cache[kind][name] = raw
                    self._rebuild(kind)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the API server went away, a 410, ...: start again
                log.warning("watch of %s failed (%s); listing again", kind, err)
                await asyncio.sleep(1.0)

    def _rebuild(self, kind: str) -> None:
        if kind in SOURCE_KINDS:
            if self.on_sources is not None:
                self.on_sources(build_sources(self.cache))
            return
        if kind == "EndpointSlice":
            slices = list(self.cache[kind].values())
            self.workers.set_endpoints(endpoints_of(slices), lanes_of(slices))
        elif kind == "PoolSlice":
            slices = list(self.cache[kind].values())
            self.workers.set_pool_endpoints(pool_endpoints_of(slices), lanes_of(slices))
        else:
            self.registry = build_registry(
                list(self.cache["Function"].values()),
                list(self.cache["Version"].values()),
                list(self.cache["Alias"].values()),
                self.settings,
                list(self.cache["DatabaseProxy"].values()),
                self.namespace,
            )
            self.on_registry(self.registry)
        self._synced_kinds.add(kind)
        if len(self._synced_kinds) == len(self.cache.keys() - SOURCE_KINDS.keys()):
            self.synced.set()

    # ------------------------------------------------------------ the pool's Specialiser

    def _spec_of(self, target: Target) -> tuple[Code, Any] | None:
        """The code of `target` and the object it belongs to (Version, or the Function)."""
        entry = self.registry.functions.get(target.config.function)
        if entry is None:
            return None
        version = target.config.version
        if target.qualifier is not None:  # a temporary tuning copy: not in the cluster
            return None
        if version == LATEST:
            return entry.function.spec.code, entry.function
        v = entry.versions.get(version)
        return (v.spec.config.code, v) if v is not None else None

    def runtime_of(self, target: Target) -> str | None:
        found = self._spec_of(target)
        if found is None or found[0].image is not None or found[0].path is not None:
            return None
        owner = found[1]
        spec = owner.spec.config if isinstance(owner, Version) else owner.spec
        if spec.file_system_configs:  # mounted in its own pods only: a pool pod has none
            return None
        return target.config.runtime

    def _inline(self, target: Target) -> tuple[FunctionConfig, dict[str, bytes]] | None:
        """For inline code: the config with the CodeSha256 of the spec's files, and the
        files (for $LATEST that is the spec's code, as the operator snapshots it: the
        status may lag an edit)."""
        found = self._spec_of(target)
        if found is None or found[0].inline is None:
            return None
        files = codestore.collect(inline=dict(found[0].inline))
        return replace(target.config, code_sha256=codestore.digest(files)), files

    def given_config(self, target: Target) -> FunctionConfig:
        inline = self._inline(target)
        return inline[0] if inline is not None else target.config

    async def code(self, target: Target) -> tuple[FunctionConfig, CodePackage]:
        found = self._spec_of(target)
        if found is None:
            raise CodeUnavailable("the version is gone")
        code, owner = found
        cfg = target.config
        layers = self._layer_objects(cfg, owner)
        if code.s3_key is not None:
            return cfg, CodePackage(code_object=self._code_object(cfg, owner), layer_objects=layers)
        inline = self._inline(target)
        if inline is not None:
            given, files = inline
            if cfg.version != LATEST and given.code_sha256 != cfg.code_sha256:
                raise CodeUnavailable(
                    f"spec.config.code.inline digests to {given.code_sha256}, not codeSha256"
                )
            return given, CodePackage(files=files, layer_objects=layers)
        files = await self._snapshot(cfg.function, cfg.code_sha256)
        return cfg, CodePackage(files=files, layer_objects=layers)

    @staticmethod
    def _code_object(cfg: FunctionConfig, owner: Function | Version) -> str:
        """The store's .zip of the version, from the operator's status: the one of its
        CodeSha256 (a status that lags an edit of $LATEST's object is not used)."""
        key = owner.status.code_object if owner.status else None
        try:
            if key and contract.parse_object_key(key).code_sha256 == cfg.code_sha256:
                return key
        except ValueError:
            pass
        raise CodeUnavailable(f"the store's object of code {cfg.code_sha256} is not known yet")

    @staticmethod
    def _layer_objects(cfg: FunctionConfig, owner: Function | Version) -> tuple[str, ...]:
        """The store's .zips of the version's layers, in order, from the operator's status
        (which names the references it resolved: one that lags an edit is not used)."""
        if not cfg.layers:
            return ()
        found = (owner.status.layers if owner.status else None) or []
        if tuple(f.ref for f in found) != cfg.layers:
            raise CodeUnavailable(f"the layers {', '.join(cfg.layers)} are not resolved yet")
        return tuple(f.object for f in found)

    async def _snapshot(self, function: str, sha: str) -> dict[str, bytes]:
        files = self._snapshots.get(sha)
        if files is not None:
            return files
        assert self.client is not None
        name = contract.snapshot_name(function, sha)
        try:
            cm = await self.client.get(ConfigMap, name, namespace=self.namespace)
        except ApiError as err:
            raise CodeUnavailable(f"ConfigMap {name}: {err.status.message}") from None
        raw = cm.to_dict()
        files = contract.snapshot_files(raw)
        if not files or codestore.digest(files) != sha:
            raise CodeUnavailable(f"ConfigMap {name} does not hold the code {sha}")
        self._snapshots[sha] = files
        return files

    def owner_of(self, target: Target) -> Mapping[str, str] | None:
        found = self._spec_of(target)
        if found is None:
            return None
        owner = found[1]
        return {"kind": owner.kind, "name": owner.metadata.name, "uid": owner.metadata.uid}

    def claim(self, pod: PoolPod, cfg: FunctionConfig, owner: Mapping[str, str]) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = contract.claim_patch(cfg, owner, pod.uid, now)
        task = asyncio.create_task(self._claim(pod, patch))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)

    async def _claim(self, pod: PoolPod, patch: dict[str, Any]) -> None:
        """A specialised pod left in its pool would stay there, ready and counted by the
        pool's ReplicaSet, serving nobody: try for about half a minute."""
        assert self.client is not None
        for attempt in range(CLAIM_ATTEMPTS):
            try:
                await self.client.patch(
                    Pod, pod.name, patch, namespace=self.namespace, patch_type=PatchType.MERGE
                )
                return
            except ApiError as err:
                if err.status.code in (404, 409, 422):  # gone, or another pod of that name
                    log.warning("pool pod %s not relabelled: %s", pod.name, err.status.message)
                    return
                log.warning("relabelling pool pod %s: %s", pod.name, err.status.message)
            except Exception as err:  # the API server is away: try again shortly
                log.warning("relabelling pool pod %s: %s", pod.name, err)
            await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
        log.warning("pool pod %s not relabelled after %d attempts", pod.name, CLAIM_ATTEMPTS)

    async def _write_demand(self) -> None:
        """Every second, write changed demand and last-invoked times as annotations."""
        assert self.client is not None
        while True:
            await asyncio.sleep(1.0)
            for key, d in list(self.workers.demand.items()):
                fn, _, version = key.partition(":")
                state = (
                    beyond_provisioned(d.peak, self.registry, fn, version),
                    round(d.last_invoked),
                )
                d.peak = d.in_flight
                if state == d.written:
                    continue
                res, name = (
                    (FunctionRes, fn) if version == LATEST else (VersionRes, f"{fn}.{version}")
                )
                stamp = datetime.fromtimestamp(d.last_invoked, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                patch = {
                    "metadata": {
                        "annotations": {
                            contract.ANNOTATION_DEMAND: str(state[0]),
                            contract.ANNOTATION_LAST_INVOKED: stamp,
                        }
                    }
                }
                try:
                    await self.client.patch(
                        res, name, patch, namespace=self.namespace, patch_type=PatchType.MERGE
                    )
                    d.written = state
                except ApiError as err:
                    if err.status.code == 404 and d.in_flight == 0:
                        # the function or version is gone: nothing to scale any more
                        self.workers.demand.pop(key, None)
                        continue
                    log.warning("cannot write demand of %s: %s", key, err.status.message)
                except Exception as err:
                    log.warning("cannot write demand of %s: %s", key, err)

    async def stop(self) -> None:
        # a claim cut short would leave its specialised pod in the pool: let them end
        if self._claims:
            await asyncio.wait(list(self._claims), timeout=CLAIM_DRAIN_S)
        for t in [*self._tasks, *self._claims]:
            t.cancel()
        for t in [*self._tasks, *self._claims]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.client is not None:
            await self.client.close()
