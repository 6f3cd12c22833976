"""A real Prometheus (Debian's `prometheus`) on a free loopback port, for the tests.

It scrapes the given targets every second and evaluates the given rule files every second,
with its data in a temporary folder; `query` and `alerts` read its HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from klambda.testing import answers_http, eventually, free_port, still_running

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector (or a scalar as a one-sample vector)."""
        data = self.api("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def finite_values(self, expr: str) -> list[float]:
        values = [float(s["value"][1]) for s in self.query(expr)]
        return [v for v in values if math.isfinite(v)]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("/api/v1/alerts")["alerts"]
        return alerts

    def targets_up(self) -> bool:
        active = self.api("/api/v1/targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def caught_up(self, since: float) -> bool:
        """Every target scraped since `since` (a `time.time()`), and every rule group
        evaluated after that scrape had ended: queries and alerts now see what happened
        before `since`."""
        active = self.api("/api/v1/targets")["activeTargets"]
        if not active or min(_epoch(t["lastScrape"]) for t in active) <= since:
            return False
        scraped = max(_epoch(t["lastScrape"]) + t["lastScrapeDuration"] for t in active)
        groups = self.api("/api/v1/rules")["groups"]
        return all(_epoch(g["lastEvaluation"]) > scraped for g in groups)


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


@contextlib.contextmanager
def prometheus(
    tmp: Path, targets: Sequence[str], rule_files: Sequence[Path] = ()
) -> Iterator[Prometheus]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": "klambda", "metrics_path": "/metrics", "static_configs": [
                {"targets": list(targets)}
            ]}
        ],
    }  # fmt: skip
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp / "prometheus.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: still_running(proc, log) and answers_http(url + "/-/ready"),
            f"prometheus ready at {url}",
            interval=0.1,
        )
        yield Prometheus(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
