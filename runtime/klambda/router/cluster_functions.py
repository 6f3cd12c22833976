"""Lambda's function requests in cluster mode (CreateFunction, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction, the asynchronous invocation configuration,
tags), written as the objects a user would apply: a Function, and the code of a .zip in a
ConfigMap named by its digest (klambda.contract.code_config_map) that the operator
snapshots. The rules are klambda.api.changes', as in local mode and in the CLI
(`klambda function ... --kubeconfig`); the router's registry sees the result through its
watch, as it sees a `kubectl apply`.

Off unless `KLAMBDA_CONTROL_API` is set (the chart's `router.controlApi`): whoever reaches
the router could then run code in the cluster, so it is a deliberate choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from lightkube import ApiError
from lightkube.resources.core_v1 import ConfigMap

from klambda import codestore, contract, kinds, shapes
from klambda.api import Code, Function, FunctionSpec, ObjectMeta, changes, limits, rules
from klambda.api.limits import LATEST
from klambda.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from klambda.execution import config_of
from klambda.router.cluster import ClusterSource

P = ParamSpec("P")
R = TypeVar("R")


def _ruled(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return work(*args, **kwargs)
    except rules.RuleError as err:
        raise InvalidParameterValue(str(err)) from None


def _dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class ClusterFunctions:
    def __init__(self, source: ClusterSource, region: str, account: str) -> None:
        self.source = source
        self.region = region
        self.account = account

    @property
    def _ns(self) -> str:
        return self.source.namespace

    def _client(self) -> Any:
        assert self.source.client is not None
        return self.source.client

    async def _raw(self, name: str) -> dict[str, Any] | None:
        try:
            obj = await self._client().get(kinds.FunctionResource, name, namespace=self._ns)
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise ResourceConflict(f"Function {name}: {err.status.message}") from None
        return _dict(obj)

    async def _need(self, name: str) -> dict[str, Any]:
        raw = await self._raw(name)
        if raw is None:
            raise ResourceNotFound(f"Function not found: {name}")
        return raw

    @staticmethod
    def _spec(raw: Mapping[str, Any]) -> FunctionSpec:
        return FunctionSpec.model_validate(raw["spec"])

    def configuration(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Lambda's FunctionConfiguration of the object as written (Pending until the
        operator has taken it in)."""
        spec = self._spec(raw)
        status = raw.get("status") or {}
        cfg = config_of(
            raw["metadata"]["name"], LATEST, spec, code_root="",
            code_sha256=status.get("codeSha256") or "-", region=self.region,
            account=self.account,
        )  # fmt: skip
        out = shapes.function_configuration(
            cfg, status.get("state") or "Pending", status.get("stateReason"), spec.description
        )
        if spec.code.image is not None:
            out["PackageType"] = "Image"
        return out

    def event_invoke_shape(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._spec(raw)
        cfg = config_of(
            raw["metadata"]["name"], LATEST, spec, code_root="", code_sha256="",
            region=self.region, account=self.account,
        )  # fmt: skip
        return shapes.event_invoke_config(cfg, spec, time.time())

    async def _code(self, name: str, upload: changes.CodeUpload) -> Code:
        if upload.image_uri is not None:
            return Code(image=upload.image_uri)
        assert upload.zip_file is not None
        try:
            files = codestore.unzip(upload.zip_file, limits.UNZIPPED_MAX_BYTES)
            body = contract.code_config_map(name, files, self._ns)
        except ValueError as err:  # ZipError, or too large for a ConfigMap
            raise InvalidParameterValue(f"Code.ZipFile: {err}") from None
        try:
            await self._client().create(ConfigMap.from_dict(body), namespace=self._ns)
        except ApiError as err:
            if err.status.code != 409:  # the same code is already there: named by its hash
                raise ResourceConflict(
                    f"ConfigMap {body['metadata']['name']}: {err.status.message}"
                ) from None
        return Code(config_map=body["metadata"]["name"])

    async def _replace(self, raw: dict[str, Any], spec: FunctionSpec) -> dict[str, Any]:
        body = {**raw, "spec": spec.wire()}
        body.pop("status", None)
        try:
            obj = await self._client().replace(
                kinds.FunctionResource.from_dict(body), namespace=self._ns
            )
        except ApiError as err:  # 409: changed meanwhile; the caller retries as with Lambda
            raise ResourceConflict(
                f"Function {raw['metadata']['name']}: {err.status.message}"
            ) from None
        return _dict(obj)

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("FunctionName") or "")
        upload = _ruled(changes.code_of, body.get("Code") or {}, "Code")
        checked = _ruled(changes.create_spec, body, Code(config_map="unsent"))
        try:
            Function(metadata=ObjectMeta(name=name), spec=checked)
        except ValueError as err:
            raise InvalidParameterValue(f"FunctionName: {err}") from None
        if body.get("Publish"):
            raise InvalidParameterValue(
                "Publish: publish in cluster mode once the function is Active "
                "(PublishVersion, or klambda function create --publish --kubeconfig)"
            )
        if await self._raw(name) is not None:
            raise ResourceConflict(f"Function already exist: {name}")
        spec = _ruled(changes.create_spec, body, await self._code(name, upload))
        obj = {
            "apiVersion": contract.API_VERSION,
            "kind": "Function",
            "metadata": {"name": name, "namespace": self._ns},
            "spec": spec.wire(),
        }
        try:
            made = await self._client().create(
                kinds.FunctionResource.from_dict(obj), namespace=self._ns
            )
        except ApiError as err:
            raise ResourceConflict(f"Function {name}: {err.status.message}") from None
        return self.configuration(_dict(made))

    async def update_code(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raw = await self._need(name)
        upload = _ruled(changes.code_of, body, "")
        if body.get("Publish"):
            raise InvalidParameterValue(
                "Publish: publish in cluster mode once the new code is Active (PublishVersion)"
            )
        spec = _ruled(changes.update_code, self._spec(raw), await self._code(name, upload))
        if body.get("DryRun"):
            return self.configuration(raw)
        return self.configuration(await self._replace(raw, spec))

    async def update_configuration(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raw = await self._need(name)
        spec = _ruled(changes.update_configuration, self._spec(raw), body)
        return self.configuration(await self._replace(raw, spec))

    async def delete(self, name: str) -> None:
        """The Function, its Versions and Aliases, and the ConfigMaps its code came in."""
        await self._need(name)
        client, ns = self._client(), self._ns
        selector = {contract.LABEL_FUNCTION: name}
        for res in (kinds.AliasResource, kinds.VersionResource):
            async for obj in client.list(res, namespace=ns):
                if _dict(obj)["spec"].get("function") == name:
                    await client.delete(res, obj.metadata.name, namespace=ns)
        await client.delete(kinds.FunctionResource, name, namespace=ns)
        labels = {**selector, contract.LABEL_COMPONENT: "upload"}
        async for cm in client.list(ConfigMap, namespace=ns, labels=labels):
            await client.delete(ConfigMap, cm.metadata.name, namespace=ns)

    async def put_event_invoke_config(
        self, name: str, body: Mapping[str, Any], replace: bool
    ) -> dict[str, Any]:
        raw = await self._need(name)
        spec = _ruled(changes.put_event_invoke_config, self._spec(raw), body, replace)
        return self.event_invoke_shape(await self._replace(raw, spec))

    async def event_invoke_config(self, name: str) -> dict[str, Any]:
        raw = await self._need(name)
        if not changes.has_event_invoke_config(self._spec(raw)):
            raise ResourceNotFound(f"The function {name} doesn't have an EventInvokeConfig")
        return self.event_invoke_shape(raw)

    async def event_invoke_configs(self, name: str) -> list[dict[str, Any]]:
        raw = await self._need(name)
        if not changes.has_event_invoke_config(self._spec(raw)):
            return []
        return [self.event_invoke_shape(raw)]

    async def delete_event_invoke_config(self, name: str) -> None:
        await self.event_invoke_config(name)
        raw = await self._need(name)
        await self._replace(raw, changes.clear_event_invoke_config(self._spec(raw)))

    async def tag(self, name: str, tags: Mapping[str, Any]) -> None:
        raw = await self._need(name)
        await self._replace(raw, _ruled(changes.tag, self._spec(raw), tags))

    async def untag(self, name: str, keys: list[str]) -> None:
        raw = await self._need(name)
        await self._replace(raw, _ruled(changes.untag, self._spec(raw), keys))

    async def tags(self, name: str) -> dict[str, str]:
        return dict(self._spec(await self._need(name)).tags or {})
