"""Names of the objects the operator creates, derived from the resources they serve.

Deterministic names are what make reconciliation idempotent: the operator finds its
children by name, never by remembering it created them. Function names are at most 48
characters (klambda.api.limits), so `<function>-v<9 digits>` stays a valid DNS label.
"""

from __future__ import annotations

from klambda.contract import (
    dbproxy_host,
    dbproxy_name,
    pool_name,
    short_hash,
    snapshot_name,
    version_label,
)

from klambda_operator import constants

# the router reads snapshots, pools and proxies by these names too: klambda.contract
__all__ = [
    "dbproxy_host",
    "dbproxy_name",
    "pool_name",
    "short_hash",
    "snapshot_name",
    "version_label",
    "workload_name",
]


def workload_name(function: str, version: str) -> str:
    """The Deployment and Service of a function version: `hello-latest`, `hello-v3`."""
    if version == constants.LATEST:
        return f"{function}-{constants.LATEST_LABEL}"
    return f"{function}-v{version}"


def version_object_name(function: str, version: str) -> str:
    """The Version resource of a published version: `hello.3`."""
    return f"{function}.{version}"
