"""The objects a function version becomes, as plain dicts: pure, no API calls.

`build_deployment`, `build_service` and `build_code_configmap` say what should exist;
the reconcilers (`klambda_operator.reconcile`) compare that with what does and apply the
difference with server-side apply. Keeping them pure keeps them table-testable and lets
the pod spec be read in one place:

- one environment per pod; memory request = limit = memoryMB + the worker's overhead;
  CPU requested in proportion to memoryMB (1,769 MB = 1 vCPU), limited to that plus the
  worker's own (`worker_cpu_millicores`);
- Lambda's reserved variables and the user's `environment`, plus the `KLAMBDA_*` ones
  the worker reads (the worker contract, docs/operator.md);
- non-root, read-only root filesystem with a writable /tmp of `ephemeralStorageMB` (an
  emptyDir with that sizeLimit, and the pod's ephemeral-storage limit), no capabilities,
  RuntimeDefault seccomp, no service-account token, no service links;
- labels `klambda.io/function` and `klambda.io/version` for the router to select by.

The warm pool of a runtime (`build_pool_deployment`, `build_pool_service`) is made of the
same pods with no function: `klambda worker --pool RUNTIME`, a writable, empty code root
for the code the router pushes, the resources of `pool_memory_mb` with a CPU limit of
`pool_cpu_millicores` (resized in place to the function's once specialised,
`resources`), and a grace period for the longest timeout, since the pod may come to
serve any function.

A DatabaseProxy becomes a ConfigMap (PgBouncer's configuration, `klambda.dbproxy`, listening
on every address of its pod), a Deployment of one PgBouncer pod and a ClusterIP Service
(`build_proxy_*`); the functions it lists get its address in their environment
(`Workload.proxy_environment`, merged in `function_config`, so that a specialised pool
pod's configuration digest agrees with the router's).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from klambda import contract
from klambda.api import FunctionSpec, limits
from klambda.api.databaseproxy import DatabaseProxySpec
from klambda.api.function import FileSystemConfig
from klambda.api.limits import MB_PER_VCPU
from klambda.dbproxy import pgbouncer_ini, with_proxy
from klambda.execution import FunctionConfig, config_of

from klambda_operator import constants, names
from klambda_operator.settings import OperatorSettings
from klambda_operator.snapshots import Snapshot

# code and layers from the store unpack to at most Lambda's 250 MB, in emptyDirs
UNZIPPED_MAX_MB = limits.UNZIPPED_MAX_BYTES // (1024 * 1024)
# A function's identity token lives this long (the kubelet renews it at 80 %); an
# environment keeps the credentials it started with, as Lambda's do for 12 hours.
IDENTITY_TOKEN_TTL_S = 12 * 3600
# Extra time a terminating pod gets past the function's timeout, to finish an invocation.
TERMINATION_GRACE_S = 5


@dataclass(frozen=True)
class Workload:
    """One function version to run: `$LATEST` of a Function, or a published Version."""

    namespace: str
    function: str
    version: str  # "$LATEST" or a number
    spec: FunctionSpec  # the Function's spec, or the Version's snapshot of it
    code_sha256: str
    owner: Mapping[str, Any]  # the ownerReference of the Function or Version
    snapshot: str | None = None  # the code ConfigMap; None for an image function
    items: list[dict[str, str]] = field(default_factory=list)  # its volume items
    # the version has provisioned concurrency: its pods initialise their environment
    # before they are ready (contract.PROVISIONED_ENV)
    provisioned: bool = False
    # libpq's variables of the DatabaseProxy that lists the function (klambda.dbproxy)
    proxy_environment: Mapping[str, str] = field(default_factory=dict)
    # the code's .zip in the cluster's store (instead of a snapshot), and the layers' in
    # order: the worker downloads and unpacks them into emptyDirs at /var/task and /opt
    code_object: str | None = None
    layer_objects: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return names.workload_name(self.function, self.version)


def owner_reference(body: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion", constants.API_VERSION),
        "kind": body["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def selector_labels(function: str, version: str) -> dict[str, str]:
    return {
        constants.LABEL_FUNCTION: function,
        constants.LABEL_VERSION: names.version_label(version),
    }


def labels(function: str, version: str | None, component: str) -> dict[str, str]:
    out = {
        constants.LABEL_NAME: "klambda",
        constants.LABEL_MANAGED_BY: constants.COMPONENT,
        constants.LABEL_COMPONENT: component,
        constants.LABEL_FUNCTION: function,
    }
    if version is not None:
        out[constants.LABEL_VERSION] = names.version_label(version)
    return out


def cpu_millicores(memory_mb: int) -> int:
    """Lambda's CPU share: one vCPU at 1,769 MB, in proportion below and above."""
    return math.ceil(memory_mb * 1000 / MB_PER_VCPU)


