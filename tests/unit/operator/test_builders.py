"""The pure parts of the operator, table by table: what a function version's pod asks
for, how code is laid out in a ConfigMap, how drift is told from API-server defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from klambda import codestore, contract
from klambda.api import FunctionSpec
from klambda_operator import builders, names, snapshots
from klambda_operator.drift import differences
from klambda_operator.settings import OperatorSettings


@pytest.mark.parametrize(
    ("memory_mb", "cpu"),
    [(128, "73m"), (1769, "1"), (3538, "2"), (1024, "579m"), (10240, "5789m")],
)
def test_cpu_in_proportion_to_memory(memory_mb: int, cpu: str) -> None:
    amounts = builders.resources(memory_mb, overhead_mb=64)
    assert amounts["limits"] == amounts["requests"] == {"cpu": cpu, "memory": f"{memory_mb + 64}Mi"}
    burst = builders.resources(memory_mb, overhead_mb=64, cpu_overhead_m=100)
    assert burst["requests"] == amounts["requests"]
    assert burst["limits"]["cpu"] == builders.cpu_quantity(builders.cpu_millicores(memory_mb) + 100)


@pytest.mark.parametrize(("worker_m", "cpu"), [(100, "173m"), (10, "83m"), (1696, "1769m")])
def test_the_worker_has_cpu_of_its_own_beside_the_functions_share(worker_m: int, cpu: str) -> None:
    # a 128 MB function's 73 m stays its own: the worker's gRPC work is not charged to its
    # quota; the scheduler reserves the function's share
    settings = OperatorSettings(worker_cpu_millicores=worker_m)
    (container,) = builders.build_pod_template(work(), settings)["spec"]["containers"]
    assert container["resources"]["limits"]["cpu"] == cpu
    assert container["resources"]["requests"]["cpu"] == "73m"


@pytest.mark.parametrize("raw", ["0", "9", "6001"])
def test_the_workers_cpu_is_bounded(raw: str) -> None:
    with pytest.raises(ValueError, match="WORKER_CPU_MILLICORES must be within 10-6000"):
        OperatorSettings.from_env({"KLAMBDA_OPERATOR_WORKER_CPU_MILLICORES": raw})


@pytest.mark.parametrize("storage_mb", [None, 512, 10240])
def test_tmp_is_bounded_by_ephemeral_storage(storage_mb: int | None) -> None:
    spec = {} if storage_mb is None else {"ephemeralStorageMB": storage_mb}
    pod = builders.build_pod_template(work(**spec), OperatorSettings())["spec"]
    size = storage_mb or 512
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"] == {"sizeLimit": f"{size}Mi"}
    res = pod["containers"][0]["resources"]
    assert res["limits"]["ephemeral-storage"] == f"{size + 64}Mi"
    assert res["requests"]["ephemeral-storage"] == f"{size + 64}Mi"


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("$LATEST", "$LATEST"), ("Hi $(HOME)", "Hi $$(HOME)"), ("$$", "$$$"), ("a$", "a$"), ("", "")],
)
def test_env_values_survive_kubernetes_expansion(value: str, escaped: str) -> None:
    assert builders.escape(value) == escaped


def work(**spec: Any) -> builders.Workload:
    full = {"handler": "app.handler", "runtime": "python3.12", "code": {"inline": {"a.py": ""}}}
    return builders.Workload(
        namespace="ns",
        function="hello",
        version="3",
        spec=FunctionSpec.model_validate(full | spec),
        code_sha256="c2hh",
        owner={
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Version",
            "name": "hello.3",
            "uid": "u",
        },
        snapshot="hello-code-0123456789",
        items=[{"key": "a.py", "path": "a.py"}],
    )


def test_worker_environment_has_lambda_variables_and_the_worker_contract() -> None:
    env = builders.worker_environment(
        work(environment={"B": "2", "A": "1"}, memoryMB=512, timeoutSeconds=30),
        OperatorSettings(region="eu-west-1", account_id="123456789012"),
    )
    assert env["A"] == "1"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "3"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/hello"
    assert env["KLAMBDA_TIMEOUT_SECONDS"] == "30"
    assert env["KLAMBDA_USER_ENVIRONMENT"] == "A,B"
    assert env["KLAMBDA_ACCOUNT_ID"] == "123456789012"
    for per_environment in contract.PER_ENVIRONMENT:
        assert per_environment not in env  # the worker sets these for each environment


def test_pods_of_provisioned_concurrency_initialise_before_they_are_ready() -> None:
    settings = OperatorSettings()
    assert contract.PROVISIONED_ENV not in builders.worker_environment(work(), settings)
    provisioned = dataclasses.replace(work(), provisioned=True)
    assert builders.worker_environment(provisioned, settings)[contract.PROVISIONED_ENV] == "1"


def test_deployment_is_deterministic_and_labelled_for_the_router() -> None:
    settings = OperatorSettings()
    one = builders.build_deployment(work(), settings, replicas=2)
    assert one == builders.build_deployment(work(), settings, replicas=2)
    assert one["metadata"]["name"] == "hello-v3"
    assert one["spec"]["selector"]["matchLabels"] == {
        "klambda.io/function": "hello",
        "klambda.io/version": "3",
    }
    pod = one["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod  # the namespace's default, without its token
    assert pod["automountServiceAccountToken"] is False
    pod = builders.build_deployment(
        work(), OperatorSettings(function_service_account="klambda-function"), replicas=0
    )["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "klambda-function"
    service = builders.build_service(work())
    assert service["spec"]["selector"] == one["spec"]["selector"]["matchLabels"]


def test_worker_pods_serve_the_invoke_lane_and_their_services_list_it() -> None:
    settings = OperatorSettings()
    for deployment, service in (
        (builders.build_deployment(work(), settings, replicas=1), builders.build_service(work())),
        (
            builders.build_pool_deployment("fns", "python3.12", settings),
            builders.build_pool_service("fns", "python3.12"),
        ),
    ):
        (worker,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in worker["env"]}
        assert env[contract.WORKER_LANE_PORT_ENV] == str(contract.WORKER_LANE_PORT)
        declared = {p["name"]: p["containerPort"] for p in worker["ports"]}
        assert declared == {"grpc": contract.WORKER_PORT, "lane": contract.WORKER_LANE_PORT}
        # by name: a pod that declares no lane port is listed without one
        listed = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
        assert listed == {"grpc": "grpc", "lane": "lane"}


def test_worker_pods_ship_their_logs_to_the_engine_when_there_is_one() -> None:
    def env_of(settings: OperatorSettings) -> list[dict[str, str]]:
        pods = [
            builders.build_deployment(work(), settings, replicas=1),
            builders.build_pool_deployment("fns", "python3.12", settings),
        ]
        return [
            {e["name"]: e["value"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
            for d in pods
        ]

    url = "http://klambda-logs.klambda.svc:9428"
    for env in env_of(OperatorSettings(log_engine_url=url, account_id="123456789012")):
        assert env[contract.LOG_ENGINE_URL_ENV] == url
        assert env["KLAMBDA_ACCOUNT_ID"] == "123456789012"  # @log's account, pool pods too
    for env in env_of(OperatorSettings()):
        assert contract.LOG_ENGINE_URL_ENV not in env


def test_pool_pods_wait_for_any_function_of_their_runtime() -> None:
    settings = OperatorSettings(pool_size=3, pool_memory_mb=256, memory_overhead_mb=100)
    deployment = builders.build_pool_deployment("fns", "python3.12", settings)
    assert deployment == builders.build_pool_deployment("fns", "python3.12", settings)
    assert deployment["metadata"]["name"] == "klambda-pool-python3-12"
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    # the claim removes this label: the ReplicaSet lets go of the pod and makes another
    assert spec["selector"] == {"matchLabels": {contract.LABEL_POOL: "python3.12"}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels[contract.LABEL_COMPONENT] == "pool"
    assert contract.LABEL_FUNCTION not in labels  # no version's Service selects it
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["klambda", "worker", "--pool", "python3.12"]
    # a default /tmp, and the worker's CPU beside 256 MB's share
    assert container["resources"] == builders.resources(256, 100, 512, cpu_overhead_m=100)
    assert container["resources"]["limits"]["cpu"] == "245m"
    assert container["volumeMounts"][0] == {"name": "code", "mountPath": "/var/task"}  # writable
    assert pod["volumes"][0] == {"name": "code", "emptyDir": {"sizeLimit": "16Mi"}}
    assert pod["terminationGracePeriodSeconds"] == 905  # it may come to run any function
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = builders.build_pool_service("fns", "python3.12")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["metadata"]["labels"][contract.LABEL_POOL] == "python3.12"  # on its slices


def test_pool_pods_start_with_the_cpu_they_are_given_and_stay_guaranteed() -> None:
    # a limit of 1,000 m for the specialise and init of a cold start, not 256 MB's 145 m
    # (and the worker's 100); the request is 256 MB's share: a pool of pods that each
    # may burst to a core reserves no more of the node than its memory size's share
    settings = OperatorSettings(pool_memory_mb=256, pool_cpu_millicores=1000)
    deployment = builders.build_pool_deployment("fns", "python3.12", settings)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "145m"
    assert container["resources"]["limits"]["cpu"] == "1"
    assert container["resources"]["limits"]["memory"] == "384Mi"
    assert container["resources"]["requests"]["memory"] == "384Mi"
    # Burstable before (limit above request) and after the resize (the worker's part in
    # the limit), so the kubelet accepts the resize: it may not change the QoS class
    resized = builders.resources(256, 128, cpu_overhead_m=100)
    assert resized["limits"]["cpu"] != resized["requests"]["cpu"]
    # a limit below the request is never asked for
    low = OperatorSettings(pool_memory_mb=1769, pool_cpu_millicores=500)
    pod = builders.build_pool_deployment("fns", "python3.12", low)["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["cpu"] == "1"
    # a version's own pods keep their memory's share, and the worker's beside it
    assert builders.resources(256, 128)["limits"]["cpu"] == "145m"
    assert builders.resources(256, 128, cpu_overhead_m=100)["limits"]["cpu"] == "245m"
    with pytest.raises(ValueError, match="POOL_CPU_MILLICORES must be within 0-6000"):
        OperatorSettings.from_env({"KLAMBDA_OPERATOR_POOL_CPU_MILLICORES": "7000"})


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("app.py", "app.py"),
        ("lib/util.py", "f-lib_util.py-"),
        ("..hidden", "f-..hidden-"),
        ("sp ace.py", "f-sp_ace.py-"),
    ],
)
def test_configmap_keys(path: str, key: str) -> None:
    assert snapshots.config_map_key(path).startswith(key)


def test_snapshot_round_trip_and_name() -> None:
    files = {"app.py": b"x = 1\n", "lib/util.py": b"y = 2\n", "blob.bin": b"\xff\x00"}
    snap = snapshots.take("hello", files)
    assert snap.sha256 == codestore.digest(files)
    assert snap.name == f"hello-code-{names.short_hash(snap.sha256)}"
    body = builders.build_code_configmap(snap, "ns", {"uid": "u"})
    assert "blob.bin" in body["binaryData"]
    assert snapshots.snapshot_files(body) == files


@pytest.mark.parametrize(
    ("desired", "live", "drift"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, []),  # server defaults are not drift
        ({"a": 1}, {"a": 2}, [".a"]),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1]}}, [".a.b"]),
        ({"a": ""}, {}, []),  # the server omits empty values
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 0}]}, []),
        ({"a": {"b": 1}}, {}, [".a"]),
    ],
)
def test_drift(desired: dict[str, Any], live: dict[str, Any], drift: list[str]) -> None:
    assert differences(desired, live) == drift


def test_uploaded_code_reads_back_as_its_files() -> None:
    """The command line uploads a .zip to a ConfigMap; the operator snapshots the same files
    (so the CodeSha256 is the one local mode computes)."""
    from klambda import codestore, contract

    files = {"app.py": b"x = 1\n", "lib/deep/util.py": b"y = 2\n", "blob": bytes(range(256))}
    cm = contract.code_config_map("fn", files, "ns")
    assert snapshots.snapshot_files(cm) == files
    assert snapshots.take("fn", snapshots.snapshot_files(cm)).sha256 == codestore.digest(files)
    assert (
        cm["metadata"]["name"]
        == contract.code_config_map("fn", dict(files), "x")["metadata"]["name"]
    )
    with pytest.raises(ValueError, match="more than a ConfigMap holds"):
        contract.code_config_map("fn", {"big": b"x" * (1024 * 1024)}, "ns")


def test_a_function_with_a_service_account_gets_its_identity_token() -> None:
    pod = builders.build_pod_template(
        work(serviceAccountName="orders-fn"), OperatorSettings(function_service_account="x")
    )["spec"]
    assert pod["serviceAccountName"] == "orders-fn"
    assert pod["automountServiceAccountToken"] is False  # not the API server's token
    (volume,) = [v for v in pod["volumes"] if v["name"] == "identity"]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "klambda"
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env[contract.IDENTITY_TOKEN_ENV] == contract.IDENTITY_TOKEN_FILE
    assert {"name": "identity", "mountPath": contract.IDENTITY_TOKEN_DIR, "readOnly": True} in (
        container["volumeMounts"]
    )
    plain = builders.build_pod_template(work(), OperatorSettings())["spec"]
    assert "serviceAccountName" not in plain
    assert all(v["name"] != "identity" for v in plain["volumes"])


def test_file_systems_are_the_claims_mounted_at_their_paths() -> None:
    fs = [{"claimName": "shared-efs", "localMountPath": "/mnt/shared"}]
    pod = builders.build_pod_template(work(fileSystemConfigs=fs), OperatorSettings())["spec"]
    assert {"name": "fs-0", "persistentVolumeClaim": {"claimName": "shared-efs"}} in pod["volumes"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "fs-0", "mountPath": "/mnt/shared"} in mounts
    plain = builders.build_pod_template(work(), OperatorSettings())["spec"]
    assert not [v for v in plain["volumes"] if "persistentVolumeClaim" in v]


def image_work(**spec: Any) -> builders.Workload:
    return dataclasses.replace(work(**spec), snapshot=None, items=[])


def test_an_image_function_runs_its_image_beside_a_worker_that_starts_first() -> None:
    image = {"image": "registry.example/orders@sha256:" + "a" * 64}
    config = {"entryPoint": ["/lambda-entrypoint.sh"], "command": ["app.handler"]}
    pod = builders.build_pod_template(
        image_work(code=image, imageConfig=config, memoryMB=512,
             fileSystemConfigs=[{"claimName": "efs", "localMountPath": "/mnt/efs"}]),
        OperatorSettings(image="klambda/runtime:1"),
    )["spec"]  # fmt: skip
    (worker,) = pod["initContainers"]
    (runtime,) = pod["containers"]
    # the worker: klambda's image, a native sidecar the runtime waits for
    assert worker["image"] == "klambda/runtime:1"
    assert worker["restartPolicy"] == "Always"
    assert worker["command"][-2:] == ["--runtime-api-port", str(contract.RUNTIME_API_PORT)]
    assert worker["startupProbe"]["grpc"] == {"port": contract.WORKER_PORT}
    assert worker["resources"]["limits"]["memory"] == "128Mi"  # its overhead alone
    # the runtime: the function's image with its memory, entry point and Lambda's variables
    assert runtime["image"] == image["image"]
    assert (runtime["command"], runtime["args"]) == (["/lambda-entrypoint.sh"], ["app.handler"])
    assert runtime["resources"]["limits"] == {"cpu": "290m", "memory": "512Mi"}
    env = {e["name"]: e["value"] for e in runtime["env"]}
    assert env["AWS_LAMBDA_RUNTIME_API"] == f"127.0.0.1:{contract.RUNTIME_API_PORT}"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert not {"PATH", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_LOG_STREAM_NAME"} & set(env)
    assert {"name": "fs-0", "mountPath": "/mnt/efs"} in runtime["volumeMounts"]
    assert runtime["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["shareProcessNamespace"] is True  # the worker kills the runtime at a timeout
    # an image's own ENTRYPOINT and CMD when imageConfig leaves them
    plain = builders.build_pod_template(image_work(code=image), OperatorSettings())["spec"]
    assert "command" not in plain["containers"][0]
    assert "args" not in plain["containers"][0]


def test_code_and_layers_from_the_store_unpack_into_emptydirs() -> None:
    settings = OperatorSettings(store_endpoint="http://store.klambda.svc:9000/")
    stored = dataclasses.replace(
        work(code={"s3Key": "uploads/app.zip"}, layers=["libs:1", "data:2"]),
        snapshot=None,
        items=[],
        code_object="code/" + "a" * 64 + ".zip",
        layer_objects=("layers/" + "b" * 64 + ".zip", "layers/" + "c" * 64 + ".zip"),
    )
    env = builders.worker_environment(stored, settings)
    assert env[contract.STORE_URL_ENV] == "http://store.klambda.svc:9000/klambda"
    assert env[contract.CODE_OBJECT_ENV] == stored.code_object
    assert env[contract.LAYER_OBJECTS_ENV] == ",".join(stored.layer_objects)
    pod = builders.build_pod_template(stored, settings)["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["code"] == {"name": "code", "emptyDir": {"sizeLimit": "250Mi"}}
    assert volumes["opt"] == {"name": "opt", "emptyDir": {"sizeLimit": "250Mi"}}
    container = pod["containers"][0]
    assert {"name": "opt", "mountPath": "/opt"} in container["volumeMounts"]
    # /tmp and what code and layers unpack to, at most, in the pod's ephemeral storage
    plain = builders.build_pod_template(work(), settings)["spec"]["containers"][0]
    more = container["resources"]["limits"]["ephemeral-storage"].removesuffix("Mi")
    less = plain["resources"]["limits"]["ephemeral-storage"].removesuffix("Mi")
    assert int(more) - int(less) == 250
    # a snapshot's pods get neither the store nor /opt
    assert contract.STORE_URL_ENV not in builders.worker_environment(work(), settings)
    assert not [v for v in plain.get("volumeMounts", []) if v["name"] == "opt"]


def test_pool_pods_can_take_code_and_layers_from_the_store_when_there_is_one() -> None:
    with_store = OperatorSettings(store_endpoint="http://store:9000")
    pod = builders.build_pool_deployment("ns", "python3.11", with_store)["spec"]["template"]
    spec = pod["spec"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env[contract.STORE_URL_ENV] == "http://store:9000/klambda"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["opt"]["emptyDir"] == {"sizeLimit": "250Mi"}
    assert volumes["code"]["emptyDir"] == {"sizeLimit": "250Mi"}
    plain = builders.build_pool_deployment("ns", "python3.11", OperatorSettings())
    spec = plain["spec"]["template"]["spec"]
    assert contract.STORE_URL_ENV not in {e["name"] for e in spec["containers"][0]["env"]}
    assert "opt" not in {v["name"] for v in spec["volumes"]}
