"""A DatabaseProxy in a cluster: the operator makes PgBouncer's ConfigMap, Deployment and
Service, owned by the proxy; the Function it lists gets the proxy's address in its worker
pods; a spec change reaches both; deleting the proxy deletes them. And what the pod would
run really works: the Deployment's own command, with the ConfigMap's configuration and
the password Secret's value, starts Debian's pgbouncer, which logs in to a real
PostgreSQL that demands that password."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from klambda.testing import eventually, free_port

from tests.integration.sources.pgserver import PostgresServer, postgres_server
from tests.kube.controlplane import ControlPlane

from .conftest import Namespace, Operator, condition, function_manifest

# a quote and a backslash: PgBouncer's connection strings must be written right
PASSWORD = "it's a s3cret\\ pass"


def proxy_manifest(pg_port: int, **spec: Any) -> dict[str, Any]:
    target = {
        "host": "127.0.0.1",
        "port": pg_port,
        "database": "postgres",
        "user": "app",
        "passwordSecret": {"name": "app-db", "key": "password"},
    }
    return {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "DatabaseProxy",
        "metadata": {"name": "app-db"},
        "spec": {"target": target, "poolSize": 5, "functions": ["orders"]} | spec,
    }


def env_of(deployment: dict[str, Any] | None) -> dict[str, Any]:
    assert deployment is not None
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.fixture
def pg_with_password() -> Iterator[PostgresServer]:
    """PostgreSQL where `app` must give PASSWORD (SCRAM); `postgres` stays trusted."""
    with postgres_server() as pg:
        literal = "'" + PASSWORD.replace("'", "''") + "'"
        pg.sql(f"CREATE ROLE app LOGIN PASSWORD {literal}")
        (pg.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        pg.sql("SELECT pg_reload_conf()")
        yield pg


@contextlib.contextmanager
def pod_command(deployment: dict[str, Any], ini: str) -> Iterator[subprocess.Popen[str]]:
    """The PgBouncer container's command as the pod runs it, on this machine: its
    configuration and run folders here, PGPASSWORD as the Secret gives it. PgBouncer
    refuses root: as root, it runs as `nobody` (the pod runs as its own non-root uid), in a
    folder that user can reach. Stopped on the way out."""
    folder = Path(tempfile.mkdtemp(prefix="klambda-dbproxy-"))
    try:
        with _started(deployment, ini, folder) as proc:
            yield proc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _started(deployment: dict[str, Any], ini: str, folder: Path) -> Iterator[subprocess.Popen[str]]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    config, run = folder / "config", folder / "run"
    config.mkdir()
    run.mkdir()
    (config / "pgbouncer.ini").write_text(ini)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "KLAMBDA_DBPROXY_CONFIG": str(config / "pgbouncer.ini"),
        "KLAMBDA_DBPROXY_RUN": str(run),
        "PGPASSWORD": PASSWORD,
    }
    names = {e["name"] for e in container["env"]}
    assert names == set(env) - {"PATH"}, names
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(run, "nobody")
        for p in (folder, config, config / "pgbouncer.ini"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        as_user = ["runuser", "-u", "nobody", "--"]
    proc = subprocess.Popen(
        [*as_user, *container["command"]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=10)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.kube
def test_database_proxy_in_a_cluster(
    ns: Namespace,
    garbage_collector: ControlPlane,
    start_operator: Callable[..., Operator],
    pg_with_password: PostgresServer,
) -> None:
    pg = pg_with_password
    start_operator(db_proxy_image="reg.example/pgbouncer:t", function_service_account="fn-sa")
    ns.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "app-db"},
            "stringData": {"password": PASSWORD},
        }
    )
    ns.apply(function_manifest("orders", environment={"GREETING": "hi"}))
    ns.apply(function_manifest("plain"))
    ns.apply(proxy_manifest(pg.port))

    name, host = "app-db-dbproxy", f"app-db-dbproxy.{ns.name}.svc"
    proxy = ns.wait_state("DatabaseProxy", "app-db", "Pending")  # no kubelet: never ready
    uid = proxy["metadata"]["uid"]
    assert proxy["status"]["endpoint"] == f"{host}:6432"
    assert condition(proxy, "WorkloadReady")["status"] == "True"
    ready = condition(proxy, "Ready")
    assert ready["status"] == "False", ready
    assert ready["reason"] in ("Creating", "Progressing", "Unavailable"), ready

    cm, deployment, service = (ns.get(k, name) for k in ("ConfigMap", "Deployment", "Service"))
    for child in (cm, deployment, service):
        assert child is not None
        [ref] = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "DatabaseProxy", "app-db", uid, True,
        )  # fmt: skip
    assert cm is not None
    assert deployment is not None
    assert service is not None
    ini = cm["data"]["pgbouncer.ini"]
    assert f"postgres = host=127.0.0.1 port={pg.port} dbname=postgres user=app\n" in ini
    assert "listen_addr = 0.0.0.0\nlisten_port = 6432\n" in ini
    assert "max_db_connections = 5\n" in ini
    assert PASSWORD not in ini
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fn-sa"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["image"] == "reg.example/pgbouncer:t"
    assert container["readinessProbe"]["tcpSocket"]["port"] == "postgres"
    assert env_of(deployment)["PGPASSWORD"] == {
        "secretKeyRef": {"name": "app-db", "key": "password"}
    }
    assert service["spec"]["ports"][0]["port"] == 6432
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    # the listed function's pods get the proxy's address; the other's do not
    def orders_env(**want: str | None) -> dict[str, Any] | None:
        env = env_of(ns.get("Deployment", "orders-latest"))
        return env if all(env.get(k) == v for k, v in want.items()) else None

    env = ns.wait(lambda: orders_env(PGHOST=host, PGPORT="6432"), "orders to get PGHOST")
    assert (env["PGDATABASE"], env["GREETING"]) == ("postgres", "hi")
    assert "PGHOST" not in env_of(ns.wait(lambda: ns.get("Deployment", "plain-latest"), "plain"))

    # the pod's command with this configuration, against the real server
    port = free_port()
    local_ini = ini.replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1").replace(
        "listen_port = 6432", f"listen_port = {port}"
    )
    with pod_command(deployment, local_ini) as proc:

        def up() -> bool:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"the pod's command exited {proc.returncode}: {out}")
            return listening(port)

        eventually(up, "pgbouncer to listen")
        dsn = f"host=127.0.0.1 port={port} dbname=postgres user=anyone"
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
            row = conn.execute("SELECT current_user, 40 + 2").fetchone()
        assert row == ("app", 42)
        # the server's connection is PgBouncer's, as app: the password worked
        users = pg.sql("SELECT usename FROM pg_stat_activity WHERE usename = 'app'")
        assert set(users.splitlines()) == {"app"}, users

    # a spec change reaches the ConfigMap, the Deployment, the Service and the function
    old_digest = deployment["spec"]["template"]["metadata"]["annotations"]
    ns.patch("DatabaseProxy", "app-db", {"spec": {"poolSize": 3, "port": 7432}})

    def changed() -> bool:
        cm, d, s = (ns.get(k, name) for k in ("ConfigMap", "Deployment", "Service"))
        return bool(
            cm and d and s
            and "max_db_connections = 3\n" in cm["data"]["pgbouncer.ini"]
            and "listen_port = 7432\n" in cm["data"]["pgbouncer.ini"]
            and d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
            == 7432
            and d["spec"]["template"]["metadata"]["annotations"] != old_digest
            and s["spec"]["ports"][0]["port"] == 7432
        )  # fmt: skip

    ns.wait(changed, "the proxy's objects to follow its spec")
    ns.wait(lambda: orders_env(PGHOST=host, PGPORT="7432"), "orders to get the new port")
    assert ns.wait_state("DatabaseProxy", "app-db", "Pending")["status"]["endpoint"] == (
        f"{host}:7432"
    )

    # taken off the list: the function's pods lose the address
    ns.patch("DatabaseProxy", "app-db", {"spec": {"functions": ["plain"]}})
    ns.wait(lambda: orders_env(PGHOST=None, PGPORT=None), "orders to lose PGHOST")
    ns.wait(
        lambda: env_of(ns.get("Deployment", "plain-latest")).get("PGHOST") == host,
        "plain to get PGHOST",
    )

    # deleted: its objects go with it, and so does the address
    ns.kubectl("delete", "databaseproxy", "app-db")
    for kind in ("ConfigMap", "Deployment", "Service"):
        ns.wait_gone(kind, name, timeout=60)
    ns.wait(
        lambda: "PGHOST" not in env_of(ns.get("Deployment", "plain-latest")),
        "plain to lose PGHOST",
    )


@pytest.mark.kube
def test_a_bad_database_proxy_is_refused_naming_the_field(ns: Namespace) -> None:
    bad = proxy_manifest(5432)
    bad["spec"]["target"]["passwordSecret"] = {"name": "Not_A_Name", "key": "password"}
    out = ns.try_apply(bad)
    assert out.returncode != 0
    assert "spec.target.passwordSecret.name" in out.stderr, out.stderr