def cpu_quantity(millicores: int) -> str:
    """The canonical form the API server stores ("1", not "1000m"), so compares hold."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def resources(
    memory_mb: int,
    overhead_mb: int,
    ephemeral_storage_mb: int | None = None,
    cpu_m: int | None = None,
    cpu_overhead_m: int = 0,
    cpu_limit_m: int | None = None,
) -> dict[str, Any]:
    """Memory: memoryMB plus the worker's overhead, request = limit. CPU: the share of
    memoryMB (or `cpu_m` millicores) requested, and the worker's `cpu_overhead_m` beside
    it in the limit, so that the worker's own per-call work is not charged to the
    function's quota; `cpu_limit_m` sets the limit instead (never below the request).
    With a higher limit the pod is Burstable, else Guaranteed; an in-place resize keeps
    either (it may not change the QoS class)."""
    cpu = cpu_millicores(memory_mb) if cpu_m is None else cpu_m
    limit = cpu + cpu_overhead_m if cpu_limit_m is None else max(cpu, cpu_limit_m)
    requests = {"cpu": cpu_quantity(cpu), "memory": f"{memory_mb + overhead_mb}Mi"}
    if ephemeral_storage_mb is not None:
        requests["ephemeral-storage"] = (
            f"{ephemeral_storage_mb + constants.EPHEMERAL_OVERHEAD_MB}Mi"
        )
    limits = requests | {"cpu": cpu_quantity(limit)}
    return {"requests": requests, "limits": limits}


def escape(value: str) -> str:
    """An env value that Kubernetes hands to the pod unchanged: it expands `$(NAME)` and
    reads `$$` as `$`, so a `$` before `(` or `$` is doubled; `$LATEST` stays as it is."""
    return re.sub(r"\$(?=[$(])", "$$", value)


def function_config(work: Workload, settings: OperatorSettings) -> FunctionConfig:
    """What an environment of the version runs, as a worker pod is told: the function's
    environment with its database proxy's variables (its own values win)."""
    cfg = config_of(
        work.function,
        work.version,
        work.spec,
        code_root=constants.CODE_ROOT,
        code_sha256=work.code_sha256,
        region=settings.region,
        account=settings.account_id,
    )
    if not work.proxy_environment:
        return cfg
    return replace(cfg, environment=with_proxy(cfg.environment, work.proxy_environment))


def worker_environment(work: Workload, settings: OperatorSettings) -> dict[str, str]:
    """Lambda's variables for the pod (the worker adds the per-environment ones) plus
    the `KLAMBDA_*` variables the worker builds its FunctionConfig from."""
    env = contract.worker_environment(function_config(work, settings), constants.WORKER_PORT)
    if work.provisioned:
        env[contract.PROVISIONED_ENV] = "1"
    if work.code_object or work.layer_objects:
        env |= contract.store_environment(
            store_url(settings), work.code_object or "", work.layer_objects
        )
    return env


def store_url(settings: OperatorSettings) -> str:
    """Where worker pods get the store's objects: `{endpoint}/{bucket}`, path style."""
    return f"{settings.store_endpoint.rstrip('/')}/{settings.store_bucket}"


def worker_command(work: Workload) -> list[str]:
    """The worker contract's command line (docs/operator.md)."""
    return ["klambda", "worker", "--function", work.function, "--version", work.version]


# the restricted Pod Security Standard, for every pod the operator makes
POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": constants.RUN_AS_USER,
    "runAsGroup": constants.RUN_AS_USER,
    "fsGroup": constants.RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}


