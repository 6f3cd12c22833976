"""The console in a real headless Chromium (Debian's package, scripts/setup-system.sh):
its pages load without console errors, its charts render, and a function just invoked
shows its invocations. Screenshots are kept in the test's tmp folder."""

from __future__ import annotations

import json
import shutil
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.testing import RouterRunner, eventually
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

FUNCTIONS = textwrap.dedent(
    """
    apiVersion: klambda.io/v1alpha1
    kind: Function
    metadata: {name: greeter}
    spec:
      runtime: python3.11
      handler: app.handler
      memoryMB: 256
      description: says hello
      code:
        inline:
          app.py: |
            import time
            def handler(event, context):
                time.sleep(event.get("sleep", 0))
                print("greeting", event.get("name"))
                if event.get("fail"):
                    raise ValueError("no greeting today")
                return {"hello": event.get("name")}
    """
)


def _post(url: str, body: dict[str, str]) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    tmp = tmp_path_factory.mktemp("console")
    functions = tmp / "functions"
    functions.mkdir()
    (functions / "greeter.yaml").write_text(FUNCTIONS)
    env = {"KLAMBDA_CONSOLE_SAMPLE_SECONDS": "0.5", "KLAMBDA_ECHO_LOGS": "0"}
    with RouterRunner.up(functions, workdir=tmp, env=env) as r:
        yield r


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str]]]:
    """A Chromium page and the errors it reported (console errors, uncaught exceptions,
    failed requests)."""
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        p = browser.new_page(viewport={"width": 1400, "height": 1000})

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                errors.append(f"console: {msg.text}")

        p.on("console", on_console)
        p.on("pageerror", lambda exc: errors.append(f"page: {exc}"))
        p.on("requestfailed", lambda req: errors.append(f"request: {req.url}"))
        try:
            yield p, errors
        finally:
            browser.close()


def test_a_function_just_invoked_shows_in_the_console(
    router: RouterRunner, page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    p, errors = page
    _post(router.url + "/2015-03-31/functions/greeter/versions", {"Description": "first"})
    _post(
        router.url + "/2015-03-31/functions/greeter/aliases",
        {"Name": "live", "FunctionVersion": "1", "Description": "production"},
    )
    for i in range(6):
        status, _, _ = router.invoke("greeter", {"name": f"n{i}", "sleep": 0.02})
        assert status == 200
    status, headers, _ = router.invoke("greeter", {"name": "x", "fail": True})
    assert headers.get("x-amz-function-error") == "Unhandled"

    def listed() -> str:
        resp = p.goto(router.url + "/console")
        assert resp is not None
        assert resp.status == 200
        return p.inner_text("#functions td.invocations")

    eventually(lambda: listed() == "7", "the console to count 7 invocations of greeter")
    p.screenshot(path=str(tmp_path / "console-functions.png"), full_page=True)

    resp = p.goto(router.url + "/console/functions/greeter")
    assert resp is not None
    assert resp.status == 200
    summary = p.inner_text("#summary")
    assert "Invocations\t7" in summary
    assert "Errors\t1" in summary
    assert "85.7 %" in summary  # 6 of 7 succeeded
    # every chart rendered with a size, and the invocations chart drew its data
    charts = p.locator("svg.chart")
    assert charts.count() == 8
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100
    drawn = p.locator("#chart-invocations polyline, #chart-invocations circle")
    assert drawn.count() >= 1
    assert "MemorySize" in p.inner_text("#configuration")
    assert "256" in p.inner_text("#configuration")
    assert "greeting n5" in p.inner_text("#logs")
    assert "first" in p.inner_text("#versions")
    assert "live\t1\t1: 100 %\tproduction" in p.inner_text("#aliases")
    p.screenshot(path=str(tmp_path / "console-greeter.png"), full_page=True)
    print("screenshots:", tmp_path)
    assert errors == []
    assert (tmp_path / "console-greeter.png").stat().st_size > 10_000


def test_an_unknown_function_is_lambdas_not_found(router: RouterRunner) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(router.url + "/console/functions/nobody", timeout=10)
    assert err.value.code == 404
    assert err.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
