"""`klambda up` keeps every function's records in its log store: `klambda logs FUNCTION
--since` reads them back, across a restart of the router."""

from __future__ import annotations

import subprocess
from pathlib import Path

from klambda.testing import CLI, RouterRunner, eventually

from ..conftest import FUNCTIONS


def klambda(router: RouterRunner, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--endpoint", router.url], capture_output=True, text=True, timeout=60
    )


def lines_since(router: RouterRunner, function: str, *extra: str) -> list[str]:
    out = klambda(router, "logs", function, "--since", "10m", *extra)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_history_from_the_store_survives_a_restart(tmp_path: Path) -> None:
    with RouterRunner.up(FUNCTIONS, "-q", workdir=tmp_path) as router:
        for i in range(3):
            assert router.invoke("echo", {"n": i})[0] == 200

        def three_reports() -> list[str]:
            got = lines_since(router, "echo")
            assert sum(line.startswith("REPORT RequestId: ") for line in got) == 3
            return got

        history = eventually(three_reports, "three invocations in the log store")
        assert history[0].startswith("INIT_START Runtime Version: ")
        assert sum(line.startswith("START RequestId: ") for line in history) == 3
        assert sum("echoing" in line for line in history) == 3
        last_two = lines_since(router, "echo", "--limit", "2")
        assert last_two == history[-2:]
        assert lines_since(router, "faults") == []
        unknown = klambda(router, "logs", "nope", "--since", "1h")
        assert unknown.returncode != 0
        assert "ResourceNotFoundException" in unknown.stderr
        bad = klambda(router, "logs", "echo", "--since", "yesterday")
        assert bad.returncode != 0
        assert "since: 'yesterday' is not a duration" in bad.stderr
    with RouterRunner.up(FUNCTIONS, "-q", workdir=tmp_path) as again:
        assert lines_since(again, "echo") == history
        assert klambda(again, "logs", "echo").stdout == ""  # nothing recent in this process