def _with_log_engine(env: Mapping[str, str], settings: OperatorSettings) -> dict[str, str]:
    """A worker pod ships its log records to the cluster's log engine when there is one."""
    if not settings.log_engine_url:
        return dict(env)
    # a pool pod learns its function later, but its records' group names the account now
    account = {"KLAMBDA_ACCOUNT_ID": settings.account_id}
    return {**account, **env, contract.LOG_ENGINE_URL_ENV: settings.log_engine_url}


# A worker serves unary invocations on its invoke lane (klambda.lane) beside gRPC; its
# Services list both ports, so that the router finds the lane in the EndpointSlices.
LANE_ENV = {contract.WORKER_LANE_PORT_ENV: str(contract.WORKER_LANE_PORT)}
WORKER_SERVICE_PORTS = [
    {
        "name": name,
        "port": port,
        "targetPort": name,
        "protocol": "TCP",
    }
    for name, port in (
        (constants.WORKER_PORT_NAME, constants.WORKER_PORT),
        (contract.WORKER_LANE_PORT_NAME, contract.WORKER_LANE_PORT),
    )
]


def _worker_pod(
    settings: OperatorSettings,
    *,
    image: str,
    command: list[str],
    env: Mapping[str, str],
    memory_mb: int,
    grace_s: int,
    code: dict[str, Any],
    ephemeral_storage_mb: int = limits.EPHEMERAL_STORAGE_DEFAULT_MB,
    service_account: str | None = None,
    file_systems: Sequence[FileSystemConfig] = (),
    cpu_m: int | None = None,
    worker_cpu_m: int = 0,
    cpu_limit_m: int | None = None,
    opt: bool = False,
    from_store: bool = False,
) -> dict[str, Any]:
    """The spec of a worker pod (its CPU: `resources`' `cpu_m`, `cpu_limit_m` and, as
    `worker_cpu_m`, `cpu_overhead_m`); `code` is the volume mounted at the code root, /tmp holds
    `ephemeral_storage_mb`, `service_account` is the function's own identity, and each
    file system's ReadWriteMany claim is mounted at its localMountPath, where every
    environment of the pod (fork or Runtime API) finds it. With `opt`, /opt is an emptyDir
    the worker unpacks the function's layers into; `from_store`: code or layers come from
    the store, and the pod's ephemeral storage holds what they unpack to."""
    code_mount: dict[str, Any] = {"name": "code", "mountPath": constants.CODE_ROOT}
    if not code.get("emptyDir"):  # a pool pod's worker writes the code it is given there
        code_mount["readOnly"] = True
    mounts: list[dict[str, Any]] = [code_mount, {"name": "tmp", "mountPath": constants.TMP_DIR}]
    volumes: list[dict[str, Any]] = [
        {"name": "code"} | code,
        {"name": "tmp", "emptyDir": {"sizeLimit": f"{ephemeral_storage_mb}Mi"}},
    ]
    if not code:  # an image function: its code is in the image
        mounts, volumes = mounts[1:], volumes[1:]
    if opt:
        mounts.append({"name": "opt", "mountPath": contract.OPT_ROOT})
        volumes.append({"name": "opt", "emptyDir": {"sizeLimit": f"{UNZIPPED_MAX_MB}Mi"}})
    # what code and layers from the store unpack to (at most), beside /tmp
    packages_mb = UNZIPPED_MAX_MB if from_store else 0
    env = dict(env)
    if service_account:
        # the function's own identity: a token of its ServiceAccount for klambda's audience
        # only (not the API server's), from which the worker makes its AWS credentials
        mounts.append(
            {"name": "identity", "mountPath": contract.IDENTITY_TOKEN_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": "identity",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": contract.SESSION_AUDIENCE,
                                "expirationSeconds": IDENTITY_TOKEN_TTL_S,
                                "path": "token",
                            }
                        }
                    ]
                },
            }
        )
        env[contract.IDENTITY_TOKEN_ENV] = contract.IDENTITY_TOKEN_FILE
    for i, fs in enumerate(file_systems):
        volumes.append({"name": f"fs-{i}", "persistentVolumeClaim": {"claimName": fs.claim_name}})
        mounts.append({"name": f"fs-{i}", "mountPath": fs.local_mount_path})
    container = {
        "name": constants.WORKER_CONTAINER,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "env": [
            {"name": k, "value": escape(v)}
            for k, v in _with_log_engine(env | LANE_ENV, settings).items()
        ],
        "ports": [
            {
                "name": constants.WORKER_PORT_NAME,
                "containerPort": constants.WORKER_PORT,
                "protocol": "TCP",
            },
            {
                "name": contract.WORKER_LANE_PORT_NAME,
                "containerPort": contract.WORKER_LANE_PORT,
                "protocol": "TCP",
            },
        ],
        "readinessProbe": {
            "grpc": {"port": constants.WORKER_PORT},
            "periodSeconds": 2,
        },
        "resources": resources(
            memory_mb,
            settings.memory_overhead_mb,
            ephemeral_storage_mb + packages_mb,
            cpu_m,
            worker_cpu_m,
            cpu_limit_m,
        ),
        "securityContext": dict(CONTAINER_SECURITY),
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {}
    if service_account:
        pod["serviceAccountName"] = service_account
    elif settings.function_service_account:
        pod["serviceAccountName"] = settings.function_service_account
    return pod | {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace_s,
        # the pod's pause process is PID 1, not the worker: a SIGTERM that arrives while the
        # worker is still starting (before it has a handler) stops it at once, where PID 1
        # would ignore it and hold the pod for its whole grace period; and pause reaps what
        # a handler's orphaned children leave behind
        "shareProcessNamespace": True,
        "securityContext": dict(POD_SECURITY),
        "containers": [container],
        "volumes": volumes,
    }


def build_pod_template(work: Workload, settings: OperatorSettings) -> dict[str, Any]:
    spec = work.spec
    code: dict[str, Any] = {}
    if work.snapshot is not None:
        code = {"configMap": {"name": work.snapshot, "items": work.items, "defaultMode": 0o444}}
    elif work.code_object is not None:  # the worker unpacks it there before it serves
        code = {"emptyDir": {"sizeLimit": f"{UNZIPPED_MAX_MB}Mi"}}
    image = spec.code.image is not None
    pod = _worker_pod(
        settings,
        image=settings.image,
        command=worker_command(work)
        + (["--runtime-api-port", str(contract.RUNTIME_API_PORT)] if image else []),
        env=worker_environment(work, settings),
        # an image function's memory is its runtime container's: the worker has its own
        memory_mb=0 if image else spec.memory_mb,
        grace_s=spec.timeout_seconds + TERMINATION_GRACE_S,
        code=code,
        ephemeral_storage_mb=spec.ephemeral_storage_mb,
        service_account=spec.service_account_name,
        file_systems=spec.file_system_configs,
        # an image function's worker relays calls and times them: its CPU is its own
        cpu_m=settings.worker_cpu_millicores if image else None,
        worker_cpu_m=0 if image else settings.worker_cpu_millicores,
        opt=bool(work.layer_objects),
        from_store=bool(work.code_object or work.layer_objects),
    )
    return {
        "metadata": {
            "labels": labels(work.function, work.version, constants.COMPONENT_WORKER),
            "annotations": {constants.ANNOTATION_CODE_SHA256: work.code_sha256},
        },
        "spec": with_runtime_container(pod, work, settings) if image else pod,
    }


def with_runtime_container(
    pod: dict[str, Any], work: Workload, settings: OperatorSettings
) -> dict[str, Any]:
    """An image function's pod (docs/packaging.md): the worker becomes a native sidecar
    that starts first (the runtime starts once the worker's startup probe has passed, so
    it never finds the Runtime API closed) and the function's image runs beside it as the
    pod's container, with the function's memory and CPU share, /tmp, file systems and the
    restricted security context, its entry point and command those of `imageConfig` or
    else the image's own.
    Both run as the same user in one process namespace: the worker kills the runtime's
    processes at a timeout, and the kubelet starts the container again."""
    spec = work.spec
    (worker,) = pod["containers"]
    worker = worker | {
        "restartPolicy": "Always",
        # the kubelet probes the pod's IP, and the Runtime API listens on loopback alone:
        # the worker serves gRPC once its Runtime API listens
        "startupProbe": {
            "grpc": {"port": constants.WORKER_PORT},
            "periodSeconds": 1,
            "failureThreshold": 120,
        },
    }
    cfg = function_config(work, settings)
    runtime: dict[str, Any] = {
        "name": constants.RUNTIME_CONTAINER,
        "image": spec.code.image,
        "imagePullPolicy": settings.image_pull_policy,
        "env": [
            {"name": k, "value": escape(v)}
            for k, v in contract.runtime_container_environment(cfg).items()
        ],
        "resources": resources(spec.memory_mb, 0, None),
        "securityContext": dict(CONTAINER_SECURITY),
        "volumeMounts": [m for m in worker["volumeMounts"] if m["name"] != "identity"],
    }
    ic = spec.image_config
    if ic is not None and ic.entry_point is not None:
        runtime["command"] = list(ic.entry_point)
    if ic is not None and ic.command is not None:
        runtime["args"] = list(ic.command)
    if ic is not None and ic.working_directory:
        runtime["workingDir"] = ic.working_directory
    return pod | {"initContainers": [worker], "containers": [runtime]}


def build_deployment(
    work: Workload,
    settings: OperatorSettings,
    replicas: int,
    scale_up_clock: str | None = None,
) -> dict[str, Any]:
    """The Deployment of a function version's worker pods, `replicas` environments."""
    annotations = {constants.ANNOTATION_CODE_SHA256: work.code_sha256}
    if scale_up_clock is not None:
        annotations[constants.ANNOTATION_SCALE_UP_CLOCK] = scale_up_clock
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": work.name,
            "namespace": work.namespace,
            "labels": labels(work.function, work.version, constants.COMPONENT_WORKER),
            "annotations": annotations,
            "ownerReferences": [dict(work.owner)],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector_labels(work.function, work.version)},
            "template": build_pod_template(work, settings),
        },
    }


