"""What makes a reconcile run: watch events, the deletion of a child, the resync loop.

- A watch event of a Function, Version or Alias (kopf.on.event; listing at startup counts
  as one, so a restarted operator catches up) reconciles the object. When its spec
  changed (a generation not seen before) or it appeared or went, the objects that
  depend on it are reconciled too: a Function's Versions (its reserved concurrency
  scales them) and Aliases (they may have waited for it), a Version's Aliases (they may
  point to it), an Alias's Versions (its provisioned concurrency scales them).
- A worker Deployment or Service deleted: its owner is reconciled, which recreates it.
- The resync loop reconciles every known object every `resync_seconds`: scale to zero
  after the idle window, drift nobody announces (a scaled Deployment, a user ConfigMap
  edited), causes fixed elsewhere (a missing ConfigMap created).
- The warm pools of a namespace are reconciled when a Function of it appears, changes or
  goes, when a pool's Deployment or Service is deleted, and at every resync.
- A pool pod the router has claimed (a watch event of a pod labelled `specialised`) is
  resized in place to its function's memory.
- A Layer is reconciled at its watch events and at every resync (its content published as
  a version when no version holds it); when its spec changed, the Functions and Versions
  that name it are reconciled too (they may have waited for that version).
- A DatabaseProxy is reconciled at its watch events, at any event of its Deployment (its
  status follows the Deployment's availability) and at every resync. When its spec
  changed, or it appeared or went, the Functions it lists or listed (and their Versions)
  are reconciled too: their pods get or lose its address.

Why a loop and not `@kopf.timer`: kopf puts a finalizer on every object that has a timer,
so Functions could not be deleted while the operator is down. klambda needs no
finalizer: everything it creates is garbage-collected through ownerReferences.

API errors are logged and left to the next event or resync; they never stop the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lightkube import ApiError

from klambda_operator import constants, names
from klambda_operator.context import Context, Key
from klambda_operator.reconcile import (
    alias_targets,
    aliases_of,
    layer_users,
    reconcile_alias,
    reconcile_database_proxy,
    reconcile_function,
    reconcile_layer,
    reconcile_pools,
    reconcile_specialised_pod,
    reconcile_version,
    versions_of,
)

log = logging.getLogger(__name__)

Reconciler = Callable[[Context, str, str], Awaitable[Any]]
RECONCILERS: dict[str, Reconciler] = {
    "Function": reconcile_function,
    "Version": reconcile_version,
    "Alias": reconcile_alias,
    "DatabaseProxy": reconcile_database_proxy,
    "Layer": reconcile_layer,
}
# Objects reconciled at once by the resync loop.
PARALLEL = 8


async def guarded(ctx: Context, kind: str, namespace: str, name: str) -> None:
    try:
        await RECONCILERS[kind](ctx, namespace, name)
    except ApiError as err:
        log.warning(
            "%s %s/%s: API error %s (%s); tried again at the next event or resync",
            kind, namespace, name, err.status.code, err.status.message,
        )  # fmt: skip


async def guarded_pools(ctx: Context, namespace: str) -> None:
    try:
        await reconcile_pools(ctx, namespace)
    except ApiError as err:
        log.warning(
            "the warm pools of %s: API error %s (%s); tried again at the next resync",
            namespace, err.status.code, err.status.message,
        )  # fmt: skip


async def on_event(
    ctx: Context, kind: str, type_: str | None, namespace: str, name: str, body: Mapping[str, Any]
) -> None:
    key: Key = (kind, namespace, name)
    spec = body.get("spec") or {}
    if kind == "DatabaseProxy":
        await on_proxy_event(ctx, type_, key, body)
        return
    if type_ == "DELETED":
        ctx.forget(key)
        if kind == "Function":  # its Versions and Aliases go with it (ownerReferences)
            await guarded_pools(ctx, namespace)
            return
    else:
        changed = ctx.seen(key, (body.get("metadata") or {}).get("generation"))
        await guarded(ctx, kind, namespace, name)
        if not changed:
            return
        if kind == "Function":
            await guarded_pools(ctx, namespace)
    try:
        await reconcile_dependents(ctx, kind, namespace, name, spec)
    except ApiError as err:
        log.warning("dependents of %s %s/%s: API error %s", kind, namespace, name, err)


async def on_proxy_event(
    ctx: Context, type_: str | None, key: Key, body: Mapping[str, Any]
) -> None:
    """Reconcile the proxy; on a spec change (or its coming or going), the Functions it
    lists now or listed before, and their Versions."""
    _kind, namespace, name = key
    before = ctx.proxied.get(key, frozenset())
    if type_ == "DELETED":
        ctx.forget(key)
        functions = before
    else:
        changed = ctx.seen(key, (body.get("metadata") or {}).get("generation"))
        await guarded(ctx, "DatabaseProxy", namespace, name)
        listed = (body.get("spec") or {}).get("functions") or []
        now = frozenset(f for f in listed if isinstance(f, str))
        ctx.proxied[key] = now
        if not changed:
            return
        functions = before | now
    try:
        for function in sorted(functions):
            await guarded(ctx, "Function", namespace, function)
            for v in await versions_of(ctx, namespace, function):
                await guarded(ctx, "Version", namespace, v["metadata"]["name"])
    except ApiError as err:
        log.warning("functions of DatabaseProxy %s/%s: API error %s", namespace, name, err)


async def reconcile_dependents(
    ctx: Context, kind: str, namespace: str, name: str, spec: Mapping[str, Any]
) -> None:
    function = spec.get("function")
    if kind == "Function":
        for v in await versions_of(ctx, namespace, name):
            await guarded(ctx, "Version", namespace, v["metadata"]["name"])
        for a in await aliases_of(ctx, namespace, name):
            await guarded(ctx, "Alias", namespace, a["metadata"]["name"])
    elif kind == "Version" and isinstance(function, str):
        for a in await aliases_of(ctx, namespace, function):
            await guarded(ctx, "Alias", namespace, a["metadata"]["name"])
    elif kind == "Alias" and isinstance(function, str):
        for version in alias_targets(spec):
            target = names.version_object_name(function, version)
            await guarded(ctx, "Version", namespace, target)
    elif kind == "Layer":  # a version published: functions that waited for it run
        for user_kind, user in await layer_users(ctx, namespace, name):
            await guarded(ctx, user_kind, namespace, user)


async def on_child_event(ctx: Context, type_: str | None, child: Mapping[str, Any]) -> None:
    """Any change of a DatabaseProxy's Deployment or Service (its status follows the
    Deployment's availability; a deleted one is made again); the deletion of others."""
    meta = child["metadata"]
    labels = meta.get("labels") or {}
    proxy = labels.get(constants.LABEL_DATABASE_PROXY)
    if labels.get(constants.LABEL_COMPONENT) == constants.COMPONENT_DBPROXY and proxy:
        await guarded(ctx, "DatabaseProxy", meta["namespace"], proxy)
    elif type_ == "DELETED":
        await on_child_deleted(ctx, child)


