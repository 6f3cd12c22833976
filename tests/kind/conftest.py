"""One real kind cluster per test run, made by the same scripts as `make cluster`.

Why: the kind tier checks what a user of the chart gets: klambda's images built here, the
chart installed with the kind values, worker pods serving through the router's NodePort.
The cluster is created once by ``scripts/cluster/up.sh`` (which builds whatever is not
cached: ``make cluster-images`` builds it all ahead of the tests), under a name and free
host ports of its own so that a developer's ``make cluster`` or another test run can run
beside it, with its own kubeconfig. It is deleted when this folder's tests are done, so it
takes no CPU from the tiers after it, and a cluster left by a run that was killed is deleted
by the next. A cluster that cannot be created fails every test
here loudly; nothing is skipped.

``KLAMBDA_KIND_CLUSTER=klambda`` runs the tests against a cluster that exists already (a
``make cluster`` one, its examples left out with ``KLAMBDA_CLUSTER_EXAMPLES=0``), on the
host ports ``KLAMBDA_CLUSTER_HTTP_PORT`` and ``KLAMBDA_CLUSTER_GRPC_PORT`` (30080, 30051):
it is neither created nor deleted, for quicker iteration on one test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "scripts" / "cluster" / "up.sh"
DOWN = ROOT / "scripts" / "cluster" / "down.sh"
#: clusters of this tier are named klambda-test-<pid of the pytest run that made them>
PREFIX = "klambda-test-"
RELEASE = "klambda"
RELEASE_NAMESPACE = "klambda"
FUNCTIONS_NAMESPACE = "default"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kind: needs the kind cluster that tests/kind/conftest.py creates"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # creating the cluster (and, on a fresh machine, building it) is the first test's setup
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.kind)
            item.add_marker(pytest.mark.timeout(1800))


@dataclass(frozen=True)
class Cluster:
    name: str
    kubeconfig: Path
    bin_dir: Path
    http: str  # the router's REST API through its NodePort, from the host
    grpc: str

    @property
    def node(self) -> str:
        return f"{self.name}-control-plane"

    def run_kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        out = self.run_kubectl(*args, stdin=stdin)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args))

    def upgrade(self, *values: str) -> None:
        """`helm upgrade` of the release with its values and these `--set`s, as a user
        changes an installed chart, waiting for the pods it replaces."""
        sets = [arg for value in values for arg in ("--set", value)]
        out = subprocess.run(
            [str(self.bin_dir / "helm"), "--kubeconfig", str(self.kubeconfig), "upgrade",
             RELEASE, str(ROOT / "charts" / "klambda"), "-n", RELEASE_NAMESPACE,
             "--reset-then-reuse-values", *sets, "--wait", "--timeout", "5m"],
            capture_output=True, text=True, timeout=360, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise AssertionError(f"helm upgrade {' '.join(values)} failed: {out.stderr.strip()}")

    def on_node(self, *argv: str) -> str:
        """Run a command in the kind node's container (crictl, /proc, ...)."""
        out = subprocess.run(
            [str(self.bin_dir / "docker"), "exec", self.node, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout

    def process_uids(self, namespace: str, *labels: str) -> dict[str, list[str]]:
        """Real and effective uid of each running container's process, read on the node."""
        selector = [f"--label=io.kubernetes.pod.namespace={namespace}"]
        selector += [f"--label={label}" for label in labels]
        uids: dict[str, list[str]] = {}
        for cid in self.on_node("crictl", "ps", "-q", *selector).split():
            pid = self.on_node(
                "crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}", cid
            ).strip()
            status = self.on_node("awk", "/^Uid:/ {print $2, $3}", f"/proc/{pid}/status")
            uids[cid] = status.split()
        return uids

    def invoke(
        self,
        function: str,
        payload: dict[str, Any],
        tail: bool = False,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """POST to Lambda's Invoke API on the router's NodePort: status, headers, body."""
        request = urllib.request.Request(
            f"{self.http}/2015-03-31/functions/{function}/invocations",
            data=json.dumps(payload).encode(),
            headers={**({"X-Amz-Log-Type": "Tail"} if tail else {}), **(headers or {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def pods(self, selector: str, namespace: str = "") -> list[dict[str, Any]]:
        """The pods of `selector` that may serve: not being deleted, and not ended (a
        specialised pod given an earlier configuration of its function stops)."""
        items: list[dict[str, Any]] = self.get(
            "pods", "-n", namespace or FUNCTIONS_NAMESPACE, "-l", selector
        )["items"]
        return [
            p
            for p in items
            if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]

    def function_pods(self, function: str, count: int | None = None) -> list[dict[str, Any]]:
        """A function's pods, waiting (30 s) for `count` of them, or for any: a pool pod that
        answered a first call is relabelled into the function just after the answer, not
        with it."""
        selector = f"klambda.io/function={function}"

        seen: list[str] = []

        def found() -> list[dict[str, Any]] | None:
            pods = self.pods(selector)
            seen[:] = [
                f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}" for p in pods
            ]
            return pods if (len(pods) == count if count is not None else pods) else None

        what = f"{count if count is not None else 'any'} pod(s) of {function}"
        try:
            pods: list[dict[str, Any]] = wait_for(what, found, timeout=30)
        except AssertionError as err:
            raise AssertionError(f"{err}; its pods: {seen or 'none'}") from None
        return pods

    def api(self, path: str) -> Any:
        """GET a JSON answer of the router's HTTP API (dead letters, queues, ...)."""
        with urllib.request.urlopen(f"{self.http}{path}", timeout=60) as resp:
            return json.loads(resp.read())


def wait_for(what: str, check: Any, timeout: float = 180.0, interval: float = 1.0) -> Any:
    """Poll check() until it returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def _run(script: Path, env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(
            ["bash", str(script)], env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{script.name} failed ({done.returncode}); its log ends:\n{tail}")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _leftovers(bin_dir: Path) -> list[str]:
    """Clusters of this tier whose pytest run is gone (killed before its teardown)."""
    kind = bin_dir / "kind"
    if not kind.exists():
        return []
    names = subprocess.run(
        [str(kind), "get", "clusters"], capture_output=True, text=True, check=False
    ).stdout.split()
    gone = []
    for name in names:
        pid = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            gone.append(name)
    return gone


def _function_names(cluster: Cluster) -> list[str]:
    items = cluster.get("functions", "-n", FUNCTIONS_NAMESPACE)["items"]
    return [str(f["metadata"]["name"]) for f in items]


def _existing(name: str, work: Path, bin_dir: Path) -> Cluster:
    kubeconfig = work / "kubeconfig"
    out = subprocess.run(
        [str(bin_dir / "kind"), "get", "kubeconfig", "--name", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"KLAMBDA_KIND_CLUSTER={name}: {out.stderr.strip()}")
    kubeconfig.write_text(out.stdout)
    http = os.environ.get("KLAMBDA_CLUSTER_HTTP_PORT", "30080")
    grpc = os.environ.get("KLAMBDA_CLUSTER_GRPC_PORT", "30051")
    return Cluster(name, kubeconfig, bin_dir, f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}")


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Its own name and free host ports: a developer's `make cluster`, or another test run on
    # the same machine, can run beside it.
    work = tmp_path_factory.mktemp("kind")
    cache = Path(os.environ.get("KLAMBDA_CACHE") or Path.home() / ".cache" / "klambda")
    existing = os.environ.get("KLAMBDA_KIND_CLUSTER")
    if existing:
        found = _existing(existing, work, cache / "bin")
        before = set(_function_names(found))
        yield found
        # what the tests made goes, or its pods hold the node's CPU requests that the
        # next run's pods need (the cluster's own functions stay)
        made = [n for n in _function_names(found) if n not in before]
        if made:
            found.kubectl("delete", "functions", "-n", FUNCTIONS_NAMESPACE, "--ignore-not-found",
                          "--wait=false", *made, check=False)  # fmt: skip
        return
    log = work / "cluster.log"
    http_port, grpc_port, api_port = _free_ports(3)
    env = {**os.environ, "KLAMBDA_CLUSTER_EXAMPLES": "0"}
    for name in _leftovers(cache / "bin"):
        _run(DOWN, {**env, "KLAMBDA_CLUSTER_NAME": name}, log)
    env |= {
        "KLAMBDA_CLUSTER_NAME": f"{PREFIX}{os.getpid()}",
        "KLAMBDA_CLUSTER_HTTP_PORT": str(http_port),
        "KLAMBDA_CLUSTER_GRPC_PORT": str(grpc_port),
        "KLAMBDA_CLUSTER_API_PORT": str(api_port),
        "KUBECONFIG": str(work / "kubeconfig"),
    }
    try:
        _run(UP, env, log)
        yield Cluster(
            name=env["KLAMBDA_CLUSTER_NAME"],
            kubeconfig=work / "kubeconfig",
            bin_dir=cache / "bin",
            http=f"http://127.0.0.1:{http_port}",
            grpc=f"127.0.0.1:{grpc_port}",
        )
    finally:
        _run(DOWN, env, log)
