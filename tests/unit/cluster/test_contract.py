"""The worker pod's environment, as the operator writes it and the worker reads it back."""

from __future__ import annotations

import pytest
from klambda.contract import (
    LATEST,
    WorkerConfigError,
    config_from_environment,
    version_label,
    version_of_label,
    worker_environment,
)
from klambda.execution import FunctionConfig

CONFIGS = [
    FunctionConfig("hello", LATEST, "app.handler", "python3.11", 128, 3, {}, "/var/task", ""),
    FunctionConfig(
        "orders",
        "17",
        "pkg.mod.handle",
        "python3.12",
        10240,
        900,
        {"GREETING": "Hello", "DOLLARS": "$(HOME) $$ $LATEST", "EMPTY_LOOKING": " "},
        "/var/task",
        "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
        region="eu-west-1",
        account="123456789012",
        ephemeral_storage_mb=10240,
    ),
    FunctionConfig(
        "structured",
        "2",
        "app.handler",
        "python3.11",
        256,
        10,
        {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"},
        "/var/task",
        "",
        log_format="JSON",
        application_log_level="WARN",
        system_log_level="DEBUG",
    ),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.function}:{c.version}")
def test_the_worker_reads_back_what_the_operator_writes(cfg: FunctionConfig) -> None:
    assert config_from_environment(worker_environment(cfg)) == cfg


def test_per_environment_variables_are_left_to_the_worker() -> None:
    env = worker_environment(CONFIGS[0])
    assert "AWS_LAMBDA_LOG_STREAM_NAME" not in env
    assert env["KLAMBDA_WORKER_PORT"] == "9000"


CONTRACT = {
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "_HANDLER": "app.handler",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "KLAMBDA_TIMEOUT_SECONDS": "30",
    "KLAMBDA_FUNCTION": "hello",
    "KLAMBDA_VERSION": "3",
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_REGION": "eu-west-1",
    "KLAMBDA_USER_ENVIRONMENT": "GREETING,COLOR",
    "GREETING": "Hi",
    "COLOR": "red",
    "UNRELATED": "x",
}


def test_worker_config_from_the_contract() -> None:
    cfg = config_from_environment(CONTRACT)
    assert (cfg.function, cfg.version, cfg.runtime) == ("hello", "3", "python3.12")
    assert (cfg.memory_mb, cfg.timeout_s, cfg.region) == (512, 30, "eu-west-1")
    assert cfg.environment == {"GREETING": "Hi", "COLOR": "red"}
    assert cfg.code_root == "/var/task"


@pytest.mark.parametrize(
    ("drop", "change", "message"),
    [
        ("_HANDLER", {}, "needs _HANDLER"),
        (None, {"AWS_EXECUTION_ENV": "python"}, "is not AWS_Lambda_<runtime>"),
        ("COLOR", {}, "user variables COLOR are not set"),
        (None, {"KLAMBDA_TIMEOUT_SECONDS": "soon"}, "invalid literal"),
    ],
)
def test_worker_config_errors(drop: str | None, change: dict[str, str], message: str) -> None:
    env = {k: v for k, v in CONTRACT.items() if k != drop} | change
    with pytest.raises(WorkerConfigError, match=message):
        config_from_environment(env)


@pytest.mark.parametrize(("version", "label"), [(LATEST, "latest"), ("3", "3")])
def test_version_labels(version: str, label: str) -> None:
    assert version_label(version) == label
    assert version_of_label(label) == version
