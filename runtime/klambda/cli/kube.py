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

from klambda import contract, kinds
from klambda.api import (
    Alias,
    AliasSpec,
    Function,
    ObjectMeta,
    RoutingConfig,
    VersionSpec,
    changes,
    rules,
)
from klambda.api.limits import UNRESERVED_CONCURRENCY_MIN
from klambda.api.manifest import describe_errors

FunctionRes = kinds.FunctionResource
VersionRes = kinds.VersionResource
AliasRes = kinds.AliasResource


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
        self.kubeconfig = kubeconfig
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
        config = rules.version_config(fn.spec).wire()
        if versions:
            newest = VersionSpec.model_validate(versions[-1]["spec"])
            if rules.unchanged_since(newest, sha, fn.spec):
                return versions[-1]
        number = rules.next_version(v["spec"]["version"] for v in versions)
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
        triggers: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create or update an alias; `triggers` is klambda's `Triggers` ({} to clear), None
        to keep the alias's."""
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
            alias = Alias(
                metadata=ObjectMeta(name=f"{function}.{name}"), spec=AliasSpec.model_validate(spec)
            )
            if "routing" in spec:
                RoutingConfig.model_validate(spec["routing"])
        except ValidationError as err:
            raise ClusterError("; ".join(describe_errors(err))) from None
        if triggers is not None:
            try:
                checked = changes.alias_triggers(alias.spec, triggers).wire()
            except rules.RuleError as err:
                raise ClusterError(str(err)) from None
            for key in ("events", "functionUrl"):
                spec[key] = checked.get(key)
        spec = {k: v for k, v in spec.items() if v is not None}
        try:
            rules.check_alias_targets(
                alias.spec, (v["spec"]["version"] for v in self.versions(function))
            )
        except rules.RuleError as err:
            raise ClusterError(str(err)) from None
        body = {
            "apiVersion": contract.API_VERSION,
            "kind": "Alias",
            "metadata": {"name": f"{function}.{name}", "namespace": self.namespace},
            "spec": spec,
        }
        try:
            if old is None:
                return _raw(self.client.create(AliasRes.from_dict(body), namespace=self.namespace))
            # the whole spec replaced: a merge patch would keep what was removed (the
            # routing once cleared, a trigger no longer declared)
            return _raw(
                self.client.patch(
                    AliasRes,
                    f"{function}.{name}",
                    [{"op": "replace", "path": "/spec", "value": spec}],
                    namespace=self.namespace,
                    patch_type=PatchType.JSON,
                )
            )
        except ApiError as err:
            raise ClusterError(f"Alias {function}.{name}: {err.status.message}") from None

    def delete_alias(self, function: str, name: str) -> None:
        self._get(AliasRes, f"{function}.{name}", f"alias {function}:{name}")
        self.client.delete(AliasRes, f"{function}.{name}", namespace=self.namespace)

    def delete_version(self, function: str, version: str) -> None:
        self._get(VersionRes, f"{function}.{version}", f"version {function}:{version}")
        try:
            rules.check_delete_version(function, version, self._alias_specs(function))
        except rules.RuleError as err:
            raise ClusterError(str(err)) from None
        self.client.delete(VersionRes, f"{function}.{version}", namespace=self.namespace)

    def _alias_specs(self, function: str) -> dict[str, AliasSpec]:
        return {
            a["metadata"]["name"].partition(".")[2]: AliasSpec.model_validate(a["spec"])
            for a in self.aliases(function)
        }

    def _reservations(self) -> dict[str, int]:
        return {
            fn["metadata"]["name"]: r
            for fn in self.functions()
            if (r := fn["spec"].get("reservedConcurrency")) is not None
        }

    def put_reserved(self, function: str, reserved: int | None, account_limit: int) -> None:
        self._get(FunctionRes, function, f"Function {function}")
        try:
            rules.check_reservation(
                function, reserved, self._reservations(), account_limit, UNRESERVED_CONCURRENCY_MIN
            )
        except rules.RuleError as err:
            raise ClusterError(f"spec.reservedConcurrency: {err}") from None
        self.client.patch(
            FunctionRes,
            function,
            {"spec": {"reservedConcurrency": reserved}},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    def put_provisioned(
        self, function: str, qualifier: str, count: int, account_limit: int
    ) -> None:
        fn = self._get(FunctionRes, function, f"Function {function}")
        versions = [VersionSpec.model_validate(v["spec"]) for v in self.versions(function)]
        aliases = self._alias_specs(function)
        mine = [v.provisioned_concurrency for v in versions if v.version == qualifier] + [
            a.provisioned_concurrency for n, a in aliases.items() if n == qualifier
        ]
        reservations = self._reservations()
        others_reserved = sum(n for f, n in reservations.items() if f != function)
        try:
            rules.check_provisioned(
                function,
                qualifier,
                count,
                rules.provisioned_total(versions, aliases.values()) - sum(mine),
                fn["spec"].get("reservedConcurrency"),
                account_limit - others_reserved - UNRESERVED_CONCURRENCY_MIN,
                UNRESERVED_CONCURRENCY_MIN,
            )
        except rules.RuleError as err:
            raise ClusterError(str(err)) from None
        if qualifier.isdigit():
            res, name = VersionRes, f"{function}.{qualifier}"
        else:
            res, name = AliasRes, f"{function}.{qualifier}"
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

    # provisioned autoscaling: the policy lives on the Alias or Version, where the routers
    # read it (klambda.router.autoscaler)

    def _qualified(self, function: str, qualifier: str) -> tuple[Any, str, dict[str, Any]]:
        res = VersionRes if qualifier.isdigit() else AliasRes
        name = f"{function}.{qualifier}"
        return res, name, self._get(res, name, f"{function}:{qualifier}")

    def put_autoscaling(
        self, function: str, qualifier: str, policy: dict[str, Any] | None
    ) -> dict[str, Any]:
        res, name, _ = self._qualified(function, qualifier)
        try:
            self.client.patch(
                res,
                name,
                {"spec": {"provisionedAutoscaling": policy}},
                namespace=self.namespace,
                patch_type=PatchType.MERGE,
            )
        except ApiError as err:
            raise ClusterError(f"{function}:{qualifier}: {err.status.message}") from None
        return self.autoscaling(function, qualifier)

    def autoscaling(self, function: str, qualifier: str) -> dict[str, Any]:
        _, _, raw = self._qualified(function, qualifier)
        policy = raw["spec"].get("provisionedAutoscaling")
        if policy is None:
            return {}
        return {
            "policy": policy,
            "provisionedConcurrency": raw["spec"].get("provisionedConcurrency", 0),
        }