async def on_child_deleted(ctx: Context, child: Mapping[str, Any]) -> None:
    """A Deployment or Service of ours went away: its owner recreates it at once (a pool's
    are made again by the pools' reconcile)."""
    namespace = child["metadata"]["namespace"]
    labels = child["metadata"].get("labels") or {}
    if labels.get(constants.LABEL_COMPONENT) == constants.COMPONENT_POOL:
        await guarded_pools(ctx, namespace)
        return
    for ref in child["metadata"].get("ownerReferences") or []:
        ours = str(ref.get("apiVersion", "")).startswith(constants.GROUP + "/")
        if ref.get("controller") and ours and ref.get("kind") in ("Function", "Version"):
            await guarded(ctx, ref["kind"], namespace, ref["name"])


async def resync_forever(ctx: Context) -> None:
    """Every `resync_seconds`, reconcile every known object (PARALLEL at a time)."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(key: Key) -> None:
        async with gate:
            try:
                await guarded(ctx, *key)
            except Exception:  # a bug must not end the loop for every other object
                log.exception("reconciling %s %s/%s failed", *key)

    async def pools(namespace: str) -> None:
        async with gate:
            try:
                await guarded_pools(ctx, namespace)
            except Exception:
                log.exception("reconciling the warm pools of %s failed", namespace)

    while True:
        await asyncio.sleep(ctx.settings.resync_seconds)
        await asyncio.gather(*(one(key) for key in list(ctx.known)))
        namespaces = {ns for kind, ns, _name in ctx.known if kind == "Function"}
        await asyncio.gather(*(pools(ns) for ns in sorted(namespaces)))


async def on_specialised_pod(ctx: Context, type_: str | None, namespace: str, name: str) -> None:
    """A pool pod claimed by a router (or changed since): resize it to its function's."""
    if type_ == "DELETED":
        return
    try:
        await reconcile_specialised_pod(ctx, namespace, name)
    except ApiError as err:
        log.warning("specialised pod %s/%s: API error %s", namespace, name, err.status.code)
