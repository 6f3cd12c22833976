"""A DatabaseProxy on real pods: the operator runs PgBouncer (klambda/pgbouncer, Debian's)
in front of a real PostgreSQL on this host, which demands a password the proxy reads from
a Secret; a listed function's environment gets the proxy's address and its queries reach
the database through the PgBouncer pod. (That the pool caps the server's connections under
500 concurrent calls is tests/integration/sources/test_database_proxy.py's, on one host.)"""

from __future__ import annotations

import base64
import ipaddress
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.sources.pgserver import PostgresServer, postgres_server

from .conftest import FUNCTIONS_NAMESPACE, Cluster, wait_for

PASSWORD = "kind's s3cret"
POOL = 3
KIND_NETWORK = ipaddress.ip_network("198.18.0.0/15")

# PostgreSQL's wire protocol in a few lines (startup with a cleartext password if asked,
# one query, terminate): the worker image has no driver a handler may count on
QUERY = """\
import os, socket, struct

def recv(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf

def message(s):
    tag = recv(s, 1)
    return tag, recv(s, struct.unpack("!i", recv(s, 4))[0] - 4)

def connect(address):
    # as libpq's connect_timeout: a short timeout per attempt, and up to ten attempts,
    # within the call's 30 s (a Service's first connection in the moment after the proxy
    # is Active may be lost until kube-proxy routes it: a new socket gets through)
    attempts = 0
    while True:
        attempts += 1
        try:
            return socket.create_connection(address, 2), attempts
        except OSError:
            if attempts >= 10:
                raise

def handler(event, context):
    s, attempts = connect((os.environ["PGHOST"], int(os.environ["PGPORT"])))
    params = b"user\\0app\\0database\\0" + os.environ["PGDATABASE"].encode() + b"\\0\\0"
    s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    rows = []
    while True:
        tag, body = message(s)
        if tag == b"E":
            raise RuntimeError(body.decode(errors="replace"))
        if tag == b"Z":
            break
    sql = b"SELECT current_user\\0"
    s.sendall(b"Q" + struct.pack("!i", 4 + len(sql)) + sql)
    while True:
        tag, body = message(s)
        if tag == b"E":
            raise RuntimeError(body.decode(errors="replace"))
        if tag == b"D":
            (n,) = struct.unpack("!h", body[:2])
            (size,) = struct.unpack("!i", body[2:6])
            rows.append(body[6:6 + size].decode())
        if tag == b"Z":
            break
    s.sendall(b"X" + struct.pack("!i", 4))
    s.close()
    return {"rows": rows, "host": os.environ["PGHOST"], "port": os.environ["PGPORT"],
            "attempts": attempts}
"""


def _gateway(cluster: Cluster) -> str:
    """This host's address on the kind node's network: where the pods reach it."""
    out = subprocess.run(
        [str(cluster.bin_dir / "docker"), "inspect", cluster.node, "-f",
         "{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    gateway = out.stdout.split()[0]
    assert ipaddress.ip_address(gateway) in KIND_NETWORK, gateway
    return gateway


@pytest.fixture
def database(cluster: Cluster) -> Iterator[tuple[PostgresServer, str]]:
    """PostgreSQL on this host, on the kind network too; `app` must give PASSWORD."""
    gateway = _gateway(cluster)
    with postgres_server() as pg:
        pg.sql(f"CREATE ROLE app LOGIN PASSWORD '{PASSWORD.replace(chr(39), chr(39) * 2)}'")
        (pg.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            f"host all app {KIND_NETWORK} scram-sha-256\n"
        )
        pg.pg_ctl("stop", "-m", "fast")
        pg.pg_ctl("start", "-o",
                  f"-p {pg.port} -k {pg.data} -c listen_addresses=127.0.0.1,{gateway}")  # fmt: skip
        yield pg, gateway


def _apply(cluster: Cluster, *objects: dict[str, Any]) -> None:
    cluster.kubectl(
        "apply", "-n", FUNCTIONS_NAMESPACE, "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )  # fmt: skip


def test_a_function_reaches_postgresql_through_the_proxys_pod(
    cluster: Cluster, database: tuple[PostgresServer, str]
) -> None:
    pg, gateway = database
    secret = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kind-db"},
        "data": {"password": base64.b64encode(PASSWORD.encode()).decode()},
    }  # fmt: skip
    proxy = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "DatabaseProxy",
        "metadata": {"name": "kind-db"},
        "spec": {
            "target": {"host": gateway, "port": pg.port, "database": "postgres", "user": "app",
                       "passwordSecret": {"name": "kind-db", "key": "password"}},
            "poolSize": POOL,
            "functions": ["pg-query"],
        },
    }  # fmt: skip
    function = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "pg-query"},
        "spec": {"runtime": "python3.11", "handler": "app.handler", "timeoutSeconds": 30,
                 "code": {"inline": {"app.py": QUERY}}},
    }  # fmt: skip
    _apply(cluster, secret, proxy, function)
    try:

        def active(kind: str, name: str) -> bool:
            obj = cluster.get(kind, name, "-n", FUNCTIONS_NAMESPACE)
            return bool((obj.get("status") or {}).get("state") == "Active")

        wait_for("the DatabaseProxy Active (its PgBouncer pod ready)",
                 lambda: active("databaseproxy", "kind-db"), timeout=240)  # fmt: skip
        wait_for("pg-query Active", lambda: active("function", "pg-query"))

        status, _headers, body = cluster.invoke("pg-query", {})
        assert status == 200, body
        answer = json.loads(body)
        assert answer.get("rows") == ["app"], answer
        assert answer["host"].startswith("kind-db-dbproxy."), answer
        assert answer["port"] == "6432"
        # once the Service routes, a call's connection gets through at its first attempt
        status, _headers, body = cluster.invoke("pg-query", {})
        assert status == 200, body
        assert json.loads(body)["attempts"] == 1, body

        # PostgreSQL saw the proxy's pod, from the kind network, as `app`
        seen = pg.sql(
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE usename = 'app'"
        ).split()
        assert seen, "no connection of app"
        assert all(ipaddress.ip_address(a) in KIND_NETWORK for a in seen), seen

        # the pool's server connections are the proxy's, at most poolSize of them
        n = int(pg.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"))
        assert 1 <= n <= POOL, n
    finally:
        for kind, name in (("function", "pg-query"), ("databaseproxy", "kind-db"),
                           ("secret", "kind-db")):  # fmt: skip
            cluster.kubectl("delete", kind, name, "-n", FUNCTIONS_NAMESPACE,
                            "--ignore-not-found", "--wait=false", check=False)  # fmt: skip
