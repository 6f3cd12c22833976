"""The pure parts of the Runtime API path: error bodies, the launcher, the bootstrap."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from klambda.worker import runtimes
from klambda.worker.custom import bootstrap_command, launcher
from klambda.worker.runtimeapi import Invocation, error_body


def test_error_body_keeps_the_runtimes_json_and_type() -> None:
    raw = json.dumps({"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []})
    body, error_type = error_body(raw.encode(), "Unhandled")
    assert error_type == "ValueError"
    assert json.loads(body) == json.loads(raw)


def test_error_body_takes_the_header_when_the_body_has_no_type() -> None:
    body, error_type = error_body(b'{"errorMessage": "boom"}', "Function.Custom")
    assert error_type == "Function.Custom"
    assert json.loads(body) == {"errorMessage": "boom", "errorType": "Function.Custom"}


def test_error_body_wraps_text() -> None:
    body, error_type = error_body(b"it broke", None)
    assert error_type == "Unhandled"
    assert json.loads(body) == {"errorMessage": "it broke", "errorType": "Unhandled"}


def test_invocation_headers_leave_out_what_is_unknown() -> None:
    async def make() -> Invocation:  # its answer is a future of the running loop
        return Invocation(
            "r1", b"{}", 1700000000000, "arn:aws:lambda:us-east-1:0:function:f", "Root=1-abc"
        )

    inv = asyncio.run(make())
    h = inv.headers()
    assert h["Lambda-Runtime-Aws-Request-Id"] == "r1"
    assert h["Lambda-Runtime-Deadline-Ms"] == "1700000000000"
    assert h["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:f")
    assert h["Lambda-Runtime-Trace-Id"] == "Root=1-abc"
    assert "Lambda-Runtime-Client-Context" not in h
    assert "Lambda-Runtime-Cognito-Identity" not in h


def test_launcher_joins_the_cgroup_or_caps_memory_then_execs() -> None:
    argv = launcher(["/code/bootstrap"], ["/cg/a/cgroup.procs"], None)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[2] == 'echo $$ > /cg/a/cgroup.procs; exec "$@"'
    assert argv[3:] == ["klambda-runtime", "/code/bootstrap"]
    capped = launcher(["/code/bootstrap"], [], 1024)
    assert capped[2] == 'ulimit -v 1024; exec "$@"'


def test_bootstrap_without_its_mode_is_made_executable(tmp_path: Path) -> None:
    boot = tmp_path / "bootstrap"
    boot.write_text("#!/bin/bash\necho hi\n")
    boot.chmod(0o644)
    assert bootstrap_command(boot) == [str(boot)]
    assert os.access(boot, os.X_OK)


def test_runtimes_needing_no_interpreter() -> None:
    assert runtimes.uses_runtime_api("provided.al2023")
    assert not runtimes.uses_runtime_api("python3.11")
    assert runtimes.missing("provided") is None
    assert runtimes.missing("python3.1") is not None


def test_launcher_mounts_in_a_namespace_of_its_own() -> None:
    argv = launcher(["/b"], [], None, [("/state/opt/x", "/opt"), ("/state/fs/c", "/mnt/data")])
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    script = argv[6]
    # /mnt is a fresh tmpfs before its mount point is made: nothing appears on the host
    assert script.index("mount -t tmpfs") < script.index("mkdir -p /mnt/data")
    assert "mount --bind /state/opt/x /opt" in script
    assert "mount --bind /state/fs/c /mnt/data" in script
