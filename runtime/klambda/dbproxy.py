"""PgBouncer's configuration for a DatabaseProxy, and the environment functions get. Pure.

The proxy listens on loopback; clients may give any user name (`auth_type = any`): the
server connection is made as the target's user, whose password (if the server asks for
one) PgBouncer reads from PGPASSWORD or .pgpass like any libpq client. `max_db_connections`
makes `poolSize` a hard cap on the server's connections, whatever the number of clients;
clients beyond the pool wait in PgBouncer's queue rather than fail.
"""

from __future__ import annotations

from klambda.api.databaseproxy import DatabaseProxySpec


def pgbouncer_ini(spec: DatabaseProxySpec, listen_host: str = "127.0.0.1") -> str:
    t = spec.target
    return "\n".join(
        [
            "[databases]",
            f"{t.database} = host={t.host} port={t.port} dbname={t.database} user={t.user}",
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
