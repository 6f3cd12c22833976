"""kopf registrations, and nothing else: every handler delegates to `triggers`.

Run with `kopf run -m klambda_operator.handlers [--namespace NS | --all-namespaces]`
(add `--standalone` when only one operator runs). Why the triggers are what they are is
in `klambda_operator.triggers`.

Only watch-event handlers are registered: kopf then keeps no state on the objects (no
annotations, no finalizers) and every reconcile works from the object as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from klambda_operator import constants, triggers
from klambda_operator.context import Context
from klambda_operator.kube import Kube
from klambda_operator.settings import OperatorSettings
from klambda_operator.store import Store

FUNCTIONS = (constants.API_VERSION, "functions")
VERSIONS = (constants.API_VERSION, "versions")
ALIASES = (constants.API_VERSION, "aliases")
DATABASE_PROXIES = (constants.API_VERSION, "databaseproxies")
LAYERS = (constants.API_VERSION, "layers")
OURS = {constants.LABEL_MANAGED_BY: constants.COMPONENT}


def context(memo: Any) -> Context:
    ctx: Context = memo.klambda
    return ctx


def namespaced(namespace: str | None) -> str:
    if namespace is None:  # klambda's kinds are namespaced: kopf always gives one
        raise kopf.PermanentError("a klambda resource without a namespace")
    return namespace


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    settings.persistence.finalizer = constants.FINALIZER
    settings.posting.level = logging.ERROR
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per API call otherwise
    config = OperatorSettings.from_env()
    ctx = Context(Kube.from_env(), config, store=Store.from_settings(config))
    memo.klambda = ctx
    memo.resync = asyncio.create_task(triggers.resync_forever(ctx))


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    memo.resync.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await memo.resync
    await context(memo).kube.close()


@kopf.on.event(*FUNCTIONS)
async def function_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    await triggers.on_event(context(memo), "Function", type, namespaced(namespace), name, body)


@kopf.on.event(*VERSIONS)
async def version_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    await triggers.on_event(context(memo), "Version", type, namespaced(namespace), name, body)


@kopf.on.event(*ALIASES)
async def alias_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    await triggers.on_event(context(memo), "Alias", type, namespaced(namespace), name, body)


@kopf.on.event(*DATABASE_PROXIES)
async def database_proxy_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    await triggers.on_event(context(memo), "DatabaseProxy", type, namespaced(namespace), name, body)


@kopf.on.event(*LAYERS)
async def layer_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    await triggers.on_event(context(memo), "Layer", type, namespaced(namespace), name, body)


@kopf.on.event("v1", "pods", labels={constants.LABEL_COMPONENT: constants.COMPONENT_SPECIALISED})
async def specialised_pod_event(
    type: str | None, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    await triggers.on_specialised_pod(context(memo), type, namespaced(namespace), name)


@kopf.on.event("apps/v1", "deployments", labels=OURS)
@kopf.on.event("v1", "services", labels=OURS)
async def child_event(type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    await triggers.on_child_event(context(memo), type, body)
