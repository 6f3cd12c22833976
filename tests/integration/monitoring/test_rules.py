"""The alert rules and the dashboard's queries, checked by promtool without live data.

`promtool check rules` parses every expression (the dashboard's too, as recording rules with
Grafana's variables substituted); `promtool test rules` runs alerts_test.yaml, which must
make every alert of the rules file fire.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.monitoring import dashboard

HERE = Path(__file__).parent
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_rules_file() -> None:
    out = promtool("check", "rules", str(dashboard.RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(dashboard.alerts())} rules found" in out.stdout


def test_promtool_unit_tests_pass() -> None:
    out = promtool("test", "rules", str(HERE / "alerts_test.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_fires_in_a_unit_test_and_is_quiet_in_another() -> None:
    spec = yaml.safe_load((HERE / "alerts_test.yaml").read_text())
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in spec["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert set(dashboard.alerts()) == fired
    assert set(dashboard.alerts()) == quiet


def test_alerts_have_severity_summary_and_description() -> None:
    for name, rule in dashboard.alerts().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        assert name.startswith("Klambda"), name


def test_promtool_checks_every_dashboard_query(tmp_path: Path) -> None:
    targets = dashboard.targets()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{i}", "expr": t.promql}
                    for i, t in enumerate(targets)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(targets)} rules found" in out.stdout


def test_dashboard_is_provisionable_by_grafanas_sidecar() -> None:
    dash = dashboard.load_dashboard()
    assert dash["uid"] == "klambda-functions"  # stable: links and bookmarks survive upgrades
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("function", "version", "alias"):
        assert variables[name]["includeAll"], name
        assert variables[name]["multi"], name
        assert variables[name]["allValue"] == ".*", name  # matches the empty alias too
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard.panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= set(dashboard.GRAFANA_VARIABLES), (panel["title"], used)


@pytest.mark.parametrize(
    ("title", "metric"),
    [
        ("Invocations", "klambda_invocations_total"),
        ("Error count and success rate (%)", "klambda_errors_total"),
        ("Duration p50 / p90 / p99", "klambda_duration_seconds_bucket"),
        ("Concurrent executions", "klambda_concurrent_executions"),
        (
            "Account and unreserved concurrent executions",
            "klambda_unreserved_concurrent_executions",
        ),
        ("Throttles", "klambda_throttles_total"),
        ("Cold starts", "klambda_cold_starts_total"),
        ("Init duration p50 / p90 / p99", "klambda_init_duration_seconds_bucket"),
        ("Provisioned concurrency utilisation", "klambda_provisioned_concurrency_utilization"),
        ("Async event age p50 / p90 / p99", "klambda_async_event_age_seconds_bucket"),
        ("Dead-letter queue depth and errors", "klambda_dlq_depth"),
        ("Iterator age", "klambda_iterator_age_seconds"),
        ("Estimated cost (time range)", "klambda_estimated_cost_dollars_total"),
        ("Billed GB-seconds (time range)", "klambda_billed_gb_seconds_total"),
    ],
)
def test_dashboard_has_the_lambda_console_panels(title: str, metric: str) -> None:
    exprs = [t.expr for t in dashboard.targets() if t.panel == title]
    assert any(metric in e for e in exprs), (title, exprs)
