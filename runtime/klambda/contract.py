"""The cluster contract: what the operator, the router, the CLI and the worker pods agree on.

Every name one component writes and another matches lives here, once: the resources'
API group and kinds, the labels the router selects worker pods by, the annotations the
router writes for the operator's scaling, the worker's port, and the worker's process
environment (`worker_environment` writes it, `config_from_environment` reads it back; a
test checks they round-trip). Changing one of these changes a contract between
processes that may run different releases (docs/operator.md), not a detail.
"""

from __future__ import annotations

from collections.abc import Mapping

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

# A function's own identity (its spec.serviceAccountName): a ServiceAccount token of the
# klambda audience, projected into the worker pod, from which the worker gives each
# environment Lambda's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
IDENTITY_TOKEN_ENV = "KLAMBDA_IDENTITY_TOKEN_FILE"
IDENTITY_TOKEN_DIR = "/var/run/klambda/identity"
IDENTITY_TOKEN_FILE = f"{IDENTITY_TOKEN_DIR}/token"

# Set by the worker for each environment it starts, not per pod.
PER_ENVIRONMENT = (
    "PATH",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "LAMBDA_RUNTIME_DIR",
)
# Derived from KLAMBDA_LOG_FORMAT and KLAMBDA_APPLICATION_LOG_LEVEL for each environment;
# the pod keeps a function's own values of these names, if it has any.
FROM_LOGGING_CONFIG = ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL")


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
    env = {
        k: v
        for k, v in environment_variables(cfg, "").items()
        if k not in PER_ENVIRONMENT and k not in FROM_LOGGING_CONFIG
    }
    env.update({k: cfg.environment[k] for k in FROM_LOGGING_CONFIG if k in cfg.environment})
    env.update(
        {
            "KLAMBDA_FUNCTION": cfg.function,
            "KLAMBDA_VERSION": cfg.version,
            "KLAMBDA_TIMEOUT_SECONDS": str(cfg.timeout_s),
            "KLAMBDA_EPHEMERAL_STORAGE_MB": str(cfg.ephemeral_storage_mb),
            "KLAMBDA_CODE_SHA256": cfg.code_sha256,
            "KLAMBDA_ACCOUNT_ID": cfg.account,
            "KLAMBDA_USER_ENVIRONMENT": ",".join(sorted(cfg.environment)),
            "KLAMBDA_WORKER_PORT": str(port),
            "KLAMBDA_LOG_FORMAT": cfg.log_format,
        }
    )
    if cfg.application_log_level:
        env["KLAMBDA_APPLICATION_LOG_LEVEL"] = cfg.application_log_level
    if cfg.system_log_level:
        env["KLAMBDA_SYSTEM_LOG_LEVEL"] = cfg.system_log_level
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
        storage = int(
            env.get("KLAMBDA_EPHEMERAL_STORAGE_MB") or limits.EPHEMERAL_STORAGE_DEFAULT_MB
        )
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
        ephemeral_storage_mb=storage,
        log_format=env.get("KLAMBDA_LOG_FORMAT", "Text"),
        application_log_level=env.get("KLAMBDA_APPLICATION_LOG_LEVEL") or None,
        system_log_level=env.get("KLAMBDA_SYSTEM_LOG_LEVEL") or None,
    )
