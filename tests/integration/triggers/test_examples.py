"""The README's trigger examples (examples/triggers/) run as written: a route, a streaming
URL, a topic with a filtered subscriber, and schedules that `klambda get triggers` lists."""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.request
from pathlib import Path

from klambda.testing import CLI, RouterRunner, eventually

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "triggers"


def test_the_examples(tmp_path: Path) -> None:
    with RouterRunner.up(EXAMPLES, "-q", workdir=tmp_path) as r:
        conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
        conn.request("GET", "/http/items/42?color=red")
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read()) == {"id": "42", "query": {"color": "red"}}
        conn.request("GET", "/url/ticker/")
        resp = conn.getresponse()
        assert resp.read1() == b"tick 0\n"
        assert resp.read() == b"tick 1\ntick 2\n"
        conn.close()

        out = subprocess.run(
            [*CLI, "publish", "orders", "-m", '{"order": 1}', "-a", "kind=paid",
             "--endpoint", r.url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert json.loads(out)["Delivered"] == 2
        eventually(
            lambda: (
                r.metric("klambda_invocations_total", function="billing")
                + r.metric("klambda_invocations_total", function="audit")
                == 2
            ),
            "both subscribers invoked",
        )
        with urllib.request.urlopen(r.url + "/klambda/v1/triggers?function=nightly") as resp2:
            rows = json.loads(resp2.read())["Triggers"]
        assert {(t["name"], t["state"]) for t in rows} == {
            ("everyMinute", "Active"),
            ("weekdays", "Active"),
        }
        assert all(t["nextFire"] for t in rows)
