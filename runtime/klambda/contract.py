"""The cluster contract: what the operator, the router, the CLI and the worker pods agree on.

Every name one component writes and another matches lives here, once: the resources'
API group and kinds, the labels the router selects worker pods by, the annotations the
router writes for the operator's scaling, the worker's port, the worker's process
environment (`worker_environment` writes it, `config_from_environment` reads it back; a
test checks they round-trip), the code snapshots' names, the code store's object keys
(`object_key`) and the environment naming a pod's objects (`store_environment`), and the
warm pool's labels and the claim that moves a pool pod into a function version
(`claim_patch`). Changing one of
these changes a contract between processes that may run different releases
(docs/operator.md), not a detail.

No Kubernetes client here: a worker pod imports this module at its start. The kinds as
lightkube resources, for the processes that read and write them, are in klambda.kinds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from klambda.api import limits
from klambda.execution import IMAGE_OWN_VARIABLES, FunctionConfig, environment_variables

GROUP = limits.GROUP
VERSION = limits.VERSION
API_VERSION = limits.API_VERSION
LATEST = limits.LATEST

# Labels on worker pods, their Services and EndpointSlices, and code snapshots.
LABEL_FUNCTION = f"{GROUP}/function"
LABEL_VERSION = f"{GROUP}/version"  # a version number, or LATEST_LABEL for $LATEST
# "$LATEST" is not a valid label value or object name: it is spelled "latest" there.
LATEST_LABEL = "latest"
LABEL_COMPONENT = f"{GROUP}/component"
COMPONENT_WORKER = "worker"  # a pod of a version's own Deployment
COMPONENT_CODE = "code"  # a code snapshot
COMPONENT_POOL = "pool"  # a generic worker of the warm pool, or its Deployment/Service
COMPONENT_SPECIALISED = "specialised"  # a pool pod that now serves one function version
COMPONENT_UPLOAD = "upload"  # code the command line uploaded (CreateFunction, ...)
COMPONENT_DBPROXY = "dbproxy"  # a DatabaseProxy's PgBouncer: ConfigMap, Deployment, Service
# On a DatabaseProxy's objects: the proxy's name. Never `klambda.io/function`: the proxy's
# pods are not workers (the workers' NetworkPolicy admits the router alone).
LABEL_DATABASE_PROXY = f"{GROUP}/database-proxy"

# The warm pool: generic worker pods of one runtime (the label's value), started with no
# function (`klambda worker --pool RUNTIME`). The pool's Deployment selects on this label,
# so removing it from a pod releases the pod from the pool's ReplicaSet, which replaces it.
LABEL_POOL = f"{GROUP}/pool"
# Set by the Deployment controller on the pods of a ReplicaSet; removed on a claim.
LABEL_POD_TEMPLATE_HASH = "pod-template-hash"

# On worker pod templates, code snapshots and specialised pods: the CodeSha256 of the code.
ANNOTATION_CODE_SHA256 = f"{GROUP}/code-sha256"
# On code snapshots: JSON {ConfigMap key: file path}, for keys that are not the path.
ANNOTATION_CODE_FILES = f"{GROUP}/code-files"
# On specialised pods: `config_digest` of the configuration the pod was given, so that a
# pod of $LATEST whose configuration has changed since is recognised and deleted.
ANNOTATION_CONFIG_SHA256 = f"{GROUP}/config-sha256"
# On specialised pods: when a router claimed it (ISO 8601), the start of its idle window.
ANNOTATION_CLAIMED_AT = f"{GROUP}/claimed-at"

# Written by the router on Functions ($LATEST) and Versions: the number of environments
# it wants beyond the provisioned ones, and the time of the last invocation (ISO 8601).
ANNOTATION_DEMAND = f"{GROUP}/demand"
ANNOTATION_LAST_INVOKED = f"{GROUP}/last-invoked"

# Where a worker pod ships its log records (the chart's VictoriaLogs), when set; the
# operator copies its own value onto every worker pod (klambda.worker.logship).
LOG_ENGINE_URL_ENV = "KLAMBDA_LOG_ENGINE_URL"
# The routers' Lease for the schedules (coordination.k8s.io, in the routers' namespace):
# its holder fires every tick; this annotation keeps each schedule's last fired tick (a
# JSON map of `function[:alias]/name` to epoch seconds) across holders and restarts.
SCHEDULE_LEASE = "klambda-router-schedules"
ANNOTATION_SCHEDULE_TICKS = f"{GROUP}/schedule-ticks"

# The worker pod: where its code is mounted and the port it serves klambda.v1.Worker on.
CODE_ROOT = "/var/task"
# Where the worker unpacks a function's layers (an emptyDir of the pod), as Lambda's /opt;
# KLAMBDA_OPT_ROOT moves it (a worker run outside a pod).
OPT_ROOT = "/opt"
OPT_ROOT_ENV = "KLAMBDA_OPT_ROOT"
WORKER_PORT = 9000
WORKER_PORT_NAME = "grpc"
# ... and the port of its invoke lane (klambda.lane), which its Services list by this name
WORKER_LANE_PORT = 9002
WORKER_LANE_PORT_NAME = "lane"
WORKER_LANE_PORT_ENV = "KLAMBDA_WORKER_LANE_PORT"
# An image function's pod: the worker serves Lambda's Runtime API to the pod's runtime
# container (the function's image) on this loopback port (`klambda worker
# --runtime-api-port`), which the container finds in AWS_LAMBDA_RUNTIME_API.
RUNTIME_API_PORT = 9001

# Code in ConfigMaps (the operator's snapshots, code uploaded by the command line): keys may
# not contain `/`, so a file in a folder is stored under a derived key and this annotation
# maps keys back to paths (JSON {key: path}). A ConfigMap holds at most 1 MiB.
CONFIGMAP_MAX_BYTES = 1024 * 1024 - 4096

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# The code store: an S3 server in the cluster whose bucket holds code and layers as .zip
# objects named by their content, `code/<sha256 hex>.zip` and `layers/<sha256 hex>.zip`
# (the lowercase hex SHA-256 of the zip's bytes), which anyone may GetObject (no listing).
# The key is its own check: the worker refuses bytes that do not digest to it. A worker pod
# learns the store and its objects from its environment (`store_environment` writes it,
# `store_objects_from_environment` reads it back); a pool pod has the URL and is told the
# objects by Specialise (`code_object`, `layer_objects`).
STORE_URL_ENV = "KLAMBDA_STORE_URL"  # with the bucket: an object is GET {url}/{key}
# the code's key; the code root is then an emptyDir that the worker fills before it serves
CODE_OBJECT_ENV = "KLAMBDA_CODE_OBJECT"
# the layers' keys, comma-separated, in merge order (a later layer's file wins)
LAYER_OBJECTS_ENV = "KLAMBDA_LAYER_OBJECTS"
OBJECT_CODE = "code"
OBJECT_LAYER = "layers"
_OBJECT_KEY = re.compile(r"(code|layers)/([0-9a-f]{64})\.zip")  # the whole key: fullmatch
# A function's own identity (its spec.serviceAccountName): a ServiceAccount token of the
# klambda audience, projected into the worker pod, from which the worker gives each
# environment Lambda's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
IDENTITY_TOKEN_ENV = "KLAMBDA_IDENTITY_TOKEN_FILE"
IDENTITY_TOKEN_DIR = "/var/run/klambda/identity"
IDENTITY_TOKEN_FILE = f"{IDENTITY_TOKEN_DIR}/token"
# the audience of those tokens (the operator projects them, the router reviews them), and
# the prefix of the access key ids derived from them (`session_credentials`)
SESSION_AUDIENCE = "klambda"
SESSION_KEY_PREFIX = "KLSA"
# On the pods of a version with provisioned concurrency: "1" makes the worker initialise its
# environment before it reports ready (AWS_LAMBDA_INITIALIZATION_TYPE
# provisioned-concurrency), so no call of it waits for the init or reports an Init Duration.
PROVISIONED_ENV = "KLAMBDA_PROVISIONED"

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


def session_credentials(token: str) -> tuple[str, str]:
    """A function's access key id and secret key, derived from its ServiceAccount token
    (sent as the session token): the worker gives them to each environment, the router
    checks a signature made with them (klambda.sigv4). Whoever holds the token may sign, as
    whoever holds a bearer token may call: the signature proves the token was held, the
    TokenReview whose it is."""
    digest = hashlib.sha256(f"klambda-session\0{token}".encode()).digest()
    key_id = SESSION_KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:16].upper()
    return key_id, base64.b64encode(digest).decode()


def version_label(version: str) -> str:
    """The label value and name suffix of a version: "latest" for $LATEST."""
    return LATEST_LABEL if version == LATEST else version


def version_of_label(label: str) -> str:
    return LATEST if label == LATEST_LABEL else label


def pool_name(runtime: str) -> str:
    """The Deployment and Service of a runtime's warm pool: `klambda-pool-python3-11`.

    No function's Deployment can have this name: theirs end in `-latest` or `-v<N>`."""
    return "klambda-pool-" + runtime.replace(".", "-").replace("_", "-").lower()


