"""`klambda` verbs with --kubeconfig act on the API server's objects, with local mode's checks."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from klambda.cli.control import ClusterControl, ControlError

from tests.helpers import KLAMBDA, ROOT
from tests.kube.controlplane import ControlPlane


def test_cli_verbs_against_the_api_server(
    kube_control_plane: ControlPlane, kube_namespace: str
) -> None:
    plane, ns = kube_control_plane, kube_namespace
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
    )  # fmt: skip

    def klambda(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KLAMBDA, *args, "--kubeconfig", str(plane.kubeconfig), "--namespace", ns],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ROOT,
            env={**os.environ},
        )

    fn = {
        "apiVersion": "klambda.io/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {
            "runtime": "python3.11",
            "handler": "app.handler",
            "memoryMB": 256,
            "code": {"inline": {"app.py": "def handler(e, c): return 1"}},
        },
    }
    plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(fn))
    out = klambda("publish-version", "hello")
    assert out.returncode == 1
    assert "no codeSha256 yet" in out.stderr  # the operator (not running here) sets it
    plane.kubectl(
        "patch",
        "function",
        "hello",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"state": "Active", "codeSha256": "c29tZQ=="}}),
    )

    out = klambda("get", "functions")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split()[:6] == [
        "hello",
        "python3.11",
        "app.handler",
        "256",
        "3",
        "Active",
    ]

    assert "version 1" in klambda("publish-version", "hello", "-d", "first").stdout
    assert "version 1" in klambda("publish-version", "hello").stdout  # unchanged: same
    # the same bytes from another place (the CodeSha256 is unchanged) are the same code,
    # as in local mode: no new version
    moved = {"spec": {"code": {"inline": {"handler.py": "def handler(e, c): return 1"}}}}
    plane.kubectl("patch", "function", "hello", "-n", ns, "--type=merge", "-p", json.dumps(moved))
    assert "version 1" in klambda("publish-version", "hello").stdout
    plane.kubectl(
        "patch",
        "function",
        "hello",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"memoryMB": 512}}),
    )
    assert "version 2" in klambda("publish-version", "hello").stdout
    versions = klambda("get", "versions", "hello").stdout.splitlines()
    assert [line.split()[:2] for line in versions[1:]] == [
        ["$LATEST", "512"],
        ["1", "256"],
        ["2", "512"],
    ]

    out = klambda("alias", "set", "hello", "prod", "--version", "1", "--weight", "2=0.1")
    assert out.returncode == 0, out.stderr
    assert "version 1 (90%), version 2 (10%)" in out.stdout
    alias = plane.get_json("alias", "hello.prod", "-n", ns)
    assert alias["spec"]["routing"] == {"additionalVersion": "2", "weight": 0.1}

    for args, message in [
        (["--weight", "2=1.5"], "weight"),
        (["--version", "9"], "spec.version: version 9 of hello does not exist"),
        (["--weight", "2=0.1", "--weight", "1=0.2"], "at most one additional version"),
    ]:
        out = klambda("alias", "set", "hello", "prod", *args)
        assert out.returncode == 1
        assert message in out.stderr
    assert plane.get_json("alias", "hello.prod", "-n", ns)["spec"] == alias["spec"]

    assert klambda("concurrency", "put", "hello", "--reserved", "5").returncode == 0
    assert plane.get_json("function", "hello", "-n", ns)["spec"]["reservedConcurrency"] == 5
    out = klambda("concurrency", "put", "hello", "--reserved", "950")
    assert out.returncode == 1
    assert "at least 100 of the account's 1000 must stay unreserved" in out.stderr
    assert plane.get_json("function", "hello", "-n", ns)["spec"]["reservedConcurrency"] == 5

    assert klambda("provisioned", "put", "hello:prod", "--count", "3").returncode == 0
    assert plane.get_json("alias", "hello.prod", "-n", ns)["spec"]["provisionedConcurrency"] == 3
    out = klambda("provisioned", "put", "hello:prod", "--count", "-1")
    assert out.returncode == 1
    assert ">= 0" in out.stderr
    out = klambda("provisioned", "put", "hello:prod", "--count", "6")  # reserved is 5
    assert out.returncode == 1
    assert "6 provisioned in all for hello is more than its reserved concurrency of 5" in (
        out.stderr
    )
    assert plane.get_json("alias", "hello.prod", "-n", ns)["spec"]["provisionedConcurrency"] == 3

    aliases = klambda("get", "aliases", "hello").stdout.splitlines()
    assert aliases[1].split()[:3] == ["prod", "1", "2=0.1"]

    out = klambda("delete-version", "hello", "2")
    assert out.returncode == 1
    assert "version 2 of hello cannot be deleted: alias prod routes to it" in out.stderr
    assert klambda("alias", "set", "hello", "prod", "--no-routing").returncode == 0
    assert "routing" not in plane.get_json("alias", "hello.prod", "-n", ns)["spec"]

    # klambda's Triggers of CreateAlias and UpdateAlias: the Alias's events and functionUrl
    ctl = ClusterControl(str(plane.kubeconfig), ns, 1000)
    hello = {"type": "HttpApi", "path": "/hello", "method": "GET"}
    got = ctl.put_alias("hello", "prod", None, None, None, {"events": {"Hello": hello}})
    assert got["Triggers"]["events"]["Hello"]["path"] == "/hello"
    spec = plane.get_json("alias", "hello.prod", "-n", ns)["spec"]
    assert spec["events"]["Hello"]["path"] == "/hello"
    assert "functionUrl" not in spec
    ctl.put_alias("hello", "prod", "1", None, "kept")  # no Triggers: they stay
    assert ctl.aliases("hello")[0]["Triggers"]["events"]["Hello"]["method"] == "GET"
    bad = {"events": {"Tick": {"type": "Schedule", "schedule": "every day"}}}
    with pytest.raises(ControlError, match=r"Triggers\.events \(spec\.events\.Tick"):
        ctl.put_alias("hello", "prod", None, None, None, bad)
    ctl.put_alias("hello", "prod", None, None, None, {"functionUrl": {"authType": "NONE"}})
    spec = plane.get_json("alias", "hello.prod", "-n", ns)["spec"]
    assert "events" not in spec  # replaced, not merged
    assert spec["functionUrl"]["authType"] == "NONE"
    assert spec["description"] == "kept"
    ctl.put_alias("hello", "prod", None, None, None, {})
    assert "functionUrl" not in plane.get_json("alias", "hello.prod", "-n", ns)["spec"]
    assert klambda("alias", "delete", "hello", "prod").returncode == 0
    assert klambda("delete-version", "hello", "2").returncode == 0
    versions = klambda("get", "versions", "hello").stdout.splitlines()
    assert [line.split()[0] for line in versions[1:]] == ["$LATEST", "1"]
