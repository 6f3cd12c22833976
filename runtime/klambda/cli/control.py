"""The `Control` protocol: where the command line's control verbs go.

Two implementations: `RouterControl`, the router's REST API (local mode, where the router's
`klambda.router.control.LocalControl` keeps the state), and `ClusterControl`, the API
server's objects (`--kubeconfig`; klambda.cli.kube), which the operator and the routers
then act on. Both decide with the same rules (klambda.api.rules) and answer in Lambda's
shapes (klambda.shapes), so one piece of code prints them.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from klambda import shapes
from klambda.api import AliasSpec, FunctionSpec
from klambda.api.limits import LATEST
from klambda.cli.client import API, ApiError, Client
from klambda.execution import FunctionConfig, config_of

AUTOSCALING = "/klambda/v1/functions"


class ControlError(Exception):
    pass


class Control(Protocol):
    def functions(self) -> list[dict[str, Any]]: ...
    def versions(self, function: str) -> list[dict[str, Any]]: ...
    def aliases(self, function: str) -> list[dict[str, Any]]: ...
    def publish_version(self, function: str, description: str) -> dict[str, Any]: ...
    def put_alias(
        self,
        function: str,
        name: str,
        version: str | None,
        routing: dict[str, float] | None,
        description: str | None,
        triggers: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def delete_alias(self, function: str, name: str) -> None: ...

    def delete_version(self, function: str, version: str) -> None: ...

    def put_reserved(self, function: str, reserved: int | None) -> None: ...
    def put_provisioned(
        self, function: str, qualifier: str, count: int, wait: bool
    ) -> dict[str, Any]: ...

    def triggers(self, function: str | None) -> dict[str, Any]: ...

    def put_autoscaling(
        self, function: str, qualifier: str, policy: dict[str, Any] | None
    ) -> dict[str, Any]: ...
    def autoscaling(self, function: str, qualifier: str) -> dict[str, Any]: ...


class RouterControl:
    def __init__(self, client: Client) -> None:
        self.c = client

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.c.json(method, path, body)
        except ApiError as err:
            raise ControlError(str(err)) from None

    def functions(self) -> list[dict[str, Any]]:
        return list(self._call("GET", API)["Functions"])

    def versions(self, function: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"{API}/{function}/versions")["Versions"])

    def aliases(self, function: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"{API}/{function}/aliases")["Aliases"])

    def triggers(self, function: str | None) -> dict[str, Any]:
        query = f"?function={function}" if function else ""
        return dict(self._call("GET", f"/klambda/v1/triggers{query}"))

    def publish_version(self, function: str, description: str) -> dict[str, Any]:
        return dict(self._call("POST", f"{API}/{function}/versions", {"Description": description}))

    def put_alias(
        self,
        function: str,
        name: str,
        version: str | None,
        routing: dict[str, float] | None,
        description: str | None,
        triggers: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if triggers is not None:
            body["Triggers"] = triggers
        if version is not None:
            body["FunctionVersion"] = version
        if description is not None:
            body["Description"] = description
        if routing is not None:
            body["RoutingConfig"] = {"AdditionalVersionWeights": routing}
        try:
            self.c.json("GET", f"{API}/{function}/aliases/{name}")
            exists = True
        except ApiError as err:
            if err.code != "ResourceNotFoundException":
                raise ControlError(str(err)) from None
            exists = False
        if exists:
            return dict(self._call("PUT", f"{API}/{function}/aliases/{name}", body))
        body.setdefault("RoutingConfig", {"AdditionalVersionWeights": {}})
        return dict(self._call("POST", f"{API}/{function}/aliases", {"Name": name, **body}))

    def delete_alias(self, function: str, name: str) -> None:
        self._call("DELETE", f"{API}/{function}/aliases/{name}")

    def delete_version(self, function: str, version: str) -> None:
        self._call("DELETE", f"{API}/{function}?Qualifier={version}")

    def put_reserved(self, function: str, reserved: int | None) -> None:
        path = f"/2017-10-31/functions/{function}/concurrency"
        if reserved is None:
            self._call("DELETE", path)
        else:
            self._call("PUT", path, {"ReservedConcurrentExecutions": reserved})

    def put_provisioned(
        self, function: str, qualifier: str, count: int, wait: bool
    ) -> dict[str, Any]:
        path = f"/2019-09-30/functions/{function}/provisioned-concurrency?Qualifier={qualifier}"
        status = dict(self._call("PUT", path, {"ProvisionedConcurrentExecutions": count}))
        deadline = time.monotonic() + 120
        while wait and status["Status"] == "IN_PROGRESS" and time.monotonic() < deadline:
            time.sleep(0.1)
            status = dict(self._call("GET", path))
        return status

    def put_autoscaling(
        self, function: str, qualifier: str, policy: dict[str, Any] | None
    ) -> dict[str, Any]:
        path = f"{AUTOSCALING}/{function}/provisioned-autoscaling?Qualifier={qualifier}"
        if policy is None:
            self._call("DELETE", path)
            return {}
        return dict(self._call("PUT", path, policy))

    def autoscaling(self, function: str, qualifier: str) -> dict[str, Any]:
        path = f"{AUTOSCALING}/{function}/provisioned-autoscaling?Qualifier={qualifier}"
        return dict(self._call("GET", path))


def _configuration(
    name: str, version: str, spec: dict[str, Any], sha: str, status: Any, description: str
) -> dict[str, Any]:
    """Lambda's FunctionConfiguration of a Function or Version object, as the router's REST
    API gives it (klambda.shapes)."""
    cfg = config_of(
        name,
        version,
        FunctionSpec.model_validate(spec),
        code_root="",
        code_sha256=sha or "-",
        region="us-east-1",
        account="000000000000",
    )
    status = status or {}
    return shapes.function_configuration(
        cfg, status.get("state") or "Pending", status.get("stateReason"), description
    )


def _alias(obj: dict[str, Any]) -> dict[str, Any]:
    function, _, name = obj["metadata"]["name"].partition(".")
    spec = AliasSpec.model_validate(obj["spec"])
    cfg = FunctionConfig(function, LATEST, "", "", 128, 3, {}, "", "")
    return shapes.alias_configuration(cfg, name, spec)


class ClusterControl:
    def __init__(self, kubeconfig: str | None, namespace: str | None, account_limit: int) -> None:
        from klambda.cli.kube import Cluster

        self.cluster = Cluster(kubeconfig, namespace)
        self.account_limit = account_limit

    def _do(self, fn: Any, *args: Any) -> Any:
        from lightkube import ApiError as KubeApiError

        from klambda.cli.kube import ClusterError

        try:
            return fn(*args)
        except ClusterError as err:
            raise ControlError(str(err)) from None
        except KubeApiError as err:
            raise ControlError(err.status.message or str(err)) from None

    def functions(self) -> list[dict[str, Any]]:
        return [
            _configuration(
                f["metadata"]["name"],
                "$LATEST",
                f["spec"],
                (f.get("status") or {}).get("codeSha256", ""),
                f.get("status"),
                f["spec"].get("description", ""),
            )
            for f in self._do(self.cluster.functions)
        ]

    def versions(self, function: str) -> list[dict[str, Any]]:
        fn = [f for f in self.functions() if f["FunctionName"] == function]
        return fn + [
            _configuration(
                function,
                v["spec"]["version"],
                v["spec"]["config"],
                v["spec"]["codeSha256"],
                v.get("status"),
                v["spec"].get("description", ""),
            )
            for v in self._do(self.cluster.versions, function)
        ]

    def aliases(self, function: str) -> list[dict[str, Any]]:
        return [_alias(a) for a in self._do(self.cluster.aliases, function)]

    def put_autoscaling(
        self, function: str, qualifier: str, policy: dict[str, Any] | None
    ) -> dict[str, Any]:
        return dict(self._do(self.cluster.put_autoscaling, function, qualifier, policy))

    def autoscaling(self, function: str, qualifier: str) -> dict[str, Any]:
        return dict(self._do(self.cluster.autoscaling, function, qualifier))

    def triggers(self, function: str | None) -> dict[str, Any]:
        """The triggers the objects declare, with the state their status reports."""
        objects: list[tuple[str, str | None, dict[str, Any]]] = []
        for f in self._do(self.cluster.functions):
            name = f["metadata"]["name"]
            if function and name != function:
                continue
            objects.append((name, None, f))
            for a in self._do(self.cluster.aliases, name):
                objects.append((name, a["metadata"]["name"].partition(".")[2], a))
        rows: list[dict[str, Any]] = []
        urls: list[dict[str, Any]] = []
        for fn, alias, obj in objects:
            status = obj.get("status") or {}
            reported = {t["name"]: t for t in status.get("triggers") or []}
            for name, event in sorted((obj["spec"].get("events") or {}).items()):
                rows.append(
                    {
                        "function": fn,
                        "alias": alias,
                        "name": name,
                        "type": event["type"],
                        "state": "Unknown",
                        "reason": "no status reported yet",
                        **reported.get(name, {}),
                    }
                )
            url = obj["spec"].get("functionUrl")
            if url is not None:
                urls.append(
                    {
                        "function": fn,
                        "alias": alias,
                        "url": status.get("functionUrl", ""),
                        "authType": url.get("authType", "NONE"),
                        "invokeMode": url.get("invokeMode", "BUFFERED"),
                    }
                )
        return {"Triggers": rows, "FunctionUrls": urls}

    def publish_version(self, function: str, description: str) -> dict[str, Any]:
        v = self._do(self.cluster.publish_version, function, description)
        return _configuration(
            function,
            v["spec"]["version"],
            v["spec"]["config"],
            v["spec"]["codeSha256"],
            None,
            v["spec"].get("description", ""),
        )

    def put_alias(
        self,
        function: str,
        name: str,
        version: str | None,
        routing: dict[str, float] | None,
        description: str | None,
        triggers: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return _alias(
            self._do(
                self.cluster.put_alias, function, name, version, routing, description, triggers
            )
        )

    def delete_alias(self, function: str, name: str) -> None:
        self._do(self.cluster.delete_alias, function, name)

    def delete_version(self, function: str, version: str) -> None:
        self._do(self.cluster.delete_version, function, version)

    def put_reserved(self, function: str, reserved: int | None) -> None:
        self._do(self.cluster.put_reserved, function, reserved, self.account_limit)

    def put_provisioned(
        self, function: str, qualifier: str, count: int, wait: bool
    ) -> dict[str, Any]:
        self._do(self.cluster.put_provisioned, function, qualifier, count, self.account_limit)
        # the operator starts the pods; the count is what was asked for
        return {
            "RequestedProvisionedConcurrentExecutions": count,
            "AvailableProvisionedConcurrentExecutions": "?",
            "Status": "REQUESTED",
        }
