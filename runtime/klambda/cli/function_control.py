"""Where the command line's function verbs go: a router's Lambda API, or a cluster's objects.

The requests are Lambda's own (CreateFunction, UpdateFunctionCode, ... as JSON bodies), so
`RouterFunctions` only sends them, and `ClusterFunctions` turns them into Function objects
with the same rules as the router (klambda.api.changes): code sent as a .zip goes to a
ConfigMap named by its digest (klambda.contract.code_config_map), which the Function names
in `spec.code.configMap`, and the operator snapshots it as any other. Both answer in
Lambda's shapes (klambda.shapes). `klambda deploy` uses the same protocol.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from klambda import codestore, contract, kinds, shapes
from klambda.api import Code, Function, FunctionSpec, ObjectMeta, changes, limits, rules
from klambda.api.limits import LATEST
from klambda.cli.client import API, ApiError, Client
from klambda.cli.control import ControlError
from klambda.execution import config_of

EVENT_INVOKE = "/2019-09-25/functions/{}/event-invoke-config"
TAGS = "/2017-03-31/tags/{}"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


class FunctionControl(Protocol):
    def function(self, name: str) -> dict[str, Any] | None:
        """Lambda's GetFunction (Configuration, Tags, Concurrency), None if there is none."""
        ...

    def create_function(self, body: Mapping[str, Any]) -> dict[str, Any]: ...
    def update_function_code(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]: ...
    def update_function_configuration(
        self, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]: ...
    def delete_function(self, name: str) -> None: ...
    def put_event_invoke_config(
        self, name: str, body: Mapping[str, Any], replace: bool
    ) -> dict[str, Any]: ...
    def event_invoke_config(self, name: str) -> dict[str, Any] | None: ...
    def delete_event_invoke_config(self, name: str) -> None: ...
    def tag(self, name: str, tags: Mapping[str, str]) -> None: ...
    def untag(self, name: str, keys: list[str]) -> None: ...
    def provisioned(self, name: str, qualifier: str) -> int:
        """The provisioned concurrency asked for a version or alias (0 if none)."""
        ...

    def settled(self, name: str) -> None:
        """Return once `$LATEST` as last written is what a publish would snapshot."""
        ...


class RouterFunctions:
    def __init__(self, client: Client) -> None:
        self.c = client

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.c.json(method, path, body)
        except ApiError as err:
            raise ControlError(str(err)) from None

    def function(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.c.json("GET", f"{API}/{name}"))
        except ApiError as err:
            if err.code == "ResourceNotFoundException":
                return None
            raise ControlError(str(err)) from None

    def create_function(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", API, _json_safe(body)))

    def update_function_code(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"{API}/{name}/code", _json_safe(body)))

    def update_function_configuration(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"{API}/{name}/configuration", dict(body)))

    def delete_function(self, name: str) -> None:
        self._call("DELETE", f"{API}/{name}")

    def put_event_invoke_config(
        self, name: str, body: Mapping[str, Any], replace: bool
    ) -> dict[str, Any]:
        return dict(self._call("PUT" if replace else "POST", EVENT_INVOKE.format(name), body))

    def event_invoke_config(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.c.json("GET", EVENT_INVOKE.format(name)))
        except ApiError as err:
            if err.code == "ResourceNotFoundException" and "EventInvokeConfig" in str(err):
                return None
            raise ControlError(str(err)) from None

    def delete_event_invoke_config(self, name: str) -> None:
        self._call("DELETE", EVENT_INVOKE.format(name))

    def tag(self, name: str, tags: Mapping[str, str]) -> None:
        self._call("POST", TAGS.format(function_arn(name)), {"Tags": dict(tags)})

    def untag(self, name: str, keys: list[str]) -> None:
        query = urllib.parse.urlencode([("tagKeys", k) for k in keys])
        self._call("DELETE", TAGS.format(function_arn(name)) + "?" + query)

    def provisioned(self, name: str, qualifier: str) -> int:
        path = f"/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier={qualifier}"
        try:
            got = self.c.json("GET", path)
        except ApiError:
            return 0
        return int(got.get("RequestedProvisionedConcurrentExecutions", 0))

    def settled(self, name: str) -> None:
        return None  # the router applies a change before it answers


def _json_safe(body: Mapping[str, Any]) -> dict[str, Any]:
    """A request body with its .zip as base64, as boto3 sends it."""
    out = dict(body)
    for holder in (out, out.get("Code")):
        if isinstance(holder, dict) and isinstance(holder.get("ZipFile"), bytes):
            holder["ZipFile"] = base64.b64encode(holder["ZipFile"]).decode()
    return out


# -- a cluster's objects


def _ruled(work: Any, *args: Any) -> Any:
    try:
        return work(*args)
    except rules.RuleError as err:
        raise ControlError(str(err)) from None