def build_service(work: Workload) -> dict[str, Any]:
    """A headless Service: its EndpointSlices list each worker pod (one environment each),
    which the router picks from itself; a virtual IP would balance blindly."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": work.name,
            "namespace": work.namespace,
            "labels": labels(work.function, work.version, constants.COMPONENT_WORKER),
            "ownerReferences": [dict(work.owner)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(work.function, work.version),
            "ports": WORKER_SERVICE_PORTS,
        },
    }


def build_code_configmap(
    snapshot: Snapshot, namespace: str, owner: Mapping[str, Any]
) -> dict[str, Any]:
    """The immutable, content-addressed ConfigMap of a function's code."""
    data, binary = snapshot.data()
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": snapshot.name,
            "namespace": namespace,
            "labels": labels(snapshot.function, None, constants.COMPONENT_CODE),
            "annotations": {
                constants.ANNOTATION_CODE_SHA256: snapshot.sha256,
                constants.ANNOTATION_CODE_FILES: json.dumps(snapshot.keys, sort_keys=True),
            },
            "ownerReferences": [dict(owner)],
        },
        "immutable": True,
        "data": data,
    }
    if binary:
        body["binaryData"] = binary
    return body


def pool_labels(runtime: str) -> dict[str, str]:
    return {
        constants.LABEL_NAME: "klambda",
        constants.LABEL_MANAGED_BY: constants.COMPONENT,
        constants.LABEL_COMPONENT: constants.COMPONENT_POOL,
        constants.LABEL_POOL: runtime,
    }


