"""`klambda deploy` of a SAM template against a real router: a plan, then the functions,
reserved and provisioned concurrency, versions and aliases, the triggers (on the alias of
an AutoPublishAlias function, as SAM attaches them); a second deploy changes nothing; a
bad version trips the alarm during the canary and the alias returns to the old version by
itself; a good one goes all the way, its HTTP route following the alias's weights."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner, eventually

from tests.helpers import KLAMBDA, ROOT

EXAMPLE = ROOT / "examples/sam"
FAST = ["--minute-seconds", "0.6", "--check-every", "0.1"]  # the 5-minute canary: 3 s


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "shop")
    (tmp_path / "functions").mkdir()
    return tmp_path / "shop"


def klambda(router: RouterRunner, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KLAMBDA, *args, "--endpoint", router.url],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT, env={**os.environ},
    )  # fmt: skip


def deploy(router: RouterRunner, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return klambda(router, "deploy", str(project / "template.yaml"), *FAST, *args)


PROVISIONED = "/2019-09-30/functions/orders/provisioned-concurrency?Qualifier=live"


def get(router: RouterRunner, path: str) -> Any:
    with urllib.request.urlopen(router.url + path, timeout=10) as resp:
        return json.loads(resp.read())


def alias(router: RouterRunner, function: str, name: str) -> dict[str, Any]:
    return get(router, f"/2015-03-31/functions/{function}/aliases/{name}")  # type: ignore[no-any-return]


def place_order(router: RouterRunner, path: str = "/orders") -> tuple[int, Any]:
    """POST through the router's HTTP API: the template's PlaceOrder route."""
    conn = http.client.HTTPConnection("127.0.0.1", router.http_port, timeout=30)
    try:
        conn.request("POST", "/http" + path, body=b'{"id": 7}')
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class Traffic:
    """Requests to orders:live in a thread while a deployment runs, as production has."""

    def __init__(self, router: RouterRunner) -> None:
        self.router = router
        self.stop = threading.Event()
        self.versions: list[str] = []
        self.routed: list[str] = []  # through the route: the code's VERSION, or the status
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            _, headers, _ = self.router.invoke("orders:live", {"id": 1})
            self.versions.append(headers.get("x-amz-executed-version", "?"))
            status, body = place_order(self.router)
            self.routed.append(body["version"] if status == 200 else str(status))
            self.stop.wait(0.02)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def test_deploy_plan_idempotence_rollback_and_success(project: Path, tmp_path: Path) -> None:
    with RouterRunner.up(tmp_path / "functions", "-q", workdir=tmp_path) as router:
        out = deploy(router, project)
        assert out.returncode == 0, out.stdout + out.stderr
        lines = out.stdout.splitlines()
        assert "+ create    orders" in lines
        # the template's events are the functions' triggers; orders' are its alias's
        # (AutoPublishAlias), as SAM attaches them, so they invoke the alias
        assert "      triggers of alias live: ['PlaceOrder']" in lines
        triggers = klambda(router, "get", "triggers").stdout.splitlines()
        assert sorted(x.split()[:3] for x in triggers[1:]) == [
            ["orders:live", "PlaceOrder", "HttpApi"], ["report", "Nightly", "Schedule"],
        ]  # fmt: skip
        assert any("cron(0 3 * * ? *)" in x for x in triggers)
        assert alias(router, "orders", "live")["Triggers"]["events"]["PlaceOrder"]["path"] == (
            "/orders"
        )
        assert "Triggers" not in get(router, "/2015-03-31/functions/orders")
        status, headers, body = router.invoke("orders:live", {"id": 7})
        assert status == 200
        assert json.loads(body) == {"order": 7, "stage": "dev", "version": "1"}
        assert headers["x-amz-executed-version"] == "1"
        assert place_order(router) == (200, {"order": None, "stage": "dev", "version": "1"})
        listed = [x.split()[0] for x in klambda(router, "get", "functions").stdout.splitlines()]
        assert listed[1:] == ["orders", "orders-pre-traffic", "report"]
        assert json.loads(router.invoke("report")[2])["report"] == "nightly"
        eventually(lambda: get(router, PROVISIONED)["Status"] == "READY", "orders:live provisioned")
        assert get(router, PROVISIONED)["RequestedProvisionedConcurrentExecutions"] == 1
        assert get(router, "/2019-09-30/functions/orders/concurrency") == {
            "ReservedConcurrentExecutions": 10
        }
        assert (
            get(router, "/2019-09-25/functions/orders/event-invoke-config")["MaximumRetryAttempts"]
            == 1
        )

        again = deploy(router, project)
        assert again.returncode == 0, again.stderr
        assert "no changes" in again.stdout
        assert "= unchanged orders" in again.stdout

        # a bad version: its errors trip the alarm in the canary's first step
        with Traffic(router) as traffic:
            bad = deploy(router, project, "--parameter", "Broken=yes")
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "step 1/2: 10% to the new version" in bad.stdout
        assert "rolled back: alarm OrdersErrors (errors >= 1) fired" in bad.stdout
        # the canary did reach the new version, as the router counts its calls
        assert router.metric("klambda_invocations_total", function="orders", version="2") >= 1
        live = alias(router, "orders", "live")
        assert live["FunctionVersion"] == "1"
        assert "RoutingConfig" not in live  # all traffic back on version 1
        assert "rolled back" in live["Description"]
        aliases = klambda(router, "get", "aliases", "orders").stdout
        assert "rolled back: alarm OrdersErrors" in aliases
        # the route kept invoking the alias: version 1 works where $LATEST fails
        assert live["Triggers"]["events"]["PlaceOrder"]["path"] == "/orders"
        assert place_order(router) == (200, {"order": None, "stage": "dev", "version": "1"})
        assert router.invoke("orders", {"id": 1})[1].get("x-amz-function-error") == "Unhandled"

    # the rollback survives a restart; the next deploy of the fixed template succeeds
    with RouterRunner.up(tmp_path / "functions", "-q", workdir=tmp_path) as router:
        assert alias(router, "orders", "live")["FunctionVersion"] == "1"
        (project / "orders/app.py").write_text(
            (project / "orders/app.py").read_text().replace('VERSION = "1"', 'VERSION = "3"')
        )
        with Traffic(router) as traffic:
            good = deploy(router, project)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "step 2/2: 100% to the new version" in good.stdout
        live = alias(router, "orders", "live")
        assert live["FunctionVersion"] == "3"
        assert "succeeded" in live["Description"]
        assert {"1", "3"} <= set(traffic.versions)
        # the route followed the alias's weights, from the old code to the new
        assert {"1", "3"} <= set(traffic.routed), traffic.routed
        assert set(traffic.routed) <= {"1", "3"}
        eventually(
            lambda: json.loads(router.invoke("orders:live", {"id": 2})[2])["version"] == "3",
            "orders:live to run the new code",
        )
        assert place_order(router) == (200, {"order": None, "stage": "dev", "version": "3"})

        # a changed event: put on the alias, which keeps its version
        template = project / "template.yaml"
        template.write_text(template.read_text().replace("Path: /orders", "Path: /orders/{id}"))
        moved = deploy(router, project)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "~ change    orders" in moved.stdout
        assert "triggers of alias live: ['PlaceOrder'] -> ['PlaceOrder']" in moved.stdout
        assert "a new version" not in moved.stdout
        assert alias(router, "orders", "live")["FunctionVersion"] == "3"
        assert place_order(router, "/orders/7") == (
            200, {"order": None, "stage": "dev", "version": "3"}
        )  # fmt: skip
        assert place_order(router)[0] == 404
        assert "no changes" in deploy(router, project).stdout
