"""Environments marked for the kernel's same-page merging (KSM): a real zygote forks them
with `PR_SET_MEMORY_MERGE` set when the worker asks, and without it when not (a worker
pod's default); `klambda up` asks unless KLAMBDA_MEMORY_MERGE=0. The kernel says so in
/proc/PID/ksm_stat (`ksm_merge_any`, Linux 6.4+). Whether ksmd then merges anything is the
host's switch (/sys/kernel/mm/ksm/run), which these tests leave alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from klambda.testing import RouterRunner, eventually, eventually_async
from klambda.worker.sandbox import Sandbox
from klambda.worker.zygote import Zygote

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def merge_any(pid: int) -> str:
    """`ksm_merge_any` of /proc/PID/ksm_stat: "yes" or "no"."""
    for line in Path(f"/proc/{pid}/ksm_stat").read_text().splitlines():
        if line.startswith("ksm_merge_any:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no ksm_merge_any in /proc/{pid}/ksm_stat")


def _kernel_says() -> bool:
    try:
        return "ksm_merge_any:" in Path("/proc/self/ksm_stat").read_text()
    except OSError:
        return False


needs_the_mark = pytest.mark.skipif(
    not _kernel_says(), reason="the kernel has no PR_SET_MEMORY_MERGE (Linux < 6.4 or no KSM)"
)


def test_the_mark_is_asked_for_and_its_refusal_is_quiet() -> None:
    """Where the kernel has the mark, asking for it succeeds and the process says so;
    where it has not, the refusal is an answer (False), not an error."""
    out = subprocess.run(
        [sys.executable, "-c",
         "from pathlib import Path\n"
         "from klambda.environment.zygote import mark_mergeable\n"
         "print(mark_mergeable())\n"
         "stat = Path('/proc/self/ksm_stat')\n"
         "print(stat.read_text() if stat.exists() else '')"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    answer, _, stat = out.stdout.partition("\n")
    assert answer == str(_kernel_says()), out.stdout
    if _kernel_says():
        assert "ksm_merge_any: yes" in stat, stat


@needs_the_mark
@pytest.mark.parametrize(("mergeable", "expected"), [(True, "yes"), (False, "no"), (None, "no")])
async def test_the_zygote_and_its_forks_are_marked_when_asked(
    mergeable: bool | None, expected: str
) -> None:
    # not inherited from here: recent kernels keep the mark across exec
    assert merge_any(os.getpid()) == "no"
    no_sandbox = Sandbox(enabled=False)
    zygote = (
        Zygote(sys.executable, sandbox=no_sandbox)  # the default: a worker pod's
        if mergeable is None
        else Zygote(sys.executable, sandbox=no_sandbox, mergeable=mergeable)
    )
    await zygote.start()
    try:
        await eventually_async(lambda: zygote.spares, "the zygote's first spare")
        assert zygote._proc is not None
        assert merge_any(zygote._proc.pid) == expected
        assert merge_any(zygote.spares[0].pid) == expected  # forked, waiting for its spec
    finally:
        await zygote.stop()


MANIFEST = f"""\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: whoami}}
spec:
  runtime: {RUNTIME}
  handler: app.handler
  code:
    inline:
      app.py: |
        import os

        def handler(event, context):
            return {{"pid": os.getpid()}}
"""


@needs_the_mark
@pytest.mark.parametrize(("setting", "expected"), [(None, "yes"), ("0", "no")])
def test_a_local_environment_that_served_a_call_is_marked_unless_turned_off(
    tmp_path: Path, setting: str | None, expected: str
) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "functions.yaml").write_text(MANIFEST)
    env = {} if setting is None else {"KLAMBDA_MEMORY_MERGE": setting}
    with RouterRunner.up(functions, "--quiet", workdir=tmp_path, env=env) as router:
        status, _, body = router.invoke("whoami", {})
        assert status == 200, body
        pid = json.loads(body)["pid"]
        assert merge_any(pid) == expected
        eventually(lambda: router.zygotes(), "the router's zygote")
        assert [merge_any(z) for z in router.zygotes()] == [expected]
