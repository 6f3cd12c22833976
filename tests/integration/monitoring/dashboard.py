"""The chart's Grafana dashboard and alert rules, read from the files the chart ships."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
FILES = ROOT / "charts" / "klambda" / "files"
DASHBOARD = FILES / "dashboard.json"
RULES = FILES / "prometheus-rules.yaml"

# What Grafana substitutes before a query reaches Prometheus, for a test scraping every 1 s.
GRAFANA_VARIABLES = {
    "namespace": ".*",
    "function": ".*",
    "version": ".*",
    "alias": ".*",
    "__rate_interval": "1m",
    "__interval": "5s",
    "__range": "5m",
}


@dataclass(frozen=True)
class Target:
    panel: str
    ref: str
    expr: str  # as written in the dashboard, with Grafana variables

    @property
    def promql(self) -> str:
        """The expression with Grafana's variables substituted."""

        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            return GRAFANA_VARIABLES[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, self.expr)


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in load_dashboard()["panels"] if p["type"] != "row"]


def targets() -> list[Target]:
    return [Target(p["title"], t["refId"], t["expr"]) for p in panels() for t in p["targets"]]


def load_rules() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return data


def alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in load_rules()["groups"] for r in g["rules"] if "alert" in r}
