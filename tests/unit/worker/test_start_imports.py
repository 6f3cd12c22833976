"""`klambda worker` starts in every function pod, under the CPU share of the function's
memory (73 millicores for 128 MB): each CPU-second of its start is ~14 s before the pod is
ready. So it imports what serving needs, and none of the other verbs, the resource models,
the Kubernetes client, the log engine's HTTP client or the Runtime API and Extensions API
servers of the `provided` runtimes. Its zygote imports what a forked environment needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from klambda.contract import worker_environment
from klambda.execution import FunctionConfig

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"

# the verb run as the console script runs it, up to the event loop that would serve
RUN_THE_VERB = """
import asyncio, json, sys
asyncio.run = lambda coro: coro.close()
from klambda.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as end:
    assert not end.code, end.code
print(json.dumps(sorted(sys.modules)))
"""

NEVER = (
    "lightkube",
    "aiohttp",
    "botocore",
    "yaml",
    "duckdb",
    "rich",
    "klambda.api.function",
    "klambda.api.manifest",
    "klambda.kinds",
    "klambda.sigv4",
    "klambda.logengine.client",
    "klambda.worker.runtimeapi",
    "klambda.worker.extensionsapi",
)
# the command line's modules the verb needs; any other holds another verb
CLI = {
    "klambda.cli",
    "klambda.cli.main",
    "klambda.cli.app",
    "klambda.cli.options",
    "klambda.cli.output",
    "klambda.cli.serve",
}


def _modules(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_THE_VERB, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _check(modules: set[str]) -> None:
    assert "klambda.worker.server" in modules  # the verb did run
    heavy = [m for m in modules if any(m == n or m.startswith(n + ".") for n in NEVER)]
    assert heavy == []
    other_verbs = [m for m in modules if m.startswith("klambda.cli") and m not in CLI]
    assert other_verbs == []


def test_a_pool_worker_starts_on_what_it_serves_with() -> None:
    _check(_modules(["worker", "--pool", RUNTIME, "--port", "9000", "--no-cgroups"]))


def test_a_versions_worker_starts_on_what_it_serves_with() -> None:
    cfg = FunctionConfig(
        function="hello",
        version="3",
        handler="app.handler",
        runtime=RUNTIME,
        memory_mb=128,
        timeout_s=3,
        environment={"GREETING": "hi"},
        code_root="/var/task",
        code_sha256="abc",
    )
    env = worker_environment(cfg)
    _check(_modules(["worker", "--function", "hello", "--version", "3"], env))


def test_the_command_imports_no_verb_before_it_is_chosen() -> None:
    code = "import json, sys, klambda.cli.main; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout))
    ours = {m for m in modules if m.startswith("klambda.")}
    assert ours == {"klambda.cli", "klambda.cli.main", "klambda.cli.app"}
    assert "pydantic" not in modules


def test_the_zygote_imports_what_an_environment_needs() -> None:
    code = "import json, sys, klambda.environment.zygote; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout))
    ours = {m for m in modules if m == "klambda" or m.startswith("klambda.")}
    assert ours == {
        "klambda",
        "klambda.environment",
        "klambda.environment.bootstrap",
        "klambda.environment.context",
        "klambda.environment.protocol",
        "klambda.environment.streaming",
        "klambda.environment.zygote",
    }
    # entering a sandbox is preloaded by a worker that sandboxes (as root); a Decimal is
    # encoded where a handler made one
    assert {"ctypes", "decimal"}.isdisjoint(modules)
