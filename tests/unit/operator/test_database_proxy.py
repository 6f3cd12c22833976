"""A DatabaseProxy's objects as the operator builds them, with no API server: PgBouncer's
ConfigMap, Deployment and Service, the proxy's state from its Deployment, and the address
a listed function's pods get."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from klambda import contract
from klambda.api import FunctionSpec
from klambda.api.databaseproxy import DatabaseProxySpec
from klambda_operator import builders
from klambda_operator.settings import OperatorSettings

OWNER = {
    "apiVersion": "klambda.io/v1alpha1",
    "kind": "DatabaseProxy",
    "name": "shop-db",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def proxy(**spec: Any) -> builders.Proxy:
    base = {"target": {"host": "pg.data.svc", "database": "shop", "user": "app"}}
    return builders.Proxy("team", "shop-db", DatabaseProxySpec.model_validate(base | spec), OWNER)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def test_names_and_address() -> None:
    p = proxy()
    assert p.object_name == "shop-db-dbproxy"
    assert p.host == "shop-db-dbproxy.team.svc"
    for body in (
        builders.build_proxy_configmap(p),
        builders.build_proxy_deployment(p, OperatorSettings()),
        builders.build_proxy_service(p),
    ):
        meta = body["metadata"]
        assert (meta["name"], meta["namespace"]) == ("shop-db-dbproxy", "team")
        assert meta["ownerReferences"] == [OWNER]
        assert meta["labels"][contract.LABEL_DATABASE_PROXY] == "shop-db"
        assert meta["labels"][contract.LABEL_COMPONENT] == "dbproxy"
        # not a worker: the workers' NetworkPolicy and the router's endpoints ignore it
        assert contract.LABEL_FUNCTION not in meta["labels"]


def test_configmap_holds_pgbouncer_ini_listening_in_the_pod() -> None:
    ini = builders.build_proxy_configmap(proxy(poolSize=4, port=7432))["data"]["pgbouncer.ini"]
    assert "shop = host=pg.data.svc port=5432 dbname=shop user=app\n" in ini
    assert "listen_addr = 0.0.0.0\nlisten_port = 7432\n" in ini
    assert "max_db_connections = 4\n" in ini
    assert "password" not in ini


def test_deployment_runs_one_restricted_pgbouncer() -> None:
    settings = OperatorSettings(
        db_proxy_image="reg.example/pgbouncer:1", function_service_account="klambda-function"
    )
    d = builders.build_proxy_deployment(proxy(port=7432), settings)
    assert d["spec"]["replicas"] == 1
    template = d["spec"]["template"]
    selector = d["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "klambda-function"  # the admission policy's
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(d)
    assert c["image"] == "reg.example/pgbouncer:1"
    assert c["securityContext"] == builders.CONTAINER_SECURITY
    assert c["ports"] == [{"name": "postgres", "containerPort": 7432, "protocol": "TCP"}]
    assert c["readinessProbe"]["tcpSocket"] == {"port": "postgres"}
    assert c["command"][:2] == ["/bin/sh", "-c"]
    assert "$(" not in c["command"][2]  # Kubernetes would expand it
    env = {e["name"]: e for e in c["env"]}
    assert "PGPASSWORD" not in env
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert env["KLAMBDA_DBPROXY_CONFIG"]["value"] == mounts["config"] + "/pgbouncer.ini"
    assert env["KLAMBDA_DBPROXY_RUN"]["value"] == mounts["run"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "shop-db-dbproxy"
    assert volumes["run"]["emptyDir"]["medium"] == "Memory"


def test_password_comes_from_the_secret_and_a_new_ini_rolls_the_pod() -> None:
    secret = {"name": "shop-db", "key": "password"}
    base = {"host": "pg.data.svc", "database": "shop", "user": "app"}
    d = builders.build_proxy_deployment(
        proxy(target=base | {"passwordSecret": secret}), OperatorSettings()
    )
    env = {e["name"]: e for e in container(d)["env"]}
    assert env["PGPASSWORD"] == {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": secret}}

    def digest(p: builders.Proxy) -> str:
        notes = builders.build_proxy_deployment(p, OperatorSettings())["spec"]["template"]
        return notes["metadata"]["annotations"][contract.ANNOTATION_CONFIG_SHA256]  # type: ignore[no-any-return]

    assert digest(proxy()) == hashlib.sha256(builders.proxy_ini(proxy()).encode()).hexdigest()
    assert digest(proxy(poolSize=3)) != digest(proxy())


def test_service_is_a_virtual_ip_at_the_proxy_port() -> None:
    s = builders.build_proxy_service(proxy(port=7432))["spec"]
    assert s["type"] == "ClusterIP"
    assert s["ports"] == [
        {"name": "postgres", "port": 7432, "targetPort": "postgres", "protocol": "TCP"}
    ]
    d = builders.build_proxy_deployment(proxy(), OperatorSettings())
    assert s["selector"] == d["spec"]["selector"]["matchLabels"]


def deployment(generation: int, **status: int) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("live", "ready", "reason"),
    [
        (None, False, "Creating"),
        (deployment(2, observedGeneration=1, replicas=1, updatedReplicas=1, availableReplicas=1),
         False, "Progressing"),
        (deployment(1, observedGeneration=1, replicas=1, updatedReplicas=1), False, "Unavailable"),
        # a rollout: the old pod serves, the new one is not ready yet
        (deployment(2, observedGeneration=2, replicas=2, updatedReplicas=1, availableReplicas=1),
         False, "Unavailable"),
        (deployment(2, observedGeneration=2, replicas=1, updatedReplicas=1, availableReplicas=1),
         True, "Available"),
    ],
)  # fmt: skip
def test_state_follows_the_deployment(live: Any, ready: bool, reason: str) -> None:
    got = builders.proxy_availability(live)
    assert got[:2] == (ready, reason)


def workload(environment: dict[str, str], proxied: dict[str, str]) -> builders.Workload:
    spec = {"handler": "app.handler", "runtime": "python3.12", "code": {"inline": {"a.py": ""}}}
    return builders.Workload(
        namespace="team",
        function="orders",
        version="$LATEST",
        spec=FunctionSpec.model_validate(spec | {"environment": environment}),
        code_sha256="c2hh",
        owner={"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "name": "orders"},
        proxy_environment=proxied,
    )


def test_listed_function_gets_the_address_its_own_values_win() -> None:
    proxied = {"PGHOST": "shop-db-dbproxy.team.svc", "PGPORT": "6432", "PGDATABASE": "shop"}
    env = builders.worker_environment(workload({"PGDATABASE": "mine"}, proxied), OperatorSettings())
    assert (env["PGHOST"], env["PGPORT"], env["PGDATABASE"]) == (
        "shop-db-dbproxy.team.svc",
        "6432",
        "mine",
    )
    # the worker hands them to each environment as the function's own
    assert env["KLAMBDA_USER_ENVIRONMENT"] == "PGDATABASE,PGHOST,PGPORT"
    plain = builders.worker_environment(workload({}, {}), OperatorSettings())
    assert "PGHOST" not in plain
    # a specialised pool pod is compared with this configuration: the proxy is part of it
    with_proxy = contract.config_digest(
        builders.function_config(workload({}, proxied), OperatorSettings())
    )
    without = contract.config_digest(builders.function_config(workload({}, {}), OperatorSettings()))
    assert with_proxy != without