def dbproxy_name(proxy: str) -> str:
    """The ConfigMap, Deployment and Service of a DatabaseProxy: `shop-db-dbproxy`.

    No function's objects end so (theirs end in `-latest`, `-v<N>`, `-code-<hash>`), and a
    proxy name of at most 48 characters keeps it a DNS label."""
    return f"{proxy}-dbproxy"


def dbproxy_host(proxy: str, namespace: str) -> str:
    """Where the pods of `namespace` reach a DatabaseProxy: its Service's name, qualified
    by the namespace and `svc` (the pods' DNS search path adds the cluster's domain)."""
    return f"{dbproxy_name(proxy)}.{namespace}.svc"


def short_hash(code_sha256: str) -> str:
    """Ten hex digits of a CodeSha256 (base64 of a SHA-256): enough to tell snapshots apart."""
    try:
        raw = base64.b64decode(code_sha256, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:  # not a real digest (a hand-written Version): hash the text itself
        raw = hashlib.sha256(code_sha256.encode()).digest()
    return raw.hex()[:10]


def snapshot_name(function: str, code_sha256: str) -> str:
    """The content-addressed ConfigMap of a function's code: `hello-code-1a2b3c4d5e`."""
    return f"{function}-code-{short_hash(code_sha256)}"


def config_map_files(config_map: Mapping[str, Any]) -> dict[str, bytes]:
    """The files of a ConfigMap: one per key (`data` as UTF-8, `binaryData` decoded)."""
    files = {key: str(value).encode() for key, value in (config_map.get("data") or {}).items()}
    for key, value in (config_map.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value)
    return files


def snapshot_files(config_map: Mapping[str, Any]) -> dict[str, bytes]:
    """The files of a code snapshot ConfigMap at their paths (keys cannot hold `/`, so the
    snapshot's annotation maps its keys back to paths)."""
    annotations = (config_map.get("metadata") or {}).get("annotations") or {}
    try:
        paths: dict[str, str] = json.loads(annotations.get(ANNOTATION_CODE_FILES, "{}"))
    except ValueError:
        paths = {}
    return {paths.get(key, key): content for key, content in config_map_files(config_map).items()}


def config_digest(cfg: FunctionConfig) -> str:
    """What an environment of `cfg` runs, as a digest: the code and every setting a
    specialised pod was given (not the code root, region or account, which are each
    process's own)."""
    fields = {
        "function": cfg.function,
        "version": cfg.version,
        "handler": cfg.handler,
        "runtime": cfg.runtime,
        "memory_mb": cfg.memory_mb,
        "timeout_s": cfg.timeout_s,
        "environment": dict(sorted(cfg.environment.items())),
        "code_sha256": cfg.code_sha256,
    }
    if cfg.layers:  # layer versions are immutable: their references name their files
        fields["layers"] = list(cfg.layers)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def claim_patch(
    cfg: FunctionConfig, owner: Mapping[str, Any], pod_uid: str, claimed_at: str
) -> dict[str, Any]:
    """The merge patch that moves a specialised pool pod out of its pool and into a
    function version: the pool's ReplicaSet lets go of it (its selector no longer matches,
    and the ownerReferences are replaced, so it is no longer the controller) and makes a
    new pool pod; the version's Service selects it; it goes with `owner` (the Version, or
    the Function for $LATEST) when that is deleted. `pod_uid` is a precondition: a
    different pod of the same name is left alone."""
    return {
        "metadata": {
            "uid": pod_uid,
            "labels": {
                LABEL_POOL: None,
                LABEL_POD_TEMPLATE_HASH: None,
                LABEL_COMPONENT: COMPONENT_SPECIALISED,
                LABEL_FUNCTION: cfg.function,
                LABEL_VERSION: version_label(cfg.version),
            },
            "annotations": {
                ANNOTATION_CODE_SHA256: cfg.code_sha256,
                ANNOTATION_CONFIG_SHA256: config_digest(cfg),
                ANNOTATION_CLAIMED_AT: claimed_at,
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": owner["kind"],
                    "name": owner["name"],
                    "uid": owner["uid"],
                    # a controller: no ReplicaSet may ever adopt the pod again
                    "controller": True,
                }
            ],
        }
    }


