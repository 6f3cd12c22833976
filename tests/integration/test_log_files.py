"""Function logs cannot fill the disk: each function's files (the live one and the sealed
ones the log store has not yet taken) stay within the cap, whatever a handler prints, even
within one invocation."""

from __future__ import annotations

import json
from pathlib import Path

from klambda.testing import RouterRunner
from klambda.worker.logs import LogHub

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
    return sorted(folder.glob(f"{function}.*log"))


def test_a_functions_files_stay_within_the_cap(tmp_path: Path) -> None:
    hub = LogHub(tmp_path, max_bytes=40_000)
    for i in range(5000):  # ~400 KB of JSON Lines, no store taking them
        hub.write("f", "stream", f"line {i:05d} " + "y" * 20)
    hub.write("g", "stream", "another function's line")
    hub.close()
    files = files_of(tmp_path, "f")
    assert 2 <= len(files) <= 4
    assert sum(p.stat().st_size for p in files) <= 40_000 + 200
    text = "".join(p.read_text() for p in files)
    assert "line 04999" in text  # the newest kept
    assert "line 00000" not in text  # the oldest gone
    assert "another function's line" in (tmp_path / "g.log").read_text()


def test_a_handler_printing_megabytes_stays_within_klambda_log_max_mb(tmp_path: Path) -> None:
    fns = tmp_path / "fns"
    fns.mkdir()
    (fns / "chatty.yaml").write_text(CHATTY)
    with RouterRunner.up(fns, "-q", workdir=tmp_path, env={"KLAMBDA_LOG_MAX_MB": "1"}) as r:
        status, _, body = r.invoke("chatty", {"lines": 30_000})  # ~4 MB in one call
        assert (status, json.loads(body)) == (200, {"printed": 30_000})
        logs = tmp_path / "state" / "logs"
        total = sum(p.stat().st_size for p in files_of(logs, "chatty"))
        assert total <= 1024 * 1024 + 4096, total
