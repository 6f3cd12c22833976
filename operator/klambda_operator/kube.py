"""The operator's one door to the API server (lightkube), speaking plain dicts.

Builders produce dicts and reconcilers compare dicts; this module turns them into API
calls: get (None when absent), list, server-side apply under the operator's field
manager, merge patches of metadata and of the status subresource, and Events.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from klambda import kinds
from lightkube import ApiError, AsyncClient
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Event, Pod, Service
from lightkube.types import PatchType

from klambda_operator import constants

log = logging.getLogger(__name__)

FUNCTION = kinds.FunctionResource
VERSION = kinds.VersionResource
ALIAS = kinds.AliasResource
DATABASE_PROXY = kinds.DatabaseProxyResource
LAYER = kinds.LayerResource
CONFIG_MAP = ConfigMap
DEPLOYMENT = Deployment
SERVICE = Service
POD = Pod

KINDS: dict[str, Any] = {
    "Function": FUNCTION,
    "Version": VERSION,
    "Alias": ALIAS,
    "DatabaseProxy": DATABASE_PROXY,
    "Layer": LAYER,
    "ConfigMap": CONFIG_MAP,
    "Deployment": DEPLOYMENT,
    "Service": SERVICE,
    "Pod": POD,
}


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class Kube:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    @classmethod
    def from_env(cls) -> Kube:
        """In-cluster credentials, else KUBECONFIG, else ~/.kube/config (as kubectl)."""
        return cls(AsyncClient(field_manager=constants.FIELD_MANAGER))

    async def close(self) -> None:
        await self.client.close()

    async def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(KINDS[kind], name, namespace=namespace)
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise
        return _plain(obj)

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        found = self.client.list(
            KINDS[kind], namespace=namespace, labels=dict(labels) if labels else None
        )
        return [_plain(obj) async for obj in found]

    async def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply: creates, or takes the fields the operator states back."""
        meta = body["metadata"]
        obj = await self.client.patch(
            KINDS[body["kind"]],
            meta["name"],
            dict(body),
            namespace=meta["namespace"],
            patch_type=PatchType.APPLY,
            field_manager=constants.FIELD_MANAGER,
            force=True,
        )
        return _plain(obj)

    async def patch_metadata(
        self, kind: str, name: str, namespace: str, metadata: Mapping[str, Any]
    ) -> None:
        await self.client.patch(
            KINDS[kind],
            name,
            {"metadata": dict(metadata)},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def patch_status(
        self, kind: str, name: str, namespace: str, status: Mapping[str, Any]
    ) -> None:
        """A merge patch of the status subresource (None values remove fields)."""
        await self.client.patch(
            KINDS[kind].Status,
            name,
            {"status": dict(status)},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def resize(
        self, name: str, namespace: str, containers: Sequence[Mapping[str, Any]]
    ) -> None:
        """Change a pod's container resources in place (the `resize` subresource,
        Kubernetes >= 1.33): a strategic merge by container name."""
        await self.client.patch(
            Pod.Resize,
            name,
            {"spec": {"containers": [dict(c) for c in containers]}},
            namespace=namespace,
            patch_type=PatchType.STRATEGIC,
        )

    async def delete(self, kind: str, name: str, namespace: str) -> None:
        try:
            await self.client.delete(KINDS[kind], name, namespace=namespace)
        except ApiError as err:
            if err.status.code != 404:
                raise

    async def event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event about `involved`, as `kubectl describe` shows them.

        An Event is a report, not state: failing to post one is logged, never raised.
        """
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", constants.API_VERSION),
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": constants.COMPONENT},
            "reportingComponent": constants.COMPONENT,
            "reportingInstance": constants.COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            event = cast(Event, Event.from_dict(body))
            await self.client.create(event)
        except ApiError as err:
            log.warning("could not post Event %s on %s: %s", reason, meta["name"], err)
