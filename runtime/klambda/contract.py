"""The cluster contract: what the operator, the router, the CLI and the worker pods agree on.

Every name one component writes and another matches lives here, once: the resources'
API group and kinds, the labels the router selects worker pods by, the annotations the
router writes for the operator's scaling, the worker's port, and the worker's process
environment (`worker_environment` writes it, `config_from_environment` reads it back; a
test checks they round-trip). Changing one of these changes a contract between
processes that may run different releases (docs/operator.md), not a detail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from lightkube.generic_resource import create_namespaced_resource

from klambda.api import limits
from klambda.execution import FunctionConfig, environment_variables

GROUP = limits.GROUP
VERSION = limits.VERSION
API_VERSION = limits.API_VERSION
LATEST = limits.LATEST

FunctionResource = create_namespaced_resource(GROUP, VERSION, "Function", "functions")
VersionResource = create_namespaced_resource(GROUP, VERSION, "Version", "versions")
AliasResource = create_namespaced_resource(GROUP, VERSION, "Alias", "aliases")

# Labels on worker pods, their Services and EndpointSlices, and code snapshots.
LABEL_FUNCTION = f"{GROUP}/function"
LABEL_VERSION = f"{GROUP}/version"  # a version number, or LATEST_LABEL for $LATEST
# "$LATEST" is not a valid label value or object name: it is spelled "latest" there.
LATEST_LABEL = "latest"

# Written by the router on Functions ($LATEST) and Versions: the number of environments
# it wants beyond the provisioned ones, and the time of the last invocation (ISO 8601).
ANNOTATION_DEMAND = f"{GROUP}/demand"
ANNOTATION_LAST_INVOKED = f"{GROUP}/last-invoked"

# The worker pod: where its code is mounted and the port it serves klambda.v1.Worker on.
CODE_ROOT = "/var/task"
WORKER_PORT = 9000
WORKER_PORT_NAME = "grpc"

# Code in ConfigMaps (the operator's snapshots, code uploaded by the command line): keys may
# not contain `/`, so a file in a folder is stored under a derived key and this annotation
# maps keys back to paths (JSON {key: path}). A ConfigMap holds at most 1 MiB.
ANNOTATION_CODE_FILES = f"{GROUP}/code-files"
CONFIGMAP_MAX_BYTES = 1024 * 1024 - 4096
# On the ConfigMaps the command line uploads code to (CreateFunction, UpdateFunctionCode)
LABEL_COMPONENT = f"{GROUP}/component"
COMPONENT_UPLOAD = "upload"

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# Set by the worker for each environment it starts, not per pod.
PER_ENVIRONMENT = (
    "PATH",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "LAMBDA_RUNTIME_DIR",
)


def version_label(version: str) -> str:
    """The label value and name suffix of a version: "latest" for $LATEST."""
    return LATEST_LABEL if version == LATEST else version


def version_of_label(label: str) -> str:
    return LATEST if label == LATEST_LABEL else label


class WorkerConfigError(ValueError):
    pass


def worker_environment(cfg: FunctionConfig, port: int = WORKER_PORT) -> dict[str, str]:
    """A worker pod's environment: Lambda's variables (the worker adds the per-environment
    ones) plus the `KLAMBDA_*` ones that `config_from_environment` reads back."""
    env = {k: v for k, v in environment_variables(cfg, "").items() if k not in PER_ENVIRONMENT}
    env.update(
        {
            "KLAMBDA_FUNCTION": cfg.function,
            "KLAMBDA_VERSION": cfg.version,
            "KLAMBDA_TIMEOUT_SECONDS": str(cfg.timeout_s),
            "KLAMBDA_CODE_SHA256": cfg.code_sha256,
            "KLAMBDA_ACCOUNT_ID": cfg.account,
            "KLAMBDA_USER_ENVIRONMENT": ",".join(sorted(cfg.environment)),
            "KLAMBDA_WORKER_PORT": str(port),
        }
    )
    return env


def config_from_environment(env: Mapping[str, str]) -> FunctionConfig:
    """The FunctionConfig a worker pod serves, from the environment `worker_environment`
    gave it; WorkerConfigError naming what is missing or wrong."""

    def need(name: str) -> str:
        value = env.get(name)
        if not value:
            raise WorkerConfigError(f"the worker needs {name} in its environment")
        return value

    execution = need("AWS_EXECUTION_ENV")
    if not execution.startswith("AWS_Lambda_"):
        raise WorkerConfigError(f"AWS_EXECUTION_ENV {execution!r} is not AWS_Lambda_<runtime>")
    user = [n for n in env.get("KLAMBDA_USER_ENVIRONMENT", "").split(",") if n]
    missing = [n for n in user if n not in env]
    if missing:
        raise WorkerConfigError(f"user variables {', '.join(missing)} are not set")
    try:
        memory = int(need("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
        timeout = int(need("KLAMBDA_TIMEOUT_SECONDS"))
    except ValueError as err:
        raise WorkerConfigError(str(err)) from None
    return FunctionConfig(
        function=need("KLAMBDA_FUNCTION"),
        version=need("KLAMBDA_VERSION"),
        handler=need("_HANDLER"),
        runtime=execution.removeprefix("AWS_Lambda_"),
        memory_mb=memory,
        timeout_s=timeout,
        environment={n: env[n] for n in user},
        code_root=need("LAMBDA_TASK_ROOT"),
        code_sha256=env.get("KLAMBDA_CODE_SHA256", ""),
        region=env.get("AWS_REGION", "us-east-1"),
        account=env.get("KLAMBDA_ACCOUNT_ID", "000000000000"),
    )


def config_map_key(path: str) -> str:
    """A valid ConfigMap key for a file path: the path itself when it is one."""
    if _KEY.match(path) and not path.startswith("..") and len(path) <= 253:
        return path
    tag = hashlib.sha256(path.encode()).hexdigest()[:8]
    return "f-" + re.sub(r"[^-._a-zA-Z0-9]", "_", path)[:200] + "-" + tag


def code_config_map(function: str, files: Mapping[str, bytes], namespace: str) -> dict[str, Any]:
    """A ConfigMap holding `files` (an uploaded .zip), named by their digest so that the same
    code is one object: UTF-8 files as text, others as base64, paths in the annotation.
    ValueError when it would not fit in a ConfigMap."""
    keys = {config_map_key(path): path for path in sorted(files)}
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    size = 0
    for key, path in keys.items():
        content = files[path]
        try:
            data[key] = content.decode("utf-8")
            size += len(key) + len(content)
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
            size += len(key) + len(binary[key])
    if size > CONFIGMAP_MAX_BYTES:
        raise ValueError(
            f"the code takes {size} bytes, more than a ConfigMap holds ({CONFIGMAP_MAX_BYTES}); "
            "use an image (Code.ImageUri)"
        )
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{len(files[path])}\0".encode())
        h.update(files[path])
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{function}-upload-{h.hexdigest()[:12]}",
            "namespace": namespace,
            "labels": {LABEL_FUNCTION: function, LABEL_COMPONENT: COMPONENT_UPLOAD},
            "annotations": {ANNOTATION_CODE_FILES: json.dumps(keys, sort_keys=True)},
        },
        "immutable": True,
    }
    if data:
        body["data"] = data
    if binary:
        body["binaryData"] = binary
    return body
