"""The command line's cluster mode: the same verbs, done on the API server's objects.

`--kubeconfig` (or `KUBECONFIG` with `--cluster`) makes `get`, `publish-version`,
`alias set`, `concurrency put` and `provisioned put` read and write Function, Version and
Alias resources; the operator and the cluster-mode router act on them. Checks are the ones
local mode makes (the same models and admission rules), so a refused change names the same
field and limit and leaves the objects as they were.
"""

from __future__ import annotations

import time
from typing import Any

from lightkube import ApiError, Client, KubeConfig
from lightkube.types import PatchType
from pydantic import ValidationError

from klambda import contract
from klambda.api import Alias, AliasSpec, Function, ObjectMeta, RoutingConfig
from klambda.api.limits import LATEST
from klambda.api.manifest import describe_errors
from klambda.router.admission import ConcurrencyPools, ReservationError

FunctionRes = contract.FunctionResource
VersionRes = contract.VersionResource
AliasRes = contract.AliasResource


class ClusterError(Exception):
    pass


def _raw(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class RetryingClient:
    """lightkube's Client, retrying what the API server asks to be retried.

    A freshly installed CRD answers 429 "storage is (re)initializing" until its watch cache
    is ready; client-go (kubectl) retries those after Retry-After, and so do we.
    """

    ATTEMPTS = 20

    def __init__(self, client: Client) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(self.ATTEMPTS):
                try:
                    result = method(*args, **kwargs)
                    return list(result) if name == "list" else result
                except ApiError as err:
                    if err.status.code not in (429, 503) or attempt == self.ATTEMPTS - 1:
                        raise
                    time.sleep(min(1.0, 0.1 * (attempt + 1)))
            raise AssertionError("unreachable")

        return call


class Cluster:
    def __init__(self, kubeconfig: str | None, namespace: str | None) -> None:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        current = config.get()
        self.namespace = namespace or (current.namespace if current else None) or "default"
        self.client = RetryingClient(Client(config=config, namespace=self.namespace))

    def _get(self, res: Any, name: str, what: str) -> dict[str, Any]:
        try:
            return _raw(self.client.get(res, name, namespace=self.namespace))
        except ApiError as err:
            if err.status.code == 404:
                raise ClusterError(f"{what} not found in namespace {self.namespace}") from None
            raise ClusterError(f"{what}: {err.status.message}") from None

    def functions(self) -> list[dict[str, Any]]:
        return sorted(
            (_raw(o) for o in self.client.list(FunctionRes, namespace=self.namespace)),
            key=lambda o: o["metadata"]["name"],
        )

    def versions(self, function: str) -> list[dict[str, Any]]:
        self._get(FunctionRes, function, f"Function {function}")
        out = [_raw(o) for o in self.client.list(VersionRes, namespace=self.namespace)]
        return sorted(
            (v for v in out if v["spec"]["function"] == function),
            key=lambda v: int(v["spec"]["version"]),
        )

    def aliases(self, function: str) -> list[dict[str, Any]]:
        self._get(FunctionRes, function, f"Function {function}")
        out = [_raw(o) for o in self.client.list(AliasRes, namespace=self.namespace)]
        return sorted(
            (a for a in out if a["spec"]["function"] == function),
            key=lambda a: a["metadata"]["name"],
        )

    def publish_version(self, function: str, description: str) -> dict[str, Any]:
        raw = self._get(FunctionRes, function, f"Function {function}")
        fn = Function.model_validate({**raw, "status": None})
        sha = (raw.get("status") or {}).get("codeSha256")
        if not sha:
            raise ClusterError(
                f"Function {function} has no codeSha256 yet: wait until the operator has "
                "made it Active"
            )
        versions = self.versions(function)
        config = fn.spec.wire()
        if versions:
            newest = versions[-1]["spec"]
            if newest["codeSha256"] == sha and newest["config"] == config:
                return versions[-1]
        number = str(max((int(v["spec"]["version"]) for v in versions), default=0) + 1)
        body = {
            "apiVersion": contract.API_VERSION,
            "kind": "Version",
            "metadata": {"name": f"{function}.{number}", "namespace": self.namespace},
            "spec": {
                "function": function,
                "version": number,
                "description": description,
                "codeSha256": sha,
                "config": config,
            },
        }
        try:
            created = self.client.create(VersionRes.from_dict(body), namespace=self.namespace)
        except ApiError as err:
            raise ClusterError(f"Version {function}.{number}: {err.status.message}") from None
        return _raw(created)

    def put_alias(
        self,
        function: str,
        name: str,
        version: str | None,
        routing: dict[str, float] | None,
        description: str | None,
    ) -> dict[str, Any]:
        self._get(FunctionRes, function, f"Function {function}")
        try:
            old: dict[str, Any] | None = self._get(AliasRes, f"{function}.{name}", "alias")
        except ClusterError:
            old = None
        spec: dict[str, Any] = dict(old["spec"]) if old else {"function": function}
        if version is not None:
            spec["version"] = version
        if "version" not in spec:
            raise ClusterError(f"alias {name} does not exist: give --version")
        if description is not None:
            spec["description"] = description
        if routing is not None:
            if len(routing) > 1:
                raise ClusterError("routing: at most one additional version can be given")
            if routing:
                ((extra, weight),) = routing.items()
                spec["routing"] = {"additionalVersion": extra, "weight": weight}
            else:
                spec.pop("routing", None)
        try:
            Alias(
                metadata=ObjectMeta(name=f"{function}.{name}"), spec=AliasSpec.model_validate(spec)
            )
            if "routing" in spec:
                RoutingConfig.model_validate(spec["routing"])
        except ValidationError as err:
            raise ClusterError("; ".join(describe_errors(err))) from None
        published = {v["spec"]["version"] for v in self.versions(function)}
        wanted = [("spec.version", spec["version"])]
        if "routing" in spec:
            wanted.append(("spec.routing.additionalVersion", spec["routing"]["additionalVersion"]))
        for field, v in wanted:
            if v != LATEST and v not in published:
                raise ClusterError(
                    f"{field}: version {v} of {function} does not exist "
                    f"(published: {', '.join(sorted(published, key=int)) or 'none'})"
                )
        body = {
            "apiVersion": contract.API_VERSION,
            "kind": "Alias",
            "metadata": {"name": f"{function}.{name}", "namespace": self.namespace},
            "spec": spec,
        }
        try:
            if old is None:
                return _raw(self.client.create(AliasRes.from_dict(body), namespace=self.namespace))
            return _raw(
                self.client.patch(
                    AliasRes,
                    f"{function}.{name}",
                    {"spec": spec},
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                )
            )
        except ApiError as err:
            raise ClusterError(f"Alias {function}.{name}: {err.status.message}") from None

    def delete_alias(self, function: str, name: str) -> None:
        self._get(AliasRes, f"{function}.{name}", f"alias {function}:{name}")
        self.client.delete(AliasRes, f"{function}.{name}", namespace=self.namespace)

    def delete_version(self, function: str, version: str) -> None:
        self._get(VersionRes, f"{function}.{version}", f"version {function}:{version}")
        users = sorted(
            a["metadata"]["name"].partition(".")[2]
            for a in self.aliases(function)
            if version == a["spec"]["version"]
            or version == (a["spec"].get("routing") or {}).get("additionalVersion")
        )
        if users:
            raise ClusterError(
                f"version {version} of {function} cannot be deleted: alias(es) "
                f"{', '.join(users)} route to it"
            )
        self.client.delete(VersionRes, f"{function}.{version}", namespace=self.namespace)

    def put_reserved(self, function: str, reserved: int | None, account_limit: int) -> None:
        pools = ConcurrencyPools(account_limit=account_limit)
        for fn in self.functions():
            r = fn["spec"].get("reservedConcurrency")
            if r is not None and fn["metadata"]["name"] != function:
                pools.reserved[fn["metadata"]["name"]] = r
        self._get(FunctionRes, function, f"Function {function}")
        try:
            pools.check_reservation(function, reserved)
        except ReservationError as err:
            raise ClusterError(f"spec.reservedConcurrency: {err}") from None
        self.client.patch(
            FunctionRes,
            function,
            {"spec": {"reservedConcurrency": reserved}},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    def put_provisioned(self, function: str, qualifier: str, count: int) -> None:
        if count < 0:
            raise ClusterError(f"spec.provisionedConcurrency: must be >= 0, got {count}")
        if qualifier.isdigit():
            res, name = VersionRes, f"{function}.{qualifier}"
        elif qualifier and qualifier != LATEST:
            res, name = AliasRes, f"{function}.{qualifier}"
        else:
            raise ClusterError("provisioned concurrency needs a version or an alias")
        self._get(res, name, f"{function}:{qualifier}")
        try:
            self.client.patch(
                res,
                name,
                {"spec": {"provisionedConcurrency": count}},
                namespace=self.namespace,
                patch_type=PatchType.MERGE,
            )
        except ApiError as err:
            raise ClusterError(f"{function}:{qualifier}: {err.status.message}") from None