class WorkerConfigError(ValueError):
    pass


def object_key(kind: str, data: bytes) -> str:
    """The store's key of a .zip's bytes: `code/<sha256 hex>.zip` or `layers/...` (`kind`
    is OBJECT_CODE or OBJECT_LAYER)."""
    if kind not in (OBJECT_CODE, OBJECT_LAYER):
        raise ValueError(f"an object is {OBJECT_CODE!r} or {OBJECT_LAYER!r}, not {kind!r}")
    return f"{kind}/{hashlib.sha256(data).hexdigest()}.zip"


@dataclass(frozen=True)
class ObjectKey:
    kind: str  # OBJECT_CODE or OBJECT_LAYER
    sha256: str  # lowercase hex, of the object's bytes

    def __str__(self) -> str:
        return f"{self.kind}/{self.sha256}.zip"

    @property
    def code_sha256(self) -> str:
        """Lambda's CodeSha256 of the object: base64 of the digest."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


def parse_object_key(key: str, kind: str | None = None) -> ObjectKey:
    """The kind and digest of a store key (of `kind`, when given); ValueError for anything
    else: another prefix, a path (`..`, `/`), upper case, a digest of another length."""
    m = _OBJECT_KEY.fullmatch(key)
    if m is None:
        raise ValueError(
            f"{key!r} is not an object of the store: code/<sha256 hex>.zip or "
            "layers/<sha256 hex>.zip"
        )
    if kind is not None and m.group(1) != kind:
        raise ValueError(f"{key!r} is not an object of {kind}/")
    return ObjectKey(m.group(1), m.group(2))


@dataclass(frozen=True)
class StoreObjects:
    """What a worker pod fetches from the store before it serves."""

    url: str  # with the bucket, no trailing `/`
    code: str  # the code's key; "" when the code is mounted (a ConfigMap)
    layers: tuple[str, ...]  # in merge order
    opt_root: str  # where the layers go


def store_environment(url: str, code: str = "", layers: Sequence[str] = ()) -> dict[str, str]:
    """The environment that has a worker pod fetch its code (`code`, a key) and its layers
    (keys, in order) from the store at `url` (with the bucket) before it serves. The pod's
    KLAMBDA_CODE_SHA256 must then be the code object's (`ObjectKey.code_sha256`)."""
    env = {STORE_URL_ENV: url}
    if code:
        env[CODE_OBJECT_ENV] = code
    if layers:
        env[LAYER_OBJECTS_ENV] = ",".join(layers)
    return env


