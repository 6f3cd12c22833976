"""Names the operator shares with the API server, the router and the worker pods.

Everything another component may match on lives here: the API group, the labels the
router selects worker pods by, the annotations the router writes to drive scaling, and
the names of the objects the operator creates. Changing one of these is changing a
contract (see docs/operator.md), not a detail.
"""

from __future__ import annotations

from klambda.contract import (
    ANNOTATION_CLAIMED_AT,
    ANNOTATION_CODE_FILES,
    ANNOTATION_CODE_SHA256,
    ANNOTATION_CONFIG_SHA256,
    ANNOTATION_DEMAND,
    ANNOTATION_LAST_INVOKED,
    API_VERSION,
    CODE_ROOT,
    COMPONENT_CODE,
    COMPONENT_DBPROXY,
    COMPONENT_POOL,
    COMPONENT_SPECIALISED,
    COMPONENT_WORKER,
    CONFIGMAP_MAX_BYTES,
    GROUP,
    LABEL_COMPONENT,
    LABEL_DATABASE_PROXY,
    LABEL_FUNCTION,
    LABEL_POOL,
    LABEL_VERSION,
    LATEST,
    LATEST_LABEL,
    VERSION,
    WORKER_PORT,
    WORKER_PORT_NAME,
)

# shared with the router, the CLI and the worker pods: klambda.contract
__all__ = [
    "ANNOTATION_CLAIMED_AT",
    "ANNOTATION_CODE_FILES",
    "ANNOTATION_CODE_SHA256",
    "ANNOTATION_CONFIG_SHA256",
    "ANNOTATION_DEMAND",
    "ANNOTATION_LAST_INVOKED",
    "API_VERSION",
    "CODE_ROOT",
    "COMPONENT_CODE",
    "COMPONENT_DBPROXY",
    "COMPONENT_POOL",
    "COMPONENT_SPECIALISED",
    "COMPONENT_WORKER",
    "CONFIGMAP_MAX_BYTES",
    "GROUP",
    "LABEL_COMPONENT",
    "LABEL_DATABASE_PROXY",
    "LABEL_FUNCTION",
    "LABEL_POOL",
    "LABEL_VERSION",
    "LATEST",
    "LATEST_LABEL",
    "VERSION",
    "WORKER_PORT",
    "WORKER_PORT_NAME",
]

# The operator's identity on the objects it writes: server-side apply field manager,
# managed-by label, the source of the Events it posts.
FIELD_MANAGER = "klambda-operator"
COMPONENT = "klambda-operator"

# klambda needs no finalizer (children go with their owners through ownerReferences) and
# registers no kopf handler that would add one; kopf is told this name all the same, so
# that a finalizer on a klambda object could only ever be this one.
FINALIZER = f"{GROUP}/finalizer"

# Labels on every child object (and LABEL_FUNCTION, LABEL_VERSION, LABEL_COMPONENT, from
# the contract).
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"

# Written by the operator on worker Deployments: the scale-up rate limiter's clock.
ANNOTATION_SCALE_UP_CLOCK = f"{GROUP}/scale-up-clock"

# The worker pod's writable /tmp, like Lambda's (its code root and port: the contract),
# an emptyDir of the function's ephemeralStorageMB; the pod's ephemeral-storage limit is
# that plus room for the container's logs, which the kubelet counts against it too.
TMP_DIR = "/tmp"
TMP_SIZE = "512Mi"
# A pool pod's code root, which the worker writes the specialised code to: a snapshot
# holds at most a ConfigMap's MiB, inline code as much as an object of the API server.
POOL_CODE_SIZE = "16Mi"
EPHEMERAL_OVERHEAD_MB = 64
WORKER_CONTAINER = "worker"
RUNTIME_CONTAINER = "function"  # an image function's own image, beside its worker
RUN_AS_USER = 10001  # the runtime image's user (images/runtime.Dockerfile)

# A ConfigMap holds at most 1 MiB (CONFIGMAP_MAX_BYTES, the contract).

# A DatabaseProxy's PgBouncer pod: its configuration (the ConfigMap, read-only) and the
# configuration it runs, with the password added at start (an emptyDir in memory); the
# port's name on the container and the Service.
DBPROXY_CONTAINER = "pgbouncer"
DBPROXY_PORT_NAME = "postgres"
DBPROXY_CONFIG_DIR = "/etc/klambda/dbproxy"
DBPROXY_RUN_DIR = "/run/klambda/dbproxy"
DBPROXY_INI = "pgbouncer.ini"
