"""Lambda's concurrency pools through a real router: reserved, throttles, provisioned,
the scale-up rate and keep-warm reclaim."""

from __future__ import annotations

import collections
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner, eventually

from tests.integration.versions.test_versions_aliases import API, call

SLEEPY = """\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {name: sleepy}
spec:
  runtime: python3.11
  handler: app.handler
  memoryMB: 256
  timeoutSeconds: 10
  code:
    inline:
      app.py: |
        import os, time
        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return {"pid": os.getpid()} if event.get("pid") else {"ok": True}
"""


def burst(
    r: RouterRunner, name: str, n: int, sleep: float
) -> list[tuple[int, dict[str, str], bytes]]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: r.invoke(name, {"sleep": sleep}), range(n)))


def exited(pid: int) -> bool:
    """The process is gone (or a zombie its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


@pytest.fixture
def sleepy(tmp_path: Path) -> Path:
    fns = tmp_path / "fns"
    fns.mkdir()
    (fns / "sleepy.yaml").write_text(SLEEPY)
    return fns


def test_reserved_5_gives_5_successes_and_15_throttles(sleepy: Path, tmp_path: Path) -> None:
    with RouterRunner.up(sleepy, "-q", workdir=tmp_path) as r:
        assert (
            call(
                r,
                "PUT",
                "/2017-10-31/functions/sleepy/concurrency",
                {"ReservedConcurrentExecutions": 5},
            )[0]
            == 200
        )
        results = burst(r, "sleepy", 20, 1.0)
        statuses = collections.Counter(s for s, _h, _b in results)
        assert statuses == {200: 5, 429: 15}
        for status, headers, body in results:
            if status == 429:
                assert headers["x-amzn-errortype"] == "TooManyRequestsException"
                assert json.loads(body)["Reason"] == (
                    "ReservedFunctionConcurrentInvocationLimitExceeded"
                )
        assert (
            r.metric(
                "klambda_throttles_total",
                function="sleepy",
                reason="ReservedFunctionConcurrentInvocationLimitExceeded",
            )
            == 15
        )


def test_reserved_0_throttles_every_call(sleepy: Path, tmp_path: Path) -> None:
    with RouterRunner.up(sleepy, "-q", workdir=tmp_path) as r:
        call(
            r,
            "PUT",
            "/2017-10-31/functions/sleepy/concurrency",
            {"ReservedConcurrentExecutions": 0},
        )
        assert {r.invoke("sleepy")[0] for _ in range(5)} == {429}
        # and the setting survives a restart
    with RouterRunner.up(sleepy, "-q", workdir=tmp_path) as r:
        status, _h, body = r.invoke("sleepy")
        assert status == 429
        assert json.loads(body)["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


@pytest.mark.parametrize(
    ("reserved", "message"),
    [
        (901, "at least 100 of the account's 1000 must stay unreserved"),
        (-1, "reservedConcurrency must be >= 0"),
    ],
)
def test_reservations_beyond_the_account_are_refused(
    sleepy: Path, tmp_path: Path, reserved: int, message: str
) -> None:
    with RouterRunner.up(sleepy, "-q", workdir=tmp_path) as r:
        call(
            r,
            "PUT",
            "/2017-10-31/functions/sleepy/concurrency",
            {"ReservedConcurrentExecutions": 7},
        )
        status, err = call(
            r,
            "PUT",
            "/2017-10-31/functions/sleepy/concurrency",
            {"ReservedConcurrentExecutions": reserved},
        )
        assert status == 400
        assert message in err["message"]
        assert call(r, "GET", "/2019-09-30/functions/sleepy/concurrency")[1] == {
            "ReservedConcurrentExecutions": 7
        }


def test_account_limit_throttles_unreserved_functions(sleepy: Path, tmp_path: Path) -> None:
    env = {"KLAMBDA_UNRESERVED_MIN": "2"}
    with RouterRunner.up(
        sleepy, "-q", "--account-concurrency", "3", workdir=tmp_path, env=env
    ) as r:
        statuses = collections.Counter(s for s, _h, _b in burst(r, "sleepy", 6, 1.0))
        assert statuses == {200: 3, 429: 3}
        assert json.loads(r.invoke("sleepy")[2]) == {"ok": True}
        _s, settings = call(r, "GET", "/2016-08-19/account-settings")
        assert settings["AccountLimit"]["ConcurrentExecutions"] == 3


def test_provisioned_environments_serve_first_calls_without_cold_starts(
    sleepy: Path, tmp_path: Path
) -> None:
    with RouterRunner.up(sleepy, "-q", workdir=tmp_path) as r:
        call(r, "POST", f"{API}/sleepy/versions", {})
        call(r, "POST", f"{API}/sleepy/aliases", {"Name": "live", "FunctionVersion": "1"})
        path = "/2019-09-30/functions/sleepy/provisioned-concurrency?Qualifier=live"
        status, cfg = call(r, "PUT", path, {"ProvisionedConcurrentExecutions": 3})
        assert status == 202

        def ready() -> dict[str, Any]:
            cfg: dict[str, Any] = call(r, "GET", path)[1]
            assert cfg["Status"] == "READY", cfg
            return cfg

        cfg = eventually(ready, "3 provisioned environments READY")
        assert cfg["AvailableProvisionedConcurrentExecutions"] == 3
        _s, listed = call(r, "GET", "/2019-09-30/functions/sleepy/provisioned-concurrency?List=ALL")
        (only,) = listed["ProvisionedConcurrencyConfigs"]
        assert only["FunctionArn"].endswith(":function:sleepy:live")
        assert only["RequestedProvisionedConcurrentExecutions"] == 3
        results = []
        with ThreadPoolExecutor(3) as pool:
            results = list(
                pool.map(
                    lambda _: r.invoke("sleepy:live", {"sleep": 0.3}, **{"X-Amz-Log-Type": "Tail"}),
                    range(3),
                )
            )
        assert [s for s, _h, _b in results] == [200, 200, 200]
        assert r.metric("klambda_cold_starts_total", function="sleepy") == 0
        assert r.metric("klambda_provisioned_spillover_invocations_total") == 0
        # a fourth concurrent call spills over to an on-demand environment
        burst4 = []
        with ThreadPoolExecutor(4) as pool:
            burst4 = list(pool.map(lambda _: r.invoke("sleepy:live", {"sleep": 0.5}), range(4)))
        assert [s for s, _h, _b in burst4] == [200] * 4
        assert r.metric("klambda_provisioned_spillover_invocations_total", function="sleepy") == 1
        assert r.metric("klambda_cold_starts_total", function="sleepy") == 1
        # provisioned more than reserved is refused, naming the limit
        call(
            r,
            "PUT",
            "/2017-10-31/functions/sleepy/concurrency",
            {"ReservedConcurrentExecutions": 4},
        )
        status, err = call(r, "PUT", path, {"ProvisionedConcurrentExecutions": 5})
        assert status == 400
        assert "more than its reserved concurrency of 4" in err["message"]
        status, err = call(r, "PUT", path, {"ProvisionedConcurrentExecutions": -1})
        assert status == 400
        assert ">= 0" in err["message"]


def test_scale_up_rate_throttles_instead_of_hanging(sleepy: Path, tmp_path: Path) -> None:
    with RouterRunner.up(
        sleepy, "-q", workdir=tmp_path, env={"KLAMBDA_SCALE_UP_PER_MINUTE": "2"}
    ) as r:
        results = burst(r, "sleepy", 3, 1.0)
        statuses = collections.Counter(s for s, _h, _b in results)
        assert statuses == {200: 2, 429: 1}
        reasons = {json.loads(b).get("Reason") for s, _h, b in results if s == 429}
        assert reasons == {"FunctionInvocationRateLimitExceeded"}
        # the two warm environments keep serving
        assert {r.invoke("sleepy")[0] for _ in range(3)} == {200}


def test_idle_environments_are_reclaimed_after_keep_warm(sleepy: Path, tmp_path: Path) -> None:
    with RouterRunner.up(sleepy, "-q", "--keep-warm", "1", workdir=tmp_path) as r:
        r.invoke("sleepy")
        pid = json.loads(r.invoke("sleepy", {"pid": True})[2])["pid"]
        assert r.metric("klambda_cold_starts_total", function="sleepy") == 1
        # idle for longer than the keep-warm second, the environment is closed
        eventually(lambda: exited(pid), f"environment {pid} reclaimed", timeout=15)
        r.invoke("sleepy")
        assert r.metric("klambda_cold_starts_total", function="sleepy") == 2