def pool_command(runtime: str) -> list[str]:
    """The worker contract's command line of a pool pod (docs/operator.md)."""
    return ["klambda", "worker", "--pool", runtime]


def build_pool_deployment(
    namespace: str, runtime: str, settings: OperatorSettings
) -> dict[str, Any]:
    """The warm pool of `runtime` in `namespace`: `pool_size` generic worker pods.

    The selector is the pool label alone, so the router's claim (which removes it) takes a
    pod out of the ReplicaSet, which then makes a new one."""
    store_env = contract.store_environment(store_url(settings)) if settings.store_endpoint else {}
    code_size = f"{UNZIPPED_MAX_MB}Mi" if store_env else constants.POOL_CODE_SIZE
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.pool_name(runtime),
            "namespace": namespace,
            "labels": pool_labels(runtime),
        },
        "spec": {
            "replicas": settings.pool_size,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {constants.LABEL_POOL: runtime}},
            "template": {
                "metadata": {"labels": pool_labels(runtime)},
                "spec": _worker_pod(
                    settings,
                    image=settings.image,
                    command=pool_command(runtime),
                    env={"KLAMBDA_WORKER_PORT": str(constants.WORKER_PORT)} | store_env,
                    memory_mb=settings.pool_memory_mb,
                    # requested: the pool's memory size's share; the limit is what a cold
                    # start's specialise and init run with (Lambda runs init at full
                    # speed), until the operator resizes the pod to its function's
                    worker_cpu_m=settings.worker_cpu_millicores,
                    cpu_limit_m=settings.pool_cpu_millicores or None,
                    grace_s=limits.TIMEOUT_MAX_S + TERMINATION_GRACE_S,
                    code={"emptyDir": {"sizeLimit": code_size}},
                    # with a store, a function's code and layers may come from it
                    opt=bool(store_env),
                    from_store=bool(store_env),
                ),
            },
        },
    }


