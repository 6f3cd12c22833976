"""The DatabaseProxy kind: a connection pool in front of a PostgreSQL server for functions
(RDS Proxy's role), run by PgBouncer.

    apiVersion: klambda.io/v1alpha1
    kind: DatabaseProxy
    metadata: {name: shop-db}
    spec:
      target:
        host: 127.0.0.1
        port: 5432
        database: shop
        user: app
        passwordSecret: {name: shop-db, key: password}   # optional (cluster mode)
      poolSize: 10                 # server connections per database and user
      maxClientConnections: 1000
      poolMode: transaction
      port: 6432                   # where functions connect
      functions: [orders]          # get PGHOST/PGPORT/PGDATABASE pointing at the proxy

Many short-lived environments each opening a connection would exhaust the server; through
the proxy they share `poolSize` server connections, and wait (not fail) for one.

The target's password, when the server asks for one: in a cluster, the key of a Secret of
the proxy's namespace (`target.passwordSecret`), which the PgBouncer pod gets as
PGPASSWORD; in local mode, PGPASSWORD in the router's own environment (there is no
Secret to read: `passwordSecret` is accepted, so that the same manifest serves both modes,
and not used).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from klambda.api import limits
from klambda.api.meta import Model, ObjectMeta

PROXY_NAME_PATTERN = r"^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$"
# A Secret's name (a DNS subdomain) and one of its keys, as the API server checks them.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
POOL_SIZE_MAX = 1000
CLIENTS_MAX = 100000


class SecretKey(Model):
    """One key of a Secret in the proxy's namespace."""

    name: str = Field(max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field(max_length=253, pattern=SECRET_KEY_PATTERN)


class ProxyTarget(Model):
    host: str = Field(max_length=253)
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    user: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    password_secret: SecretKey | None = Field(default=None, alias="passwordSecret")


class DatabaseProxySpec(Model):
    target: ProxyTarget
    pool_size: int = Field(default=10, ge=1, le=POOL_SIZE_MAX, alias="poolSize")
    max_client_connections: int = Field(
        default=1000, ge=1, le=CLIENTS_MAX, alias="maxClientConnections"
    )
    pool_mode: Literal["session", "transaction", "statement"] = Field(
        default="transaction", alias="poolMode"
    )
    port: int = Field(default=6432, ge=1024, le=65535)
    functions: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _functions(self) -> DatabaseProxySpec:
        for f in self.functions:
            if not re.match(limits.FUNCTION_NAME_PATTERN, f):
                raise ValueError(f"functions: {f!r} is not a function name")
        return self


class DatabaseProxy(Model):
    api_version: Literal["klambda.io/v1alpha1"] = Field(
        default="klambda.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["DatabaseProxy"] = "DatabaseProxy"
    metadata: ObjectMeta
    spec: DatabaseProxySpec

    @model_validator(mode="after")
    def _name(self) -> DatabaseProxy:
        if not re.match(PROXY_NAME_PATTERN, self.metadata.name):
            raise ValueError(f"metadata.name {self.metadata.name!r} must be a DNS label")
        return self
