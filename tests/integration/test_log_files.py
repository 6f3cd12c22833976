"""Function logs cannot fill the disk: each function's file is rotated and its files
together stay within the cap, whatever a handler prints, even within one invocation."""

from __future__ import annotations

import json
from pathlib import Path

from klambda.testing import RouterRunner
from klambda.worker.logs import ROTATED, LogHub

CHATTY = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: chatty}
spec:
  runtime: python3.11
  handler: app.handler
  timeoutSeconds: 60
  code:
    inline:
      app.py: |
        def handler(event, context):
            for i in range(event["lines"]):
                print(f"line {i:08d} " + "x" * 100)
            return {"printed": event["lines"]}
"""


def files_of(folder: Path, function: str) -> list[Path]:
    return sorted(folder.glob(f"{function}.log*"))


def test_a_functions_files_are_rotated_within_the_cap(tmp_path: Path) -> None:
    hub = LogHub(tmp_path, max_bytes=40_000)
    for i in range(5000):  # ~150 KB
        hub.write("f", "stream", f"line {i:05d} " + "y" * 20)
    hub.write("g", "stream", "another function's line")
    hub.close()
    files = files_of(tmp_path, "f")
    assert [p.name for p in files] == ["f.log", *(f"f.log.{i}" for i in range(1, ROTATED + 1))]
    assert sum(p.stat().st_size for p in files) <= 40_000
    assert "line 04999" in (tmp_path / "f.log").read_text()  # the newest kept
    assert "line 00000" not in "".join(p.read_text() for p in files)  # the oldest gone
    assert (tmp_path / "g.log").read_text() == "stream\tanother function's line\n"


def test_a_handler_printing_megabytes_stays_within_klambda_log_max_mb(tmp_path: Path) -> None:
    fns = tmp_path / "fns"
    fns.mkdir()
    (fns / "chatty.yaml").write_text(CHATTY)
    with RouterRunner.up(fns, "-q", workdir=tmp_path, env={"KLAMBDA_LOG_MAX_MB": "1"}) as r:
        status, _, body = r.invoke("chatty", {"lines": 30_000})  # ~3.6 MB in one call
        assert (status, json.loads(body)) == (200, {"printed": 30_000})
        logs = tmp_path / "state" / "logs"
        total = sum(p.stat().st_size for p in files_of(logs, "chatty"))
        assert total <= 1024 * 1024 + 4096, total
        assert len(files_of(logs, "chatty")) == ROTATED + 1