def build_pool_service(namespace: str, runtime: str) -> dict[str, Any]:
    """Headless, like a version's: its EndpointSlices (labelled with the pool) list the
    ready pool pods, which the router takes one at a time."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.pool_name(runtime),
            "namespace": namespace,
            "labels": pool_labels(runtime),
        },
        "spec": {
            "clusterIP": "None",
            "selector": {constants.LABEL_POOL: runtime},
            "ports": WORKER_SERVICE_PORTS,
        },
    }


# ---------------------------------------------------------------- database proxies

# PgBouncer's pod: small, whatever the pool (a client connection costs it a few KiB).
PROXY_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "32Mi"},
    "limits": {"memory": "256Mi"},
}

# The PgBouncer container's command (sh and awk, as Debian has them). PgBouncer reads no
# PGPASSWORD: when the pod has one (the proxy's passwordSecret), it is added to each line
# of [databases] as `password='...'` (`'` doubled, klambda.dbproxy.quote) in a copy of the
# configuration that only the pod's user may read, in memory; a line break, which no ini
# line can hold, stops the pod with a message. No `$(` in here: Kubernetes would expand
# it as a variable reference.
PROXY_START = r"""set -eu
umask 077
awk '
BEGIN {
    pw = ENVIRON["PGPASSWORD"]
    if (pw ~ /[\r\n]/) {
        print "PGPASSWORD holds a line break, which PgBouncer cannot be given" > "/dev/stderr"
        exit 2
    }
    gsub("\047", "\047\047", pw)
}
/^\[/ { section = $0 }
section == "[databases]" && /=/ && pw != "" { $0 = $0 " password=\047" pw "\047" }
{ print }
' "$KLAMBDA_DBPROXY_CONFIG" > "$KLAMBDA_DBPROXY_RUN/pgbouncer.ini"
exec pgbouncer "$KLAMBDA_DBPROXY_RUN/pgbouncer.ini"
"""


@dataclass(frozen=True)
class Proxy:
    """One DatabaseProxy to run."""

    namespace: str
    name: str
    spec: DatabaseProxySpec
    owner: Mapping[str, Any]  # the DatabaseProxy's ownerReference

    @property
    def object_name(self) -> str:
        return names.dbproxy_name(self.name)

    @property
    def host(self) -> str:
        return names.dbproxy_host(self.name, self.namespace)


def proxy_labels(proxy: str) -> dict[str, str]:
    return {
        constants.LABEL_NAME: "klambda",
        constants.LABEL_MANAGED_BY: constants.COMPONENT,
        constants.LABEL_COMPONENT: constants.COMPONENT_DBPROXY,
        constants.LABEL_DATABASE_PROXY: proxy,
    }


def proxy_selector(proxy: str) -> dict[str, str]:
    return {
        constants.LABEL_COMPONENT: constants.COMPONENT_DBPROXY,
        constants.LABEL_DATABASE_PROXY: proxy,
    }


def proxy_ini(proxy: Proxy) -> str:
    """PgBouncer's configuration in the pod: every address of the pod, no password."""
    return pgbouncer_ini(proxy.spec, listen_host="0.0.0.0")


def _proxy_meta(proxy: Proxy) -> dict[str, Any]:
    return {
        "name": proxy.object_name,
        "namespace": proxy.namespace,
        "labels": proxy_labels(proxy.name),
        "ownerReferences": [dict(proxy.owner)],
    }


def build_proxy_configmap(proxy: Proxy) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _proxy_meta(proxy),
        "data": {constants.DBPROXY_INI: proxy_ini(proxy)},
    }


