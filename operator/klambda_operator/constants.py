"""Names the operator shares with the API server, the router and the worker pods.

Everything another component may match on lives here: the API group, the labels the
router selects worker pods by, the annotations the router writes to drive scaling, and
the names of the objects the operator creates. Changing one of these is changing a
contract (see docs/operator.md), not a detail.
"""

from __future__ import annotations

from klambda.api import limits

GROUP = limits.GROUP
VERSION = limits.VERSION
API_VERSION = limits.API_VERSION
LATEST = limits.LATEST

# The operator's identity on the objects it writes: server-side apply field manager,
# managed-by label, the source of the Events it posts.
FIELD_MANAGER = "klambda-operator"
COMPONENT = "klambda-operator"

# klambda needs no finalizer (children go with their owners through ownerReferences) and
# registers no kopf handler that would add one; kopf is told this name all the same, so
# that a finalizer on a klambda object could only ever be this one.
FINALIZER = f"{GROUP}/finalizer"

# Labels on every child object; the router finds worker pods by function and version.
LABEL_FUNCTION = f"{GROUP}/function"
LABEL_VERSION = f"{GROUP}/version"  # a version number, or LATEST_LABEL for $LATEST
LABEL_COMPONENT = f"{GROUP}/component"  # worker | code
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
# "$LATEST" is not a valid label value or object name: it is spelled "latest" there.
LATEST_LABEL = "latest"

COMPONENT_WORKER = "worker"
COMPONENT_CODE = "code"

# Written by the router on Functions ($LATEST) and Versions: the number of environments
# it wants beyond the provisioned ones, and the time of the last invocation (ISO 8601).
ANNOTATION_DEMAND = f"{GROUP}/demand"
ANNOTATION_LAST_INVOKED = f"{GROUP}/last-invoked"
# Written by the operator on worker Deployments: the scale-up rate limiter's clock.
ANNOTATION_SCALE_UP_CLOCK = f"{GROUP}/scale-up-clock"
# On worker pod templates and code snapshots: the CodeSha256 of the code they hold.
ANNOTATION_CODE_SHA256 = f"{GROUP}/code-sha256"
# On code snapshots: JSON {ConfigMap key: file path}, for keys that are not the path.
ANNOTATION_CODE_FILES = f"{GROUP}/code-files"

# The worker contract (docs/operator.md): where the code is mounted, the port the worker
# serves gRPC (with grpc.health.v1) on, and a writable /tmp like Lambda's.
CODE_ROOT = "/var/task"
TMP_DIR = "/tmp"
TMP_SIZE = "512Mi"
WORKER_PORT = 9000
WORKER_PORT_NAME = "grpc"
WORKER_CONTAINER = "worker"
RUN_AS_USER = 10001  # the runtime image's user (images/runtime.Dockerfile)

# A ConfigMap holds at most 1 MiB; the snapshot's data must stay below it.
CONFIGMAP_MAX_BYTES = 1024 * 1024 - 4096
