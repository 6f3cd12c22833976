"""PgBouncer's configuration for a DatabaseProxy, and the environment functions get. Pure.

Clients may give any user name (`auth_type = any`): the server connection is made as the
target's user. PgBouncer reads no PGPASSWORD or .pgpass of its own: the password, when the
server asks for one, goes into the database's line of the configuration (`password=`,
quoted as PgBouncer reads it). Local mode writes it there from the router's PGPASSWORD;
a cluster's PgBouncer pod adds it at start from the Secret the pod gets as PGPASSWORD
(klambda_operator.builders), so that the ConfigMap never holds it.

`max_db_connections` makes `poolSize` a hard cap on the server's connections, whatever
the number of clients; clients beyond the pool wait in PgBouncer's queue rather than fail.

Which proxy a function gets (`environments`) is decided the same way in both modes and
in both of the cluster's planes (the operator's worker pods, the router's specialised
pool pods): the first proxy by name that lists it; the function's own variables win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from klambda.api.databaseproxy import DatabaseProxySpec

# The libpq variables a listed function gets.
VARIABLES = ("PGHOST", "PGPORT", "PGDATABASE")


def quote(value: str) -> str:
    """A value of PgBouncer's connection strings: in single quotes, `'` doubled (a
    backslash is an ordinary character there). ValueError for a line break, which no
    line of an ini file can hold."""
    if "\n" in value or "\r" in value:
        raise ValueError("a line break cannot be written into PgBouncer's configuration")
    return "'" + value.replace("'", "''") + "'"


def pgbouncer_ini(
    spec: DatabaseProxySpec, listen_host: str = "127.0.0.1", password: str | None = None
) -> str:
    t = spec.target
    database = f"{t.database} = host={t.host} port={t.port} dbname={t.database} user={t.user}"
    if password:
        database += f" password={quote(password)}"
    return "\n".join(
        [
            "[databases]",
            database,
            "",
            "[pgbouncer]",
            f"listen_addr = {listen_host}",
            f"listen_port = {spec.port}",
            "unix_socket_dir =",
            "auth_type = any",
            f"pool_mode = {spec.pool_mode}",
            f"default_pool_size = {spec.pool_size}",
            f"max_db_connections = {spec.pool_size}",
            f"max_client_conn = {spec.max_client_connections}",
            "ignore_startup_parameters = extra_float_digits,options,application_name",
            "logfile =",
            "pidfile =",
            "",
        ]
    )


def function_environment(spec: DatabaseProxySpec, host: str = "127.0.0.1") -> dict[str, str]:
    """libpq's variables, so psycopg, asyncpg and psql connect through the proxy as is."""
    return {"PGHOST": host, "PGPORT": str(spec.port), "PGDATABASE": spec.target.database}


def environments(
    proxies: Mapping[str, DatabaseProxySpec], host: Callable[[str], str]
) -> dict[str, dict[str, str]]:
    """function -> the variables of the proxy that serves it: the first proxy by name
    that lists it; `host(proxy name)` is where the function reaches that proxy."""
    out: dict[str, dict[str, str]] = {}
    for name in sorted(proxies):
        spec = proxies[name]
        for function in spec.functions:
            out.setdefault(function, function_environment(spec, host(name)))
    return out


def with_proxy(own: Mapping[str, str], proxy: Mapping[str, str]) -> dict[str, str]:
    """A function's environment with its proxy's variables; its own values win."""
    return {**proxy, **own}