def build_proxy_deployment(proxy: Proxy, settings: OperatorSettings) -> dict[str, Any]:
    """One PgBouncer pod, so that `poolSize` bounds the server's connections (a rolling
    update runs the new pod beside the old one until it is ready: for that moment, two
    pools). The configuration's digest on the pod template rolls it when the ConfigMap
    changes, which a running PgBouncer would not notice."""
    ini = proxy_ini(proxy)
    env: list[dict[str, Any]] = [
        {
            "name": "KLAMBDA_DBPROXY_CONFIG",
            "value": f"{constants.DBPROXY_CONFIG_DIR}/{constants.DBPROXY_INI}",
        },
        {"name": "KLAMBDA_DBPROXY_RUN", "value": constants.DBPROXY_RUN_DIR},
    ]
    secret = proxy.spec.target.password_secret
    if secret is not None:
        env.append(
            {
                "name": "PGPASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    container = {
        "name": constants.DBPROXY_CONTAINER,
        "image": settings.db_proxy_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["/bin/sh", "-c", PROXY_START],
        "env": env,
        "ports": [
            {
                "name": constants.DBPROXY_PORT_NAME,
                "containerPort": proxy.spec.port,
                "protocol": "TCP",
            }
        ],
        "readinessProbe": {
            "tcpSocket": {"port": constants.DBPROXY_PORT_NAME},
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "tcpSocket": {"port": constants.DBPROXY_PORT_NAME},
            "periodSeconds": 20,
            "failureThreshold": 3,
        },
        "resources": PROXY_RESOURCES,
        "securityContext": dict(CONTAINER_SECURITY),
        "volumeMounts": [
            {"name": "config", "mountPath": constants.DBPROXY_CONFIG_DIR, "readOnly": True},
            {"name": "run", "mountPath": constants.DBPROXY_RUN_DIR},
        ],
    }
    pod: dict[str, Any] = {}
    if settings.function_service_account:  # bound to nothing, as the worker pods'
        pod["serviceAccountName"] = settings.function_service_account
    pod |= {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": dict(POD_SECURITY),
        "containers": [container],
        "volumes": [
            {
                "name": "config",
                "configMap": {"name": proxy.object_name, "defaultMode": 0o444},
            },
            {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _proxy_meta(proxy),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": proxy_selector(proxy.name)},
            "template": {
                "metadata": {
                    "labels": proxy_labels(proxy.name),
                    "annotations": {
                        constants.ANNOTATION_CONFIG_SHA256: hashlib.sha256(ini.encode()).hexdigest()
                    },
                },
                "spec": pod,
            },
        },
    }


def build_proxy_service(proxy: Proxy) -> dict[str, Any]:
    """A virtual IP in front of the PgBouncer pod, at the port the proxy names."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _proxy_meta(proxy),
        "spec": {
            "type": "ClusterIP",
            "selector": proxy_selector(proxy.name),
            "ports": [
                {
                    "name": constants.DBPROXY_PORT_NAME,
                    "port": proxy.spec.port,
                    "targetPort": constants.DBPROXY_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def proxy_availability(deployment: Mapping[str, Any] | None) -> tuple[bool, str, str]:
    """(available, reason, message) of a proxy from its Deployment as it is: available
    when the Deployment controller has seen its latest spec and its one pod runs that spec
    and is ready (during a rollout, the old pod still serves: not yet)."""
    if deployment is None:
        return False, "Creating", "the PgBouncer Deployment is being created"
    status = deployment.get("status") or {}
    generation = (deployment.get("metadata") or {}).get("generation")
    if generation is not None and int(status.get("observedGeneration") or 0) < generation:
        return False, "Progressing", "the PgBouncer Deployment is rolling out a change"
    pods, updated, available = (
        int(status.get(key) or 0) for key in ("replicas", "updatedReplicas", "availableReplicas")
    )
    if updated < 1 or available < 1 or pods > updated:
        return False, "Unavailable", "no PgBouncer pod of the latest configuration is ready yet"
    return True, "Available", "PgBouncer is ready"
