"""Reconcile on state: one idempotent `reconcile_*` per kind, whatever triggered it.

Each reads its object as it is now (by name) and walks

    get -> create if missing -> check ownership -> compare with the builder -> apply
        -> status (state, conditions with observedGeneration) through the status subresource

so a second call with nothing changed writes nothing. A resource that cannot be realised
ends in a `Failure` (or an API server refusal of what it asks for): the status says
Failed with the reason, a Warning Event is posted when the reason is new, and the next
resync tries again. Transient API errors propagate to the caller (`triggers`), which logs
them and leaves the retry to the next event or resync.

Which objects to reconcile when (dependents, the resync loop) is `triggers`' business.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from klambda import codestore, contract
from klambda.api import Alias, AliasSpec, Function, Version, limits, rules
from klambda.api import layer as api_layer
from klambda.api.databaseproxy import DatabaseProxy, DatabaseProxySpec
from klambda.api.layer import LayerSpec
from klambda.api.manifest import describe_errors
from klambda.api.triggers import declared_status
from klambda.dbproxy import environments
from lightkube import ApiError
from pydantic import BaseModel, ValidationError

from klambda_operator import (
    builders,
    conditions,
    constants,
    layers,
    names,
    scaling,
    snapshots,
)
from klambda_operator.context import Context
from klambda_operator.drift import differences
from klambda_operator.errors import Failure
from klambda_operator.store import Store, Stored, StoreError, object_key

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Body = dict[str, Any]


# ---------------------------------------------------------------- small pure helpers


def parse(model: type[M], body: Mapping[str, Any]) -> M:
    """The object as a klambda.api model; Failure(InvalidSpec) naming the fields."""
    try:
        return model.model_validate(
            {k: body.get(k) for k in ("apiVersion", "kind", "metadata")}
            | {"spec": body.get("spec")}
        )
    except ValidationError as err:
        raise Failure("InvalidSpec", "; ".join(describe_errors(err))) from None


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lambda_time(when: datetime) -> str:
    """Lambda's LastModified format: 2024-01-31T12:00:00.000+0000."""
    return (
        when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    )


def annotations_of(body: Mapping[str, Any]) -> dict[str, str]:
    return dict((body.get("metadata") or {}).get("annotations") or {})


def demand_of(body: Mapping[str, Any], reserved: int | None, provisioned: int) -> scaling.Demand:
    """The router's annotations on a Function or Version, read leniently: a value that
    does not parse counts as absent (and is logged), it never stops a reconcile."""
    ann = annotations_of(body)
    raw = ann.get(constants.ANNOTATION_DEMAND, "0")
    try:
        demand = max(int(raw), 0)
    except ValueError:
        log.warning(
            "%s: annotation %s=%r is not an integer",
            body["metadata"]["name"],
            constants.ANNOTATION_DEMAND,
            raw,
        )
        demand = 0
    return scaling.Demand(
        demand=demand,
        provisioned=provisioned,
        reserved=reserved,
        last_invoked=parse_time(ann.get(constants.ANNOTATION_LAST_INVOKED)),
    )


