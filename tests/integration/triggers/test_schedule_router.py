"""A schedule on a real router (`klambda up`): `rate(1 minute)` invokes the function once a
minute with the Scheduled Event, and a router restarted inside the minute does not fire
that minute's tick again; `klambda get triggers` shows it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from klambda.testing import CLI, RouterRunner, eventually

TICKER = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: ticker}}
spec:
  runtime: python3.11
  handler: app.handler
  environment: {{SEEN: "{seen}"}}
  events:
    everyMinute: {{type: Schedule, schedule: "rate(1 minute)"}}
  code:
    inline:
      app.py: |
        import json, os
        def handler(event, context):
            with open(os.environ["SEEN"], "a") as f:
                f.write(json.dumps({{"time": event["time"], "id": event["id"],
                                    "rid": context.aws_request_id}}) + "\\n")
            return {{}}
"""


def seen(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def triggers(r: RouterRunner) -> dict[str, Any]:
    with urllib.request.urlopen(r.url + "/klambda/v1/triggers?function=ticker") as resp:
        value: dict[str, Any] = json.loads(resp.read())
        return value


def test_rate_fires_once_a_minute_and_not_again_after_a_restart(tmp_path: Path) -> None:
    fns, log = tmp_path / "fns", tmp_path / "seen.jsonl"
    fns.mkdir()
    (fns / "ticker.yaml").write_text(TICKER.format(seen=log))
    # start early in a minute, so that the restart below happens inside the first tick's
    while time.time() % 60 > 45:
        time.sleep(0.5)
    # the handlers mark what they did in files of the test's: out of a sandboxed
    # handler's reach (its own uid and /tmp), so these routers run them unsandboxed
    with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path) as r:
        state = triggers(r)["Triggers"][0]
        assert state["name"] == "everyMinute"
        assert state["state"] == "Active"
        assert state["detail"] == "rate(1 minute) UTC"
        first = eventually(lambda: seen(log), "the first tick's invocation", timeout=75)
        (tick,) = first
        assert tick["time"].endswith(":00Z")
        assert tick["rid"] == tick["id"]
        assert eventually(
            lambda: triggers(r)["Triggers"][0].get("lastFire") == tick["time"], "lastFire"
        )
        assert r.metric("klambda_trigger_events_total", trigger="everyMinute") == 1
        out = subprocess.run(
            [*CLI, "get", "triggers", "--endpoint", r.url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        row = next(line for line in out.splitlines() if "everyMinute" in line)
        assert row.split()[:3] == ["ticker", "everyMinute", "Schedule"], out
    fired_at = time.time()
    # the handlers mark what they did in files of the test's: out of a sandboxed
    # handler's reach (its own uid and /tmp), so these routers run them unsandboxed
    with RouterRunner.up(fns, "-q", "--no-sandbox", workdir=tmp_path) as r:
        # the same minute: the tick already fired is not fired again
        tick_minute = int(fired_at // 60)
        next_tick = (tick_minute + 1) * 60
        assert triggers(r)["Triggers"][0]["nextFire"] == time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(next_tick)
        )
        assert len(seen(log)) == 1
        both = eventually(lambda: len(seen(log)) == 2 and seen(log), "the next tick", timeout=75)
        assert both[1]["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(next_tick))
        # counted once the tick is recorded as fired, which the handler's run may precede
        eventually(
            lambda: r.metric("klambda_trigger_events_total", trigger="everyMinute") == 1,
            "the tick counted",
        )
        time.sleep(1)
        assert len(seen(log)) == 2
