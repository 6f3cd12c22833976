"""A worker's function configuration, read from its process environment.

The operator writes it into the worker pod (docs/operator.md, "the worker contract"):
Lambda's own variables (`_HANDLER`, `AWS_EXECUTION_ENV`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`,
`AWS_REGION`, `LAMBDA_TASK_ROOT`, ...) plus `KLAMBDA_FUNCTION`, `KLAMBDA_VERSION`,
`KLAMBDA_TIMEOUT_SECONDS`, `KLAMBDA_CODE_SHA256`, `KLAMBDA_ACCOUNT_ID` and
`KLAMBDA_USER_ENVIRONMENT` (the names of the function's own variables). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from klambda.execution import FunctionConfig


class WorkerConfigError(ValueError):
    pass


def from_environment(env: Mapping[str, str]) -> FunctionConfig:
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