def being_deleted(body: Mapping[str, Any]) -> bool:
    """Deleted, its dependents going (foreground deletion): recreating them would fight
    the garbage collector, so a reconcile leaves it alone."""
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def owner_refs(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((body.get("metadata") or {}).get("ownerReferences") or [])


def controlled_by(body: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    return any(r.get("uid") == owner["uid"] and r.get("controller") for r in owner_refs(body))


def routing_text(version: str, additional: str | None, weight: float) -> str:
    """`1: 90%, 2: 10%` or `1: 100%`."""
    if additional is None:
        return f"{version}: 100%"
    return f"{version}: {(1 - weight) * 100:g}%, {additional}: {weight * 100:g}%"


def status_differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(
        (key in old) if value is None else old.get(key) != value for key, value in new.items()
    )


# ---------------------------------------------------------------- shared steps


async def write_status(ctx: Context, kind: str, body: Mapping[str, Any], status: Body) -> None:
    old = body.get("status") or {}
    if status_differs(old, status):
        meta = body["metadata"]
        await ctx.kube.patch_status(kind, meta["name"], meta["namespace"], status)


async def fail(ctx: Context, body: Mapping[str, Any], failure: Failure) -> None:
    """Log, and post a Warning Event unless the status already reports this reason."""
    old = body.get("status") or {}
    ready = conditions.get(old.get("conditions") or [], conditions.READY) or {}
    meta = body["metadata"]
    if old.get("state") != "Failed" or ready.get("reason") != failure.reason:
        log.warning("%s %s/%s: %s", body["kind"], meta["namespace"], meta["name"], failure)
        await ctx.kube.event(body, "Warning", failure.reason, failure.message)


def failed_conditions(failure: Failure, generation: int | None) -> list[Body]:
    out = [
        conditions.condition(conditions.READY, False, failure.reason, failure.message, generation)
    ]
    if failure.condition is not None:
        out.append(
            conditions.condition(
                failure.condition, False, failure.reason, failure.message, generation
            )
        )
    return out


# The API server refusing what a resource asks for (an invalid object, a quota, RBAC) is
# the resource's failure, reported like one; other API errors are transient.
REFUSED = (400, 403, 413, 422)


async def attempt(step: Awaitable[None]) -> Failure | None:
    """Run one reconcile's steps; the Failure that stopped them, if any."""
    try:
        await step
    except Failure as failure:
        return failure
    except ApiError as err:
        if err.status.code not in REFUSED:
            raise
        return Failure("Refused", f"the API server refused a change: {err.status.message}")
    return None


async def adopt(ctx: Context, body: Mapping[str, Any], owner: Mapping[str, Any]) -> None:
    """Make `owner` an owner of `body` (so deleting the Function deletes it too)."""
    refs = owner_refs(body)
    if any(r.get("uid") == owner["metadata"]["uid"] for r in refs):
        return
    ref = builders.owner_reference(owner, controller=not any(r.get("controller") for r in refs))
    meta = body["metadata"]
    await ctx.kube.patch_metadata(
        body["kind"],
        meta["name"],
        meta["namespace"],
        # resourceVersion: refused (and retried) if someone else changed the list meanwhile
        {"resourceVersion": meta["resourceVersion"], "ownerReferences": [*refs, ref]},
    )


async def ensure(ctx: Context, desired: Body, live: Body | None, owner: Mapping[str, Any]) -> None:
    """Create `desired` if missing; refuse an object someone else controls; re-apply it
    when the live object no longer holds what the builder says (drift)."""
    kind, name = desired["kind"], desired["metadata"]["name"]
    if live is None:
        log.info("creating %s %s/%s", kind, desired["metadata"]["namespace"], name)
        await ctx.kube.apply(desired)
        return
    if not controlled_by(live, owner):
        raise Failure(
            "NotOwned",
            f"{kind} {name} exists and is not controlled by {owner['kind']} {owner['name']}: "
            "delete or rename it",
            conditions.WORKLOAD_READY,
        )
    drift = differences(desired, live)
    if drift:
        log.info("%s %s differs at %s: applying", kind, name, ", ".join(drift[:5]))
        await ctx.kube.apply(desired)


def pooled(ctx: Context, work: builders.Workload) -> bool:
    """Whether the version's on-demand environments come from the warm pool: a pool is
    kept (pool_size > 0) and can run its code (a snapshot or a .zip of the store, which
    pool pods download: not an image), and no file system (a pool pod's volumes are fixed
    before it knows its function)."""
    return (
        ctx.settings.pool_size > 0
        and (work.snapshot is not None or work.code_object is not None)
        and not work.spec.file_system_configs
    )


async def ensure_workload(
    ctx: Context, work: builders.Workload, want: scaling.Demand, now: datetime
) -> scaling.Decision:
    """The Deployment (replicas from the scaling decision) and Service of a version, and
    its specialised pool pods (deleted when idle or stale)."""
    want = replace(want, pooled=pooled(ctx, work))
    live = await ctx.kube.get("Deployment", work.name, work.namespace)
    current, clock = 0, None
    if live is not None:
        current = int((live.get("spec") or {}).get("replicas") or 0)
        clock = parse_time(annotations_of(live).get(constants.ANNOTATION_SCALE_UP_CLOCK))
    decision = scaling.decide(want, current, clock, now, ctx.policy)
    stamp = format_time(decision.clock) if decision.clock is not None else None
    deployment = builders.build_deployment(work, ctx.settings, decision.replicas, stamp)
    await ensure(ctx, deployment, live, work.owner)
    service = builders.build_service(work)
    await ensure(ctx, service, await ctx.kube.get("Service", work.name, work.namespace), work.owner)
    kept = await reclaim_specialised(ctx, work, want, now)
    if kept:
        decision = replace(decision, message=f"{decision.message}; {kept} from the pool")
    return decision


async def reclaim_specialised(
    ctx: Context, work: builders.Workload, want: scaling.Demand, now: datetime
) -> int:
    """Delete the version's specialised pool pods that should go (idle, stale, stopped);
    the number kept. They are never returned to the pool."""
    selector = {
        constants.LABEL_FUNCTION: work.function,
        constants.LABEL_VERSION: names.version_label(work.version),
        constants.LABEL_COMPONENT: constants.COMPONENT_SPECIALISED,
    }
    pods = [p for p in await ctx.kube.list("Pod", work.namespace, selector) if not being_deleted(p)]
    found = [
        scaling.SpecialisedPod(
            p["metadata"]["name"],
            annotations_of(p).get(constants.ANNOTATION_CONFIG_SHA256, ""),
            parse_time(annotations_of(p).get(constants.ANNOTATION_CLAIMED_AT)),
        )
        for p in pods
    ]
    digest = contract.config_digest(builders.function_config(work, ctx.settings))
    going = scaling.specialised_to_delete(found, want, digest, now, ctx.policy)
    for name, why in going:
        log.info("deleting specialised pod %s/%s of %s: %s", work.namespace, name, work.name, why)
        await ctx.kube.delete("Pod", name, work.namespace)
    return len(found) - len(going)


def workload_conditions(
    work: builders.Workload, decision: scaling.Decision, gen: int | None
) -> list[Body]:
    return [
        conditions.condition(
            conditions.WORKLOAD_READY, True, "Applied", f"Deployment and Service {work.name}", gen
        ),
        conditions.condition(
            conditions.SCALED,
            decision.reason != "RateLimited",
            decision.reason,
            decision.message,
            gen,
        ),
    ]


async def ensure_snapshot(
    ctx: Context, snapshot: snapshots.Snapshot, namespace: str, function: Mapping[str, Any]
) -> None:
    """The code ConfigMap, owned by the Function (not controlled: Versions share it)."""
    live = await ctx.kube.get("ConfigMap", snapshot.name, namespace)
    if live is None:
        owner = builders.owner_reference(function, controller=False)
        log.info("creating code snapshot %s/%s", namespace, snapshot.name)
        await ctx.kube.apply(builders.build_code_configmap(snapshot, namespace, owner))
        return
    check_snapshot(live, snapshot.function, snapshot.sha256)
    await adopt(ctx, live, function)


def check_snapshot(live: Mapping[str, Any], function: str, sha: str) -> None:
    labels = (live.get("metadata") or {}).get("labels") or {}
    if (
        labels.get(constants.LABEL_FUNCTION) != function
        or annotations_of(live).get(constants.ANNOTATION_CODE_SHA256) != sha
    ):
        raise Failure(
            "SnapshotConflict",
            f"ConfigMap {live['metadata']['name']} exists and is not the code snapshot "
            f"{sha} of function {function}",
            conditions.CODE_READY,
        )


def snapshot_items(live: Mapping[str, Any]) -> list[dict[str, str]]:
    try:
        keys: dict[str, str] = json.loads(
            annotations_of(live).get(constants.ANNOTATION_CODE_FILES) or "{}"
        )
    except ValueError:
        keys = {}
    if not keys:
        keys = {k: k for k in [*(live.get("data") or {}), *(live.get("binaryData") or {})]}
    return [{"key": k, "path": keys[k]} for k in sorted(keys)]


async def versions_of(ctx: Context, namespace: str, function: str) -> list[Body]:
    return [
        v
        for v in await ctx.kube.list("Version", namespace)
        if (v.get("spec") or {}).get("function") == function
    ]


def alias_spec(body: Mapping[str, Any]) -> AliasSpec | None:
    """An Alias's spec as the model, None for one the API server should have refused."""
    try:
        return AliasSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None


async def aliases_of(ctx: Context, namespace: str, function: str) -> list[Body]:
    return [
        a
        for a in await ctx.kube.list("Alias", namespace)
        if (a.get("spec") or {}).get("function") == function
    ]


async def proxy_environment(ctx: Context, namespace: str, function: str) -> dict[str, str]:
    """libpq's variables of the DatabaseProxy that serves `function` ({} for none), as the
    router computes them for the pool pods it specialises. Read leniently: a proxy being
    deleted or one its model refuses serves no function."""
    specs: dict[str, DatabaseProxySpec] = {}
    for raw in await ctx.kube.list("DatabaseProxy", namespace):
        if being_deleted(raw):
            continue
        try:
            specs[raw["metadata"]["name"]] = DatabaseProxySpec.model_validate(raw.get("spec") or {})
        except ValidationError:
            continue
    found = environments(specs, lambda proxy: names.dbproxy_host(proxy, namespace))
    return found.get(function, {})


# ---------------------------------------------------------------- Function


async def reconcile_function(ctx: Context, namespace: str, name: str) -> Body | None:
    """Make a Function's `$LATEST` true; the Function as it was read (None if gone)."""
    async with ctx.lock("Function", namespace, name):
        body = await ctx.kube.get("Function", name, namespace)
        if body is None or being_deleted(body):
            return None
        now = datetime.now(UTC)
        meta, old = body["metadata"], body.get("status") or {}
        gen = meta.get("generation")
        status: Body = {
            "observedGeneration": gen,
            "codeSha256": None,
            "codeObject": None,
            "layers": None,
        }
        new: list[Body] = []
        failure = await attempt(realise_function(ctx, body, status, new, now))
        if failure is None:
            status.update(state="Active", stateReason=None)
        else:
            await fail(ctx, body, failure)
            status.update(state="Failed", stateReason=failure.message)
            new.extend(failed_conditions(failure, gen))
        same = old.get("observedGeneration") == gen and old.get("lastModified")
        status["lastModified"] = old["lastModified"] if same else lambda_time(now)
        status["conditions"] = conditions.merge(old.get("conditions") or [], new, now)
        # triggers: what the object declares, for the routers to serve
        status.update(declared_status(body["spec"], f"/url/{meta['name']}/"))
        await write_status(ctx, "Function", body, status)
        return body


@dataclass(frozen=True)
class CodeSource:
    """A version's code as its pods get it: a ConfigMap snapshot, a .zip of the store, or
    an image (neither)."""

    sha256: str
    snapshot: snapshots.Snapshot | None = None
    stored: Stored | None = None

    @property
    def unzipped(self) -> int:
        if self.stored is not None:
            return self.stored.facts.unzipped
        return sum(len(c) for c in self.snapshot.files.values()) if self.snapshot else 0

    def note(self, image: str | None) -> str:
        if self.snapshot is not None:
            return f"ConfigMap {self.snapshot.name}"
        if self.stored is not None:
            return f"store object {self.stored.key}"
        return f"image {image}"


def need_store(ctx: Context, field: str) -> Store:
    if ctx.store is None:
        raise Failure(
            "NoStore",
            f"{field}: the cluster has no store of code and layers (the chart's store.enabled)",
            conditions.CODE_READY,
        )
    return ctx.store


async def stored(ctx: Context, kind: str, key: str, field: str) -> Stored:
    """The .zip at `key` of the store, under its digest; Failure naming `field`."""
    try:
        return await need_store(ctx, field).take(kind, key)
    except StoreError as err:
        raise Failure("CodeNotFound", f"{field}: {err}", conditions.CODE_READY) from None


async def function_code(ctx: Context, fn: Function, namespace: str) -> CodeSource:
    """Where `$LATEST`'s code comes from, with its CodeSha256."""
    code = fn.spec.code
    if code.inline is not None:
        snap = snapshots.take(fn.name, snapshots.inline_files(code.inline))
        return CodeSource(snap.sha256, snapshot=snap)
    if code.config_map is not None:
        source = await ctx.kube.get("ConfigMap", code.config_map, namespace)
        if source is None:
            raise Failure(
                "CodeNotFound",
                f"spec.code.configMap: ConfigMap {code.config_map!r} does not exist in "
                f"namespace {namespace}",
                conditions.CODE_READY,
            )
        snap = snapshots.take(fn.name, snapshots.snapshot_files(source))
        return CodeSource(snap.sha256, snapshot=snap)
    if code.s3_key is not None:
        obj = await stored(ctx, "code", code.s3_key, "spec.code.s3Key")
        return CodeSource(obj.facts.code_sha256, stored=obj)
    if code.image is not None:
        return CodeSource(snapshots.image_sha256(code.image))
    raise Failure(
        "CodeUnsupported",
        "spec.code.path: a local folder works in local mode only; in a cluster use "
        "spec.code.inline, configMap, s3Key or image",
        conditions.CODE_READY,
    )


def store_status(code: CodeSource, found: list[layers.LayerObject]) -> Body:
    """What a version runs from the store, in its status: routers give it to pool pods."""
    return {
        "codeObject": code.stored.key if code.stored else None,
        "layers": [{"ref": f.ref, "object": f.key, "size": f.unzipped} for f in found] or None,
    }


async def function_layers(
    ctx: Context, namespace: str, refs: list[str], code: CodeSource
) -> list[layers.LayerObject]:
    """The store objects of a function's layers, in order; Failure naming `spec.layers[i]`,
    or Lambda's message when code and layers unpack to more than 250 MB."""
    if not refs:
        return []
    need_store(ctx, "spec.layers")
    bodies: dict[str, Body] = {}
    for ref in refs:
        try:
            name = api_layer.parse_ref(ref).name
        except ValueError:
            continue  # layers.find names it
        if name not in bodies and (body := await ctx.kube.get("Layer", name, namespace)):
            bodies[name] = body
    found, problem = layers.find(refs, bodies)
    if problem is not None:
        raise Failure("LayerNotFound", problem, conditions.CODE_READY)
    try:
        api_layer.check_size(code.unzipped, [lay.unzipped for lay in found])
    except ValueError as err:
        raise Failure("CodeTooLarge", str(err), conditions.CODE_READY) from None
    return found


async def realise_function(
    ctx: Context, body: Body, status: Body, new: list[Body], now: datetime
) -> None:
    meta = body["metadata"]
    namespace, name, gen = meta["namespace"], meta["name"], meta.get("generation")
    fn = parse(Function, body)
    source = await function_code(ctx, fn, namespace)
    sha, snap = source.sha256, source.snapshot
    status["codeSha256"] = sha
    if snap is not None:
        await ensure_snapshot(ctx, snap, namespace, body)
    found = await function_layers(ctx, namespace, fn.spec.layers, source)
    status.update(store_status(source, found))
    code_note = source.note(fn.spec.code.image)
    new.append(conditions.condition(conditions.CODE_READY, True, "SnapshotReady", code_note, gen))
    work = builders.Workload(
        namespace=namespace,
        function=name,
        version=constants.LATEST,
        spec=fn.spec,
        code_sha256=sha,
        owner=builders.owner_reference(body),
        snapshot=snap.name if snap else None,
        items=snap.items() if snap else [],
        code_object=source.stored.key if source.stored else None,
        layer_objects=tuple(lay.key for lay in found),
        proxy_environment=await proxy_environment(ctx, namespace, name),
    )
    want = demand_of(body, fn.spec.reserved_concurrency, 0)
    decision = await ensure_workload(ctx, work, want, now)
    new.extend(workload_conditions(work, decision, gen))
    new.append(
        conditions.condition(conditions.READY, True, "Active", f"$LATEST runs {code_note}", gen)
    )
    await prune_snapshots(ctx, namespace, name, {snap.name} if snap else set())


async def prune_snapshots(ctx: Context, namespace: str, function: str, keep: set[str]) -> None:
    """Delete code snapshots that neither `$LATEST` nor any Version of the function runs."""
    for v in await versions_of(ctx, namespace, function):
        sha = (v.get("spec") or {}).get("codeSha256")
        if sha:
            keep.add(names.snapshot_name(function, sha))
    selector = {
        constants.LABEL_FUNCTION: function,
        constants.LABEL_COMPONENT: constants.COMPONENT_CODE,
        constants.LABEL_MANAGED_BY: constants.COMPONENT,
    }
    for cm in await ctx.kube.list("ConfigMap", namespace, selector):
        cm_name = cm["metadata"]["name"]
        if cm_name not in keep:
            log.info("deleting unused code snapshot %s/%s", namespace, cm_name)
            await ctx.kube.delete("ConfigMap", cm_name, namespace)


# ---------------------------------------------------------------- Layer


async def layer_content(ctx: Context, spec: LayerSpec) -> Stored:
    """The .zip a Layer's content makes, in the store under its digest."""
    content = spec.content
    store = need_store(ctx, "spec.content")
    if content.inline is not None:
        files = {name: text.encode() for name, text in content.inline.items()}
        bad = [name for name in files if not codestore.safe_path(name)]
        if bad or not files:
            raise Failure(
                "InvalidSpec",
                f"spec.content.inline: file name {bad[0]!r} must be a relative path"
                if bad
                else "spec.content.inline: holds no files",
            )
        try:
            return await store.put("layers", codestore.zip_files(files))
        except StoreError as err:
            raise Failure("StoreUnavailable", f"spec.content.inline: {err}") from None
    if content.s3_key is not None:
        return await stored(ctx, "layers", content.s3_key, "spec.content.s3Key")
    raise Failure(
        "CodeUnsupported",
        "spec.content.path: a local folder works in local mode only; in a cluster use "
        "spec.content.inline or s3Key (`klambda layer publish NAME DIR --kubeconfig ...`)",
    )


async def reconcile_layer(ctx: Context, namespace: str, name: str) -> Body | None:
    """Publish a Layer's content as a version when no version holds it; the Layer as it
    was read (None if gone). Versions are never changed or removed."""
    async with ctx.lock("Layer", namespace, name):
        body = await ctx.kube.get("Layer", name, namespace)
        if body is None or being_deleted(body):
            return None
        now = datetime.now(UTC)
        gen = body["metadata"].get("generation")
        old = body.get("status") or {}
        status: Body = {"observedGeneration": gen}
        new: list[Body] = []
        try:
            spec = parse(api_layer.Layer, body).spec
            obj = await layer_content(ctx, spec)
            versions, number = layers.with_version(
                old.get("versions") or [], obj, spec.description, format_time(now)
            )
            status.update(
                versions=versions,
                latestVersion=max(int(v["version"]) for v in versions),
                state="Active",
                stateReason=None,
            )
            note = f"version {number} is {obj.key}"
            new.append(conditions.condition(conditions.READY, True, "Published", note, gen))
        except Failure as failure:
            await fail(ctx, body, failure)
            status.update(state="Failed", stateReason=failure.message)
            new.extend(failed_conditions(failure, gen))
        status["conditions"] = conditions.merge(old.get("conditions") or [], new, now)
        await write_status(ctx, "Layer", body, status)
        return body


async def layer_users(ctx: Context, namespace: str, layer: str) -> list[tuple[str, str]]:
    """(kind, name) of the Functions and Versions of a namespace that name `layer`."""
    found: list[tuple[str, str]] = []
    for kind in ("Function", "Version"):
        for body in await ctx.kube.list(kind, namespace):
            spec = body.get("spec") or {}
            refs = (spec.get("config") or spec).get("layers") or []
            if any(str(r).rsplit(":", 2)[-2:][0] == layer for r in refs):
                found.append((kind, body["metadata"]["name"]))
    return found


# ---------------------------------------------------------------- Version


async def reconcile_version(ctx: Context, namespace: str, name: str) -> Body | None:
    """Make a Version's Deployment true; the Version as it was read (None if gone)."""
    async with ctx.lock("Version", namespace, name):
        body = await ctx.kube.get("Version", name, namespace)
        if body is None or being_deleted(body):
            return None
        now = datetime.now(UTC)
        gen = body["metadata"].get("generation")
        old = body.get("status") or {}
        status: Body = {"observedGeneration": gen, "codeObject": None, "layers": None}
        new: list[Body] = []
        failure = await attempt(realise_version(ctx, body, status, new, now))
        if failure is None:
            status["state"] = "Active"
        else:
            await fail(ctx, body, failure)
            status["state"] = "Failed"
            new.extend(failed_conditions(failure, gen))
        status["conditions"] = conditions.merge(old.get("conditions") or [], new, now)
        await write_status(ctx, "Version", body, status)
        return body


async def version_code(
    ctx: Context, version: Version, namespace: str, function: Body
) -> tuple[str | None, list[dict[str, str]]]:
    """(snapshot name, volume items) of a Version's exact code, rebuilding a missing
    snapshot from its source when the source still digests to the Version's codeSha256."""
    code, sha, fn = version.spec.config.code, version.spec.code_sha256, version.spec.function
    if code.image is not None or code.s3_key is not None:
        return None, []
    if code.path is not None:
        raise Failure(
            "CodeUnsupported",
            "spec.config.code.path: a local folder works in local mode only",
            conditions.CODE_READY,
        )
    inline = snapshots.take(fn, snapshots.inline_files(code.inline)) if code.inline else None
    if inline is not None and inline.sha256 != sha:
        raise Failure(
            "CodeMismatch",
            f"spec.codeSha256 is {sha} but spec.config.code.inline digests to {inline.sha256}",
            conditions.CODE_READY,
        )
    snap_name = names.snapshot_name(fn, sha)
    live = await ctx.kube.get("ConfigMap", snap_name, namespace)
    if live is not None:
        check_snapshot(live, fn, sha)
        await adopt(ctx, live, function)
        return snap_name, snapshot_items(live)
    snap = inline
    if snap is None:
        source = await ctx.kube.get("ConfigMap", code.config_map or "", namespace)
        if source is None:
            raise Failure(
                "CodeNotFound",
                f"the code snapshot {snap_name} of codeSha256 {sha} does not exist and "
                f"ConfigMap {code.config_map!r} (spec.config.code.configMap) is gone",
                conditions.CODE_READY,
            )
        snap = snapshots.take(fn, snapshots.snapshot_files(source))
        if snap.sha256 != sha:
            raise Failure(
                "CodeNotFound",
                f"the code snapshot {snap_name} of codeSha256 {sha} does not exist and "
                f"ConfigMap {code.config_map!r} now holds other code ({snap.sha256})",
                conditions.CODE_READY,
            )
    await ensure_snapshot(ctx, snap, namespace, function)
    return snap.name, snap.items()


async def version_object(ctx: Context, version: Version) -> CodeSource:
    """A Version's .zip in the store: the one its codeSha256 names (what `spec.code.s3Key`
    held when it was published, whatever that key holds now)."""
    sha = version.spec.code_sha256
    try:
        hex_ = base64.b64decode(sha, validate=True).hex()
    except ValueError:
        raise Failure(
            "CodeMismatch", f"spec.codeSha256 {sha!r} is not base64", conditions.CODE_READY
        ) from None
    obj = await stored(ctx, "code", object_key("code", hex_), "spec.codeSha256")
    if obj.facts.code_sha256 != sha:
        raise Failure(
            "CodeMismatch",
            f"spec.codeSha256: the store's {obj.key} digests to {obj.facts.code_sha256}",
            conditions.CODE_READY,
        )
    return CodeSource(sha, stored=obj)


async def realise_version(
    ctx: Context, body: Body, status: Body, new: list[Body], now: datetime
) -> None:
    namespace, gen = body["metadata"]["namespace"], body["metadata"].get("generation")
    version = parse(Version, body)
    fn_name = version.spec.function
    function = await ctx.kube.get("Function", fn_name, namespace)
    if function is None:
        raise Failure("FunctionNotFound", f"spec.function: Function {fn_name!r} does not exist")
    await adopt(ctx, body, function)
    snap_name, items = await version_code(ctx, version, namespace, function)
    code = version.spec.config.code
    source = CodeSource(version.spec.code_sha256)
    if code.s3_key is not None:
        source = await version_object(ctx, version)
    elif snap_name and version.spec.config.layers:  # its files count toward the limit
        live = await ctx.kube.get("ConfigMap", snap_name, namespace) or {}
        files = contract.snapshot_files(live)
        source = CodeSource(version.spec.code_sha256, snapshots.Snapshot(fn_name, "", files))
    code_note = f"ConfigMap {snap_name}" if snap_name else source.note(code.image)
    found = await function_layers(ctx, namespace, version.spec.config.layers, source)
    status.update(store_status(source, found))
    new.append(conditions.condition(conditions.CODE_READY, True, "SnapshotReady", code_note, gen))
    aliases = [a for a in map(alias_spec, await aliases_of(ctx, namespace, fn_name)) if a]
    provisioned = rules.provisioned_by_version([version.spec], aliases).get(version.spec.version, 0)
    work = builders.Workload(
        namespace=namespace,
        function=fn_name,
        version=version.spec.version,
        spec=version.spec.config,
        code_sha256=version.spec.code_sha256,
        owner=builders.owner_reference(body),
        snapshot=snap_name,
        items=items,
        code_object=source.stored.key if source.stored else None,
        layer_objects=tuple(lay.key for lay in found),
        provisioned=provisioned > 0,
        proxy_environment=await proxy_environment(ctx, namespace, fn_name),
    )
    # reserved concurrency is the function's, not the version's snapshot of it
    reserved = (function.get("spec") or {}).get("reservedConcurrency")
    want = demand_of(body, reserved if isinstance(reserved, int) else None, provisioned)
    decision = await ensure_workload(ctx, work, want, now)
    new.extend(workload_conditions(work, decision, gen))
    note = f"version {version.spec.version} runs {code_note}"
    new.append(conditions.condition(conditions.READY, True, "Active", note, gen))


# ---------------------------------------------------------------- Alias


async def reconcile_alias(ctx: Context, namespace: str, name: str) -> Body | None:
    """Check an Alias against the Versions that exist; the Alias read (None if gone)."""
    async with ctx.lock("Alias", namespace, name):
        body = await ctx.kube.get("Alias", name, namespace)
        if body is None or being_deleted(body):
            return None
        now = datetime.now(UTC)
        gen = body["metadata"].get("generation")
        old = body.get("status") or {}
        status: Body = {"observedGeneration": gen, "routing": None}
        new: list[Body] = []
        failure = await attempt(realise_alias(ctx, body, status, new))
        if failure is None:
            status["state"] = "Active"
        else:
            await fail(ctx, body, failure)
            status.update(state="Failed", routing=None)
            new.extend(failed_conditions(failure, gen))
        status["conditions"] = conditions.merge(old.get("conditions") or [], new, now)
        # triggers: what the object declares, for the routers to serve
        fn, _, alias = body["metadata"]["name"].partition(".")
        status.update(declared_status(body["spec"], f"/url/{fn}:{alias}/"))
        await write_status(ctx, "Alias", body, status)
        return body


async def realise_alias(ctx: Context, body: Body, status: Body, new: list[Body]) -> None:
    namespace, gen = body["metadata"]["namespace"], body["metadata"].get("generation")
    spec = parse(Alias, body).spec
    function = await ctx.kube.get("Function", spec.function, namespace)
    if function is None:
        raise Failure(
            "FunctionNotFound", f"spec.function: Function {spec.function!r} does not exist"
        )
    await adopt(ctx, body, function)
    additional = spec.routing.additional_version if spec.routing else None
    published = [
        str((v.get("spec") or {}).get("version"))
        for v in await versions_of(ctx, namespace, spec.function)
    ]
    try:
        rules.check_alias_targets(spec, published)
    except rules.RuleError as err:
        raise Failure("VersionNotFound", str(err)) from None
    if spec.provisioned_concurrency and spec.version == constants.LATEST:
        raise Failure(
            "ProvisionedConcurrencyOnLatest",
            "spec.provisionedConcurrency: provisioned concurrency needs a published version, "
            "not $LATEST",
        )
    routing = routing_text(spec.version, additional, spec.routing.weight if spec.routing else 0)
    status["routing"] = routing
    new.append(conditions.condition(conditions.READY, True, "Resolved", f"routes {routing}", gen))


def alias_targets(spec: Mapping[str, Any]) -> list[str]:
    """The published versions an alias spec points to (for provisioned concurrency)."""
    routing = spec.get("routing") or {}
    out = []
    for version in (spec.get("version"), routing.get("additionalVersion")):
        if isinstance(version, str) and version != constants.LATEST:
            out.append(version)
    return out


# ---------------------------------------------------------------- DatabaseProxy


async def reconcile_database_proxy(ctx: Context, namespace: str, name: str) -> Body | None:
    """Make a DatabaseProxy's ConfigMap, Deployment and Service true; the proxy read (None
    if gone). Its state is Active once its PgBouncer pod is ready, Pending until then."""
    async with ctx.lock("DatabaseProxy", namespace, name):
        body = await ctx.kube.get("DatabaseProxy", name, namespace)
        if body is None or being_deleted(body):
            return None
        now = datetime.now(UTC)
        gen = body["metadata"].get("generation")
        old = body.get("status") or {}
        status: Body = {"observedGeneration": gen, "endpoint": None}
        new: list[Body] = []
        failure = await attempt(realise_proxy(ctx, body, status, new))
        if failure is not None:
            await fail(ctx, body, failure)
            status.update(state="Failed", stateReason=failure.message, endpoint=None)
            new.extend(failed_conditions(failure, gen))
        status["conditions"] = conditions.merge(old.get("conditions") or [], new, now)
        await write_status(ctx, "DatabaseProxy", body, status)
        return body


async def realise_proxy(ctx: Context, body: Body, status: Body, new: list[Body]) -> None:
    meta = body["metadata"]
    namespace, gen = meta["namespace"], meta.get("generation")
    proxy = builders.Proxy(
        namespace, meta["name"], parse(DatabaseProxy, body).spec, builders.owner_reference(body)
    )
    deployment = None
    for desired in (
        builders.build_proxy_configmap(proxy),
        builders.build_proxy_deployment(proxy, ctx.settings),
        builders.build_proxy_service(proxy),
    ):
        live = await ctx.kube.get(desired["kind"], proxy.object_name, namespace)
        await ensure(ctx, desired, live, proxy.owner)
        if desired["kind"] == "Deployment":
            deployment = live  # its status as of now; a change of it reconciles again
    new.append(
        conditions.condition(
            conditions.WORKLOAD_READY,
            True,
            "Applied",
            f"ConfigMap, Deployment and Service {proxy.object_name}",
            gen,
        )
    )
    ready, reason, message = builders.proxy_availability(deployment)
    endpoint = f"{proxy.host}:{proxy.spec.port}"
    if ready:
        message = f"{message} at {endpoint}"
    new.append(conditions.condition(conditions.READY, ready, reason, message, gen))
    status.update(
        state="Active" if ready else "Pending",
        stateReason=None if ready else message,
        endpoint=endpoint,
    )


# ---------------------------------------------------------------- the warm pools


def pool_runtimes(functions: list[Body]) -> set[str]:
    """The runtimes a namespace's warm pools are for: those of its Functions whose code a
    pool pod can run (not images). Read leniently: a malformed Function counts for none."""
    out = set()
    for fn in functions:
        spec = fn.get("spec") or {}
        runtime, code = spec.get("runtime"), spec.get("code") or {}
        if isinstance(runtime, str) and not code.get("image") and not being_deleted(fn):
            out.add(runtime)
    return out


async def reconcile_pools(ctx: Context, namespace: str) -> None:
    """A pool Deployment and Service per runtime the namespace's Functions use (none when
    pool_size is 0); pools of runtimes no longer used are deleted (their unclaimed pods
    with them; specialised pods are not theirs any more)."""
    async with ctx.lock("Pool", namespace, ""):
        wanted: set[str] = set()
        if ctx.settings.pool_size > 0:
            wanted = pool_runtimes(await ctx.kube.list("Function", namespace))
        for runtime in sorted(wanted):
            for desired in (
                builders.build_pool_deployment(namespace, runtime, ctx.settings),
                builders.build_pool_service(namespace, runtime),
            ):
                name = desired["metadata"]["name"]
                live = await ctx.kube.get(desired["kind"], name, namespace)
                if live is not None and not ours(live):
                    log.warning(
                        "%s %s/%s exists and is not klambda's: the %s pool is left out",
                        desired["kind"], namespace, name, runtime,
                    )  # fmt: skip
                    break
                if live is None or differences(desired, live):
                    log.info(
                        "applying the %s pool's %s %s/%s", runtime, desired["kind"], namespace, name
                    )
                    await ctx.kube.apply(desired)
        selector = {
            constants.LABEL_COMPONENT: constants.COMPONENT_POOL,
            constants.LABEL_MANAGED_BY: constants.COMPONENT,
        }
        for kind in ("Deployment", "Service"):
            for live in await ctx.kube.list(kind, namespace, selector):
                pool = (live["metadata"].get("labels") or {}).get(constants.LABEL_POOL)
                if pool not in wanted:
                    log.info(
                        "deleting the %s pool's %s %s/%s",
                        pool,
                        kind,
                        namespace,
                        live["metadata"]["name"],
                    )
                    await ctx.kube.delete(kind, live["metadata"]["name"], namespace)


def ours(body: Mapping[str, Any]) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return labels.get(constants.LABEL_MANAGED_BY) == constants.COMPONENT


async def reconcile_specialised_pod(ctx: Context, namespace: str, name: str) -> None:
    """Resize a specialised pod in place to its function's memoryMB (and the CPU that
    goes with it): the environment inside is limited to memoryMB by the worker at once,
    the pod's own limit follows here. A refusal (an older API server, a QoS change) is
    logged and posted as an Event on the pod; the pod keeps the pool's resources."""
    pod = await ctx.kube.get("Pod", name, namespace)
    if pod is None or being_deleted(pod):
        return
    labels = pod["metadata"].get("labels") or {}
    if labels.get(constants.LABEL_COMPONENT) != constants.COMPONENT_SPECIALISED:
        return
    function, label = labels.get(constants.LABEL_FUNCTION), labels.get(constants.LABEL_VERSION)
    if not function or not label:
        return
    version = contract.version_of_label(label)
    if version == constants.LATEST:
        owner = await ctx.kube.get("Function", function, namespace)
        spec = (owner or {}).get("spec") or {}
    else:
        owner = await ctx.kube.get(
            "Version", names.version_object_name(function, version), namespace
        )
        spec = ((owner or {}).get("spec") or {}).get("config") or {}
    memory = spec.get("memoryMB", limits.MEMORY_DEFAULT_MB)
    if owner is None or not isinstance(memory, int):
        return  # gone: the garbage collector deletes the pod with it
    want = builders.resources(
        memory, ctx.settings.memory_overhead_mb, cpu_overhead_m=ctx.settings.worker_cpu_millicores
    )
    containers = (pod.get("spec") or {}).get("containers") or []
    worker = next((c for c in containers if c.get("name") == constants.WORKER_CONTAINER), None)
    if worker is None or not differences(want, worker.get("resources") or {}):
        return
    log.info("resizing specialised pod %s/%s to %d MB", namespace, name, memory)
    try:
        await ctx.kube.resize(
            name, namespace, [{"name": constants.WORKER_CONTAINER, "resources": want}]
        )
    except ApiError as err:
        if err.status.code not in REFUSED:
            raise
        message = f"cannot resize to {memory} MB in place: {err.status.message}"
        log.warning("pod %s/%s: %s", namespace, name, message)
        await ctx.kube.event(pod, "Warning", "ResizeRefused", message)
