"""What an execution environment of a function version is configured with. Pure.

`FunctionConfig` is what a worker needs to start environments of one function version,
and `environment_variables` the process environment each gets: the function's own
variables plus Lambda's reserved ones. The worker (local mode, `klambda worker`) and the
operator (a worker pod's env) share them, so both speak the same contract.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from klambda.api.limits import EPHEMERAL_STORAGE_DEFAULT_MB

if TYPE_CHECKING:  # a worker reads its configuration, it never builds one from a spec
    from klambda.api.function import FunctionSpec

# where the environment's runtime lives, for LAMBDA_RUNTIME_DIR
RUNTIME_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "environment")
# Lambda's variables that name places on the worker's side: a container image has its own
IMAGE_OWN_VARIABLES = frozenset(
    {"PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}
)


@dataclass(frozen=True)
class FunctionConfig:
    """What an environment needs to know about the function version it runs."""

    function: str
    version: str  # "$LATEST" or a number
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    code_root: str
    code_sha256: str
    region: str = "us-east-1"
    account: str = "000000000000"
    ephemeral_storage_mb: int = EPHEMERAL_STORAGE_DEFAULT_MB  # the size of its private /tmp
    recursive_loop: str = "Terminate"  # or "Allow": klambda.lineage
    # Lambda's advanced logging controls; the levels in force (None: no filtering, Text)
    log_format: str = "Text"
    application_log_level: str | None = None
    system_log_level: str | None = None
    # the function's layers merged (the environment's /opt); "" without layers
    opt_root: str = ""
    # file systems: (host folder, path in the environment such as /mnt/data)
    mounts: tuple[tuple[str, str], ...] = ()
    # the layer versions the function names, in order (NAME:VERSION or ARNs)
    layers: tuple[str, ...] = ()
    # a container-image function: its image, and ImageConfig's overrides (None: the image's)
    image: str = ""
    image_entry_point: tuple[str, ...] | None = None
    image_command: tuple[str, ...] | None = None
    image_workdir: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"


def config_of(
    function: str,
    version: str,
    spec: FunctionSpec,
    *,
    code_root: str,
    code_sha256: str,
    region: str,
    account: str,
    opt_root: str = "",
    mounts: tuple[tuple[str, str], ...] = (),
) -> FunctionConfig:
    ic = spec.image_config
    """The configuration of one version of a function from its (snapshotted) spec."""
    return FunctionConfig(
        function=function,
        version=version,
        handler=spec.handler,
        runtime=spec.runtime,
        memory_mb=spec.memory_mb,
        timeout_s=spec.timeout_seconds,
        environment=dict(spec.environment),
        code_root=code_root,
        code_sha256=code_sha256,
        region=region,
        account=account,
        ephemeral_storage_mb=spec.ephemeral_storage_mb,
        recursive_loop=spec.recursive_loop,
        log_format=spec.logging.log_format,
        application_log_level=spec.logging.application_level,
        system_log_level=spec.logging.system_level,
        opt_root=opt_root,
        mounts=mounts,
        layers=tuple(spec.layers),
        image=spec.code.image or "",
        image_entry_point=tuple(ic.entry_point) if ic and ic.entry_point is not None else None,
        image_command=tuple(ic.command) if ic and ic.command is not None else None,
        image_workdir=ic.working_directory if ic else None,
    )


def stream_name(version: str) -> str:
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version}]{uuid.uuid4().hex}"


def python_paths(opt: str) -> list[str]:
    """Where Lambda's Python runtimes find a layer's packages under /opt."""
    return [
        f"{opt}/python",
        *(str(p) for p in sorted(Path(opt).glob("python/lib/python3*/site-packages"))),
    ]


def environment_variables(
    cfg: FunctionConfig, stream: str, initialization: str = "on-demand"
) -> dict[str, str]:
    """The process environment: the user's variables plus Lambda's reserved ones."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(cfg.environment)
    env.update(
        {
            "_HANDLER": cfg.handler,
            "AWS_REGION": cfg.region,
            "AWS_DEFAULT_REGION": cfg.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": cfg.function,
            "AWS_LAMBDA_FUNCTION_VERSION": cfg.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization,
            "AWS_LAMBDA_LOG_GROUP_NAME": cfg.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "LAMBDA_TASK_ROOT": cfg.code_root,
            "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
        }
    )
    if cfg.opt_root:
        # Lambda's places in /opt: programs, libraries, Python packages
        opt = cfg.opt_root
        env["PATH"] = f"{env['PATH']}:{opt}/bin"
        env["LD_LIBRARY_PATH"] = f"{opt}/lib"
        env["PYTHONPATH"] = ":".join(python_paths(opt))
    if cfg.log_format == "JSON":
        # what Lambda's runtimes read to format and filter application records
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["AWS_LAMBDA_LOG_LEVEL"] = cfg.application_log_level or "INFO"
    return env