class ClusterFunctions:
    WAIT_ACTIVE_S = 120.0

    def __init__(self, kubeconfig: str | None, namespace: str | None) -> None:
        from klambda.cli.kube import Cluster

        self.cluster = Cluster(kubeconfig, namespace)
        self.namespace = self.cluster.namespace

    # -- reading

    def _raw(self, name: str) -> dict[str, Any] | None:
        from lightkube import ApiError as KubeApiError

        try:
            obj = self.cluster.client.get(kinds.FunctionResource, name, namespace=self.namespace)
        except KubeApiError as err:
            if err.status.code == 404:
                return None
            raise ControlError(f"Function {name}: {err.status.message}") from None
        return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)

    def _need(self, name: str) -> dict[str, Any]:
        raw = self._raw(name)
        if raw is None:
            raise ControlError(
                f"ResourceNotFoundException: Function not found: {name} "
                f"(namespace {self.namespace})"
            )
        return raw

    @staticmethod
    def _spec(raw: Mapping[str, Any]) -> FunctionSpec:
        return FunctionSpec.model_validate(raw["spec"])

    @staticmethod
    def configuration(raw: Mapping[str, Any]) -> dict[str, Any]:
        spec = FunctionSpec.model_validate(raw["spec"])
        status = raw.get("status") or {}
        cfg = config_of(
            raw["metadata"]["name"],
            LATEST,
            spec,
            code_root="",
            code_sha256=status.get("codeSha256") or "-",
            region="us-east-1",
            account="000000000000",
        )
        out = shapes.function_configuration(
            cfg, status.get("state") or "Pending", status.get("stateReason"), spec.description
        )
        if spec.code.image is not None:
            out["PackageType"] = "Image"
        return out

    def function(self, name: str) -> dict[str, Any] | None:
        raw = self._raw(name)
        if raw is None:
            return None
        spec = self._spec(raw)
        out: dict[str, Any] = {"Configuration": self.configuration(raw)}
        if spec.tags:
            out["Tags"] = dict(spec.tags)
        if spec.reserved_concurrency is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": spec.reserved_concurrency}
        triggers = shapes.triggers(spec)
        if triggers is not None:
            out["Triggers"] = triggers
        return out

    # -- writing

    def _code(self, name: str, upload: changes.CodeUpload, field: str) -> Code:
        if upload.image_uri is not None:
            return Code(image=upload.image_uri)
        assert upload.zip_file is not None
        try:
            files = codestore.unzip(upload.zip_file, limits.UNZIPPED_MAX_BYTES)
        except ValueError as err:  # ZipError
            raise ControlError(f"{field}.ZipFile: {err}") from None
        try:
            body = contract.code_config_map(name, files, self.namespace)
        except ValueError:  # more than a ConfigMap holds: the cluster's store
            return Code(s3_key=self._store(upload.zip_file, field))
        from lightkube import ApiError as KubeApiError
        from lightkube.resources.core_v1 import ConfigMap

        try:
            self.cluster.client.create(ConfigMap.from_dict(body), namespace=self.namespace)
        except KubeApiError as err:
            if err.status.code != 409:  # the same code is already there: its name is its hash
                raise ControlError(
                    f"ConfigMap {body['metadata']['name']}: {err.status.message}"
                ) from None
        return Code(config_map=body["metadata"]["name"])

    def _store(self, data: bytes, field: str) -> str:
        """The .zip written to the cluster's store; its key."""
        from klambda.cli.store import StoreError, StoreUpload

        if not self.cluster.kubeconfig:
            raise ControlError(f"{field}.ZipFile: code larger than a ConfigMap needs --kubeconfig")
        try:
            with StoreUpload(self.cluster.kubeconfig) as store:
                return store.put("code", data)
        except StoreError as err:
            raise ControlError(f"{field}.ZipFile: {err}") from None

    def _replace(self, raw: dict[str, Any], spec: FunctionSpec) -> dict[str, Any]:
        from lightkube import ApiError as KubeApiError

        body = {**raw, "spec": spec.wire()}
        body.pop("status", None)
        try:
            obj = self.cluster.client.replace(
                kinds.FunctionResource.from_dict(body), namespace=self.namespace
            )
        except KubeApiError as err:
            raise ControlError(
                f"Function {raw['metadata']['name']}: {err.status.message}"
            ) from None
        return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)

    def provisioned(self, name: str, qualifier: str) -> int:
        from lightkube import ApiError as KubeApiError

        res = kinds.VersionResource if qualifier.isdigit() else kinds.AliasResource
        try:
            obj = self.cluster.client.get(res, f"{name}.{qualifier}", namespace=self.namespace)
        except KubeApiError:
            return 0
        raw = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
        return int(raw["spec"].get("provisionedConcurrency", 0))

    def settled(self, name: str) -> None:
        self._settled(name)

    def _settled(self, name: str) -> dict[str, Any]:
        """The Function once the operator has taken its last change in (its status is of
        the current generation): only then is its codeSha256 the code's."""
        deadline = time.monotonic() + self.WAIT_ACTIVE_S
        while True:
            now = self._need(name)
            status = now.get("status") or {}
            generation = now["metadata"].get("generation")
            if status.get("observedGeneration") == generation and status.get("state"):
                return now
            if time.monotonic() > deadline:
                raise ControlError(
                    f"the operator has not taken Function {name} in after "
                    f"{self.WAIT_ACTIVE_S:.0f} s (is it running?)"
                )
            time.sleep(0.5)

    def _published(self, name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Publish once the operator has taken the new `$LATEST` in (its codeSha256)."""
        now = self._settled(name)
        from klambda.cli.kube import ClusterError

        try:
            v = self.cluster.publish_version(name, "")
        except ClusterError as err:
            raise ControlError(str(err)) from None
        out = self.configuration(now)
        out["Version"] = v["spec"]["version"]
        return out

    def create_function(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from lightkube import ApiError as KubeApiError

        name = str(body.get("FunctionName") or "")
        upload = _ruled(changes.code_of, body.get("Code") or {}, "Code")
        # everything checked before any code is sent
        checked = _ruled(changes.create_spec, body, Code(config_map="unsent"))
        try:
            Function(metadata=ObjectMeta(name=name), spec=checked)
        except ValueError as err:
            raise ControlError(f"FunctionName: {err}") from None
        if self._raw(name) is not None:
            raise ControlError(f"ResourceConflictException: Function already exist: {name}")
        code = self._code(name, upload, "Code")
        spec = _ruled(changes.create_spec, body, code)
        obj = {
            "apiVersion": contract.API_VERSION,
            "kind": "Function",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec.wire(),
        }
        try:
            made = self.cluster.client.create(
                kinds.FunctionResource.from_dict(obj), namespace=self.namespace
            )
        except KubeApiError as err:
            raise ControlError(f"Function {name}: {err.status.message}") from None
        raw = made.to_dict() if hasattr(made, "to_dict") else dict(made)
        if body.get("Publish"):
            return self._published(name, raw)
        return self.configuration(raw)

    def update_function_code(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raw = self._need(name)
        upload = _ruled(changes.code_of, body, "")
        code = self._code(name, upload, "Code")
        spec = _ruled(changes.update_code, self._spec(raw), code)
        if body.get("DryRun"):
            return self.configuration(raw)
        raw = self._replace(raw, spec)
        if body.get("Publish"):
            return self._published(name, raw)
        return self.configuration(raw)

    def update_function_configuration(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raw = self._need(name)
        spec = _ruled(changes.update_configuration, self._spec(raw), body)
        return self.configuration(self._replace(raw, spec))

    def delete_function(self, name: str) -> None:
        """The Function, its Versions and Aliases, and the ConfigMaps its code was sent in."""
        from lightkube.resources.core_v1 import ConfigMap

        self._need(name)
        client, ns = self.cluster.client, self.namespace
        for alias in self.cluster.aliases(name):
            client.delete(kinds.AliasResource, alias["metadata"]["name"], namespace=ns)
        for version in self.cluster.versions(name):
            client.delete(kinds.VersionResource, version["metadata"]["name"], namespace=ns)
        client.delete(kinds.FunctionResource, name, namespace=ns)
        selector = {contract.LABEL_FUNCTION: name, contract.LABEL_COMPONENT: "upload"}
        for cm in client.list(ConfigMap, namespace=ns, labels=selector):
            client.delete(ConfigMap, cm.metadata.name, namespace=ns)

    def _event_invoke_shape(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._spec(raw)
        cfg = config_of(
            raw["metadata"]["name"], LATEST, spec, code_root="", code_sha256="",
            region="us-east-1", account="000000000000",
        )  # fmt: skip
        return shapes.event_invoke_config(cfg, spec, time.time())

    def put_event_invoke_config(
        self, name: str, body: Mapping[str, Any], replace: bool
    ) -> dict[str, Any]:
        raw = self._need(name)
        spec = _ruled(changes.put_event_invoke_config, self._spec(raw), body, replace)
        return self._event_invoke_shape(self._replace(raw, spec))

    def event_invoke_config(self, name: str) -> dict[str, Any] | None:
        raw = self._need(name)
        if not changes.has_event_invoke_config(self._spec(raw)):
            return None
        return self._event_invoke_shape(raw)

    def delete_event_invoke_config(self, name: str) -> None:
        raw = self._need(name)
        self._replace(raw, changes.clear_event_invoke_config(self._spec(raw)))

    def tag(self, name: str, tags: Mapping[str, str]) -> None:
        raw = self._need(name)
        self._replace(raw, _ruled(changes.tag, self._spec(raw), tags))

    def untag(self, name: str, keys: list[str]) -> None:
        raw = self._need(name)
        self._replace(raw, _ruled(changes.untag, self._spec(raw), keys))