def store_objects_from_environment(env: Mapping[str, str]) -> StoreObjects | None:
    """The objects a worker pod fetches (None when its code is mounted and it has no
    layers); WorkerConfigError naming the variable that is missing or wrong."""
    code = env.get(CODE_OBJECT_ENV, "")
    layers = tuple(k for k in env.get(LAYER_OBJECTS_ENV, "").split(",") if k)
    if not code and not layers:
        return None
    url = env.get(STORE_URL_ENV, "").rstrip("/")
    if not url:
        raise WorkerConfigError(
            f"{CODE_OBJECT_ENV} or {LAYER_OBJECTS_ENV} names objects of the store, but "
            f"{STORE_URL_ENV} is not set"
        )
    if code:
        try:
            key = parse_object_key(code, OBJECT_CODE)
        except ValueError as err:
            raise WorkerConfigError(f"{CODE_OBJECT_ENV}: {err}") from None
        sha = env.get("KLAMBDA_CODE_SHA256", "")
        if sha != key.code_sha256:
            raise WorkerConfigError(
                f"KLAMBDA_CODE_SHA256 {sha!r} is not the CodeSha256 of {CODE_OBJECT_ENV} "
                f"{code} ({key.code_sha256})"
            )
    for layer in layers:
        try:
            parse_object_key(layer, OBJECT_LAYER)
        except ValueError as err:
            raise WorkerConfigError(f"{LAYER_OBJECTS_ENV}: {err}") from None
    if len(layers) > limits.LAYERS_MAX:
        raise WorkerConfigError(
            f"{LAYER_OBJECTS_ENV}: {len(layers)} layers, more than {limits.LAYERS_MAX}"
        )
    return StoreObjects(url, code, layers, env.get(OPT_ROOT_ENV) or OPT_ROOT)


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


def runtime_container_environment(cfg: FunctionConfig) -> dict[str, str]:
    """The environment of an image function's runtime container: Lambda's variables but
    the ones that name the worker's places (the image has its own) and the stream (each
    environment's own, written by the worker), with the worker's Runtime API."""
    env = {
        k: v
        for k, v in environment_variables(cfg, "").items()
        if k not in IMAGE_OWN_VARIABLES and k != "AWS_LAMBDA_LOG_STREAM_NAME"
    }
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{RUNTIME_API_PORT}"
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
