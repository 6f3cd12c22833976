"""Versions, aliases with weighted traffic, and persistence across a restart of klambda up."""

from __future__ import annotations

import collections
import http.client
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from klambda.testing import RouterRunner

API = "/2015-03-31/functions"


def manifest(reply: str, memory: int = 128) -> str:
    return f"""\
apiVersion: klambda.io/v1alpha1
kind: Function
metadata: {{name: greet}}
spec:
  runtime: python3.11
  handler: app.handler
  memoryMB: {memory}
  code:
    inline:
      app.py: |
        def handler(event, context):
            return {{"reply": "{reply}", "version": context.function_version}}
"""


def call(r: RouterRunner, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(r.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Publish version 1, change the code, restart, publish version 2."""
    tmp = tmp_path_factory.mktemp("versions")
    fns, state = tmp / "fns", tmp / "state"
    fns.mkdir()
    (fns / "greet.yaml").write_text(manifest("one"))
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        assert (
            call(r, "POST", f"{API}/greet/versions", {"Description": "first"})[1]["Version"] == "1"
        )
        # unchanged $LATEST published again: the same version
        assert call(r, "POST", f"{API}/greet/versions", {})[1]["Version"] == "1"
    (fns / "greet.yaml").write_text(manifest("two", memory=256))
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        status, v2 = call(r, "POST", f"{API}/greet/versions", {"Description": "second"})
        assert status == 201
        assert v2["Version"] == "2"
        assert v2["MemorySize"] == 256
    return tmp, fns, state


def test_versions_are_immutable_snapshots(two_versions: tuple[Path, Path, Path]) -> None:
    tmp, fns, state = two_versions
    (fns / "greet.yaml").write_text(manifest("three"))
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        replies = {q: json.loads(r.invoke(f"greet:{q}")[2])["reply"] for q in ("1", "2")}
        assert replies == {"1": "one", "2": "two"}
        assert json.loads(r.invoke("greet")[2]) == {"reply": "three", "version": "$LATEST"}
        _status, versions = call(r, "GET", f"{API}/greet/versions")
        assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]
        assert [v["MemorySize"] for v in versions["Versions"]] == [128, 128, 256]


def test_weighted_alias_routes_within_tolerance_and_survives_restart(
    two_versions: tuple[Path, Path, Path],
) -> None:
    tmp, fns, state = two_versions
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        status, alias = call(
            r,
            "POST",
            f"{API}/greet/aliases",
            {
                "Name": "prod",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
            },
        )
        assert status == 201, alias
        counts: collections.Counter[str] = collections.Counter()
        for _ in range(2000):
            status, headers, body = r.invoke("greet:prod")
            assert status == 200
            assert headers["x-amz-executed-version"] == json.loads(body)["version"]
            counts[headers["x-amz-executed-version"]] += 1
        # binomial sd at n=2000, p=0.1 is 13.4; 5 sd either side
        assert 200 - 67 <= counts["2"] <= 200 + 67, counts
        assert counts["1"] + counts["2"] == 2000
        text = r.metrics()
        assert 'alias="prod"' in text
        assert 'version="2"' in text
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        status, got = call(r, "GET", f"{API}/greet/aliases/prod")
        assert status == 200
        assert got["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
        assert r.invoke("greet:prod")[0] == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"FunctionVersion": "7"}, "spec.version: version 7 of greet does not exist"),
        ({"RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}}, "weight"),
        ({"RoutingConfig": {"AdditionalVersionWeights": {"2": -0.5}}}, "weight"),
        (
            {"RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}}},
            "at most one additional version",
        ),
        (
            {"RoutingConfig": {"AdditionalVersionWeights": {"9": 0.1}}},
            "spec.routing.additionalVersion: version 9 of greet does not exist",
        ),
        # klambda's Triggers, checked as CreateFunction's are
        (
            {"Triggers": {"events": {"Tick": {"type": "Schedule", "schedule": "every day"}}}},
            "Triggers.events (spec.events.Tick.Schedule.schedule)",
        ),
        ({"Triggers": {"functionUrl": {"authType": "KEY"}}}, "Triggers.functionUrl"),
        ({"Triggers": ["Hello"]}, "Triggers: must be an object with events and functionUrl"),
    ],
)
def test_bad_alias_changes_are_refused_and_leave_it_untouched(
    two_versions: tuple[Path, Path, Path], body: dict[str, Any], message: str
) -> None:
    tmp, fns, state = two_versions
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        call(r, "POST", f"{API}/greet/aliases", {"Name": "stable", "FunctionVersion": "1"})
        status, err = call(r, "PUT", f"{API}/greet/aliases/stable", body)
        assert status == 400
        assert message in err["message"]
        _s, alias = call(r, "GET", f"{API}/greet/aliases/stable")
        assert alias["FunctionVersion"] == "1"
        assert "RoutingConfig" not in alias
        assert "Triggers" not in alias


def route(r: RouterRunner, path: str) -> tuple[int, Any]:
    """GET through the router's HTTP API (the routes of HttpApi triggers)."""
    conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_an_alias_carries_triggers_that_invoke_it(two_versions: tuple[Path, Path, Path]) -> None:
    tmp, fns, state = two_versions
    hello = {"type": "HttpApi", "path": "/hello", "method": "GET"}
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        status, alias = call(
            r,
            "POST",
            f"{API}/greet/aliases",
            {"Name": "web", "FunctionVersion": "1", "Triggers": {"events": {"Hello": hello}}},
        )
        assert status == 201, alias
        assert alias["Triggers"]["events"]["Hello"]["path"] == "/hello"
        assert alias["Triggers"]["functionUrl"] is None
        assert route(r, "/http/hello") == (200, {"reply": "one", "version": "1"})
        # an UpdateAlias without Triggers keeps them; the route follows the alias
        status, alias = call(r, "PUT", f"{API}/greet/aliases/web", {"FunctionVersion": "2"})
        assert status == 200, alias
        assert alias["Triggers"]["events"]["Hello"]["path"] == "/hello"
        assert route(r, "/http/hello") == (200, {"reply": "two", "version": "2"})
        _s, function = call(r, "GET", f"{API}/greet")
        assert "Triggers" not in function  # the alias's, not $LATEST's
        rows = call(r, "GET", "/klambda/v1/triggers?function=greet")[1]["Triggers"]
        assert [(t["alias"], t["name"], t["state"]) for t in rows] == [("web", "Hello", "Active")]
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        _s, alias = call(r, "GET", f"{API}/greet/aliases/web")
        assert alias["Triggers"]["events"]["Hello"]["path"] == "/hello"
        assert route(r, "/http/hello")[0] == 200
        # Triggers null clears them
        status, alias = call(r, "PUT", f"{API}/greet/aliases/web", {"Triggers": None})
        assert status == 200, alias
        assert "Triggers" not in alias
        assert route(r, "/http/hello")[0] == 404
        call(r, "DELETE", f"{API}/greet/aliases/web")


def test_version_behind_an_alias_cannot_be_deleted(two_versions: tuple[Path, Path, Path]) -> None:
    tmp, fns, state = two_versions
    with RouterRunner.up(fns, "-q", workdir=tmp, state=state) as r:
        call(r, "POST", f"{API}/greet/aliases", {"Name": "pinned", "FunctionVersion": "2"})
        status, err = call(r, "DELETE", f"{API}/greet?Qualifier=2")
        assert status == 409
        assert "pinned" in err["message"]
        assert "cannot be deleted" in err["message"]
        assert r.invoke("greet:2")[0] == 200
