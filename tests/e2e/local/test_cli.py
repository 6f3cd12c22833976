"""What a user does first: `klambda up` a folder, then `klambda invoke`, `get`, `logs`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.testing import RouterRunner, free_port

from tests.helpers import KLAMBDA, ROOT, copy_functions

EXAMPLES = ROOT / "examples" / "functions"


def klambda(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KLAMBDA, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KLAMBDA_ENDPOINT": url},
        cwd=ROOT,
    )


def test_examples_up_invoke_get_logs(tmp_path: Path) -> None:
    fns = copy_functions(EXAMPLES, tmp_path / "functions")
    with RouterRunner.up(fns, workdir=tmp_path) as r:
        out = klambda(r.url, "invoke", "hello", "--payload", '{"name": "Ada"}')
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"message": "Hello, Ada!"}

        out = klambda(r.url, "invoke", "hello", "--log-tail")
        assert out.returncode == 0
        assert "START RequestId:" in out.stderr
        assert "greeting world" in out.stderr
        assert "REPORT RequestId:" in out.stderr
        assert "Billed Duration:" in out.stderr

        (tmp_path / "event.json").write_text('{"text": "a b a", "top": 1}')
        out = klambda(r.url, "invoke", "wordcount", "--payload", f"@{tmp_path / 'event.json'}")
        assert json.loads(out.stdout)["top"] == [["a", 2]]

        out = klambda(r.url, "invoke", "faulty", "--payload", '{"fail": "raise"}')
        assert out.returncode == 1
        assert json.loads(out.stdout)["errorType"] == "ValueError"
        assert "FunctionError: Unhandled" in out.stderr

        out = klambda(r.url, "get", "functions")
        lines = out.stdout.splitlines()
        assert lines[0].split() == [
            "NAME",
            "RUNTIME",
            "HANDLER",
            "MEMORY",
            "TIMEOUT",
            "STATE",
            "CODE",
        ]
        assert any(
            line.split()[:5] == ["hello", "python3.11", "app.handler", "128", "3"] for line in lines
        )

        out = klambda(r.url, "logs", "hello")
        assert "greeting Ada" in out.stdout
        assert out.stdout.count("REPORT RequestId:") == 2
        # the router echoes the same lines to its console
        assert "[hello] START RequestId:" in r.output()

        out = klambda(r.url, "invoke", "nope")
        assert out.returncode == 1
        assert "ResourceNotFoundException" in out.stderr


BAD = [
    ("memoryMB: 100", "spec.memoryMB: Input should be greater than or equal to 128"),
    ("timeoutSeconds: 0", "spec.timeoutSeconds: Input should be greater than or equal to 1"),
    ("timeoutSeconds: 901", "spec.timeoutSeconds: Input should be less than or equal to 900"),
    ("runtime: ruby3.2", "spec.runtime: Input should be 'python3.9'"),
    ("handler: app", "spec.handler: String should match pattern"),
    ("environment: {AWS_REGION: x}", "AWS_REGION is a reserved environment variable"),
    ("code: {configMap: cm}", "spec.code.configMap: code from a configMap needs cluster mode"),
    ("code: {path: ./missing}", "spec.code.path"),
    ("reservedConcurrency: 950", "at least 100 of the account's 1000 must stay unreserved"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_manifest_is_refused_and_nothing_starts(
    tmp_path: Path, line: str, message: str
) -> None:
    fns = tmp_path / "fns"
    fns.mkdir()
    good = {
        "runtime": "runtime: python3.11",
        "handler": "handler: app.handler",
        "code": "code: {inline: {app.py: 'def handler(e, c): return 1'}}",
    }
    key = line.split(":")[0]
    fields = [v for k, v in good.items() if k != key] + [line]
    body = "\n".join("  " + f for f in fields)
    (fns / "ok.yaml").write_text(
        "apiVersion: klambda.io/v1alpha1\nkind: Function\nmetadata: {name: fine}\nspec:\n"
        "  runtime: python3.11\n  handler: app.handler\n"
        "  code: {inline: {app.py: 'def handler(e, c): return 1'}}\n"
    )
    (fns / "bad.yaml").write_text(
        f"apiVersion: klambda.io/v1alpha1\nkind: Function\nmetadata: {{name: hello}}\n"
        f"spec:\n{body}\n"
    )
    port = free_port()
    out = subprocess.run(
        [*KLAMBDA, "up", str(fns), "--http-port", str(port), "--grpc-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "nothing started" in out.stderr
    assert str(fns / "bad.yaml") in out.stderr
    assert message in out.stderr
    assert "fine" not in out.stderr  # the good manifest is not blamed


def test_missing_folder_and_bad_yaml(tmp_path: Path) -> None:
    out = subprocess.run(
        [*KLAMBDA, "up", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "no such file or folder" in out.stderr
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
    out = subprocess.run(
        [*KLAMBDA, "up", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "not valid YAML" in out.stderr


def test_logs_follow_streams_new_lines(tmp_path: Path) -> None:
    fns = copy_functions(EXAMPLES, tmp_path / "functions")
    with RouterRunner.up(fns, "-q", workdir=tmp_path) as r:
        out = klambda(r.url, "invoke", "hello", "--payload", '{"name": "Earlier"}')
        assert out.returncode == 0
        follower = subprocess.Popen(
            [*KLAMBDA, "logs", "hello", "--follow"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "KLAMBDA_ENDPOINT": r.url},
            cwd=ROOT,
        )
        try:
            assert follower.stdout is not None
            # The router subscribes a follower before it sends the lines it already has:
            # once the earlier REPORT line is here, every later line will be too.
            earlier = until_report(follower.stdout)
            assert any("greeting Earlier" in line for line in earlier)
            out = klambda(r.url, "invoke", "hello", "--payload", '{"name": "Live"}')
            assert out.returncode == 0
            live = until_report(follower.stdout)
            assert any("greeting Live" in line for line in live)
        finally:
            follower.kill()
            follower.wait()


def until_report(lines: Iterator[str]) -> list[str]:
    """The lines up to and including the next REPORT line."""
    seen = []
    for line in lines:
        seen.append(line)
        if line.startswith("REPORT RequestId:"):
            return seen
    raise AssertionError(f"the stream ended without a REPORT line: {seen}")
