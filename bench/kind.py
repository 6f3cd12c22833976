"""9. The cluster path on a real kind cluster: router → worker pods, beside local.

The cluster is the one `make cluster` makes (scripts/cluster/up.sh): an existing kind
cluster named by KLAMBDA_BENCH_CLUSTER (default `klambda-bench`) is used as it is;
otherwise one is created under that name on free host ports and deleted at the end. The
chart's pool is python3.11 pods of 128 MB; everything is measured from the host through the
router's gRPC NodePort at the node's address on the docker network with one grpc.aio
client, the same client as for `klambda up`; warm calls also through docker's published
port on 127.0.0.1 (docker-proxy, a userspace relay), which is how `make cluster` prints
the router's address.

- cold through the pool: functions never invoked (no pod of their own), one at a time,
  each while the pool has two ready pods; REPORT's phases (code download, specialise, init,
  handler) per call and `klambda_cold_start_phase_seconds` from the router's /metrics;
- a burst: 50 first calls to 50 functions at once, p95 against the single cold p50;
- warm: calls at concurrency 1 to a specialised pod through the router, and to the same
  function served by `klambda up` on this machine;
- from an empty pool (`pool.size=0`, helm upgrade): the version's own Deployment is scaled
  from zero, a pod scheduled and started, then its environment; the pool is restored after.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klambda.testing import RouterRunner, eventually
from prometheus_client.parser import text_string_to_metric_families

from bench import clients, functions, stats
from bench.lab import Sizes
from bench.pool import PHASES, phases_of
from bench.procs import ROOT

NAMESPACE = "default"  # the chart's functions namespace in kind-values (up.sh)
BURST_POOL_MAX = 12
WARM_TURNS = 10
RELEASE = "klambda"
BIN = Path(os.environ.get("KLAMBDA_CACHE") or Path.home() / ".cache" / "klambda") / "bin"
BURST = 50
HTTP_NODE_PORT, GRPC_NODE_PORT = 30080, 30051  # the kind values' router NodePorts


@dataclass
class Kind:
    name: str
    kubeconfig: Path
    http_port: int
    grpc_port: int
    created: bool
    node_address: str | None = None  # the node container's, where its NodePorts are

    @property
    def grpc_target(self) -> str:
        """The router's gRPC NodePort at the node's own address, else the published port."""
        if self.node_address:
            return f"{self.node_address}:{GRPC_NODE_PORT}"
        return f"127.0.0.1:{self.grpc_port}"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(BIN / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args))

    def pool_size(self, size: int) -> None:
        """helm upgrade with pool.size; the operator (restarted with it) resizes the pool."""
        done = subprocess.run(
            [str(BIN / "helm"), "--kubeconfig", str(self.kubeconfig), "upgrade", RELEASE,
             str(ROOT / "charts/klambda"), "-n", "klambda", "--reuse-values",
             "--set", f"pool.size={size}", "--wait", "--timeout", "5m"],
            capture_output=True, text=True, timeout=400, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"helm upgrade --set pool.size={size}: {done.stderr.strip()}")

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics") as r:
            text = r.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_address(name: str) -> str | None:
    """The node container's address on its docker network, if the host reaches its
    NodePort there (no relay in between); None otherwise."""
    out = subprocess.run(
        [str(BIN / "docker"), "inspect", "-f",
         "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", f"{name}-control-plane"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for address in out:
        try:
            socket.create_connection((address, GRPC_NODE_PORT), timeout=2).close()
        except OSError:
            continue
        return address
    return None


def _host_port(name: str, node_port: int) -> int:
    out = subprocess.run(
        [str(BIN / "docker"), "port", f"{name}-control-plane", f"{node_port}/tcp"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.split()[0].rsplit(":", 1)[1])


@contextmanager
def kind_cluster(work: Path) -> Iterator[Kind]:
    name = os.environ.get("KLAMBDA_BENCH_CLUSTER", "klambda-bench")
    kubeconfig = work / "kind-kubeconfig"
    env = {**os.environ, "KLAMBDA_CLUSTER_NAME": name, "KUBECONFIG": str(kubeconfig)}
    clusters = subprocess.run(
        [str(BIN / "kind"), "get", "clusters"], capture_output=True, text=True, check=False
    ).stdout.split() if (BIN / "kind").exists() else []  # fmt: skip
    created = name not in clusters
    if created:
        http, grpc_port, api = _free_ports(3)
        env |= {
            "KLAMBDA_CLUSTER_HTTP_PORT": str(http),
            "KLAMBDA_CLUSTER_GRPC_PORT": str(grpc_port),
            "KLAMBDA_CLUSTER_API_PORT": str(api),
            "KLAMBDA_CLUSTER_EXAMPLES": "0",
        }
        with (work / "kind-up.log").open("w") as log:
            subprocess.run(
                ["bash", str(ROOT / "scripts/cluster/up.sh")],
                env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
            )  # fmt: skip
    else:
        got = subprocess.run(
            [str(BIN / "kind"), "get", "kubeconfig", "--name", name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        kubeconfig.write_text(got.stdout)
    try:
        yield Kind(
            name,
            kubeconfig,
            _host_port(name, HTTP_NODE_PORT),
            _host_port(name, GRPC_NODE_PORT),
            created,
            _node_address(name),
        )
    finally:
        if created:
            subprocess.run(
                ["bash", str(ROOT / "scripts/cluster/down.sh")], env=env,
                capture_output=True, check=False,
            )  # fmt: skip


def _ready_pool_pods(k: Kind) -> int:
    pods = k.get("pods", "-n", NAMESPACE, "-l", "klambda.io/pool=python3.11")["items"]
    return sum(
        1
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    )


def _apply(k: Kind, names: list[str], folder: Path) -> Path:
    docs = [functions.function(n, functions.NOOP, functions.SMALL_MB) for n in names]
    path = functions.write_manifests(folder, docs)
    k.kubectl("apply", "-n", NAMESPACE, "-f", str(path))

    def active() -> bool:
        items = k.get("functions", "-n", NAMESPACE)["items"]
        states = {f["metadata"]["name"]: (f.get("status") or {}).get("state") for f in items}
        return all(states.get(n) == "Active" for n in names)

    eventually(active, "the functions Active", timeout=300)
    return path


def _delete(k: Kind, names: list[str]) -> None:
    """Delete the functions and wait until their pods are gone (a run's leftovers too)."""
    k.kubectl("delete", "-n", NAMESPACE, "functions", *names, "--ignore-not-found", "--wait=true")
    wanted = set(names)

    def gone() -> bool:
        pods = k.get("pods", "-n", NAMESPACE, "-l", "klambda.io/function")["items"]
        return not any(p["metadata"]["labels"]["klambda.io/function"] in wanted for p in pods)

    eventually(gone, "the functions' pods deleted", timeout=180)


async def _cold_through_pool(k: Kind, c: clients.GrpcInvoker, names: list[str]) -> dict[str, Any]:
    seconds: list[float] = []
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    for i, name in enumerate(names):
        # two ready: the older of them has surely reached the router's watch
        eventually(lambda: _ready_pool_pods(k) >= 2, "two ready pool pods", timeout=180)
        reply = await c.invoke(name, tail=True)
        seconds.append(reply.seconds)
        for p, v in phases_of(reply.log_result).items():
            phases[p].append(v)
        if i < len(names) - 1:  # the last is measured warm; the others' pods free the node
            k.kubectl("delete", "-n", NAMESPACE, "function", name, "--wait=false")
    cold = stats.summary_ms(seconds)
    p50 = {p: stats.percentile(v, 50) * 1000 for p, v in phases.items()}
    return {
        "cold": cold,
        "phases_p50_ms": p50,
        "unaccounted_p50_ms": cold["p50_ms"] - sum(p50.values()),
    }


async def _burst(c: clients.GrpcInvoker, names: list[str]) -> dict[str, Any]:
    async def one(name: str) -> tuple[float, dict[str, float]] | str:
        try:
            reply = await c.invoke(name, tail=True)
        except Exception as err:  # a 503 or a throttle is a result here, counted
            details = getattr(err, "details", None)
            text = details() if callable(details) else str(err)
            return " ".join(str(text).split())[:200]
        try:
            return reply.seconds, phases_of(reply.log_result)
        except RuntimeError:  # not a pool cold start (the version's own pod): no phases
            return reply.seconds, {}

    t0 = time.perf_counter()
    got = await asyncio.gather(*(one(n) for n in names))
    wall = time.perf_counter() - t0
    answered = [g for g in got if not isinstance(g, str)]
    ok = [seconds for seconds, _ in answered]
    failed = [g for g in got if isinstance(g, str)]
    # where the slowest answered call spent its time: the phases its REPORT line names
    # (the pod's work) and the rest (the router's, queueing, the network)
    slowest = max(answered, default=None, key=lambda a: a[0])
    where = None
    if slowest is not None and slowest[1]:
        where = {
            "ms": slowest[0] * 1000,
            "phases_ms": {p: v * 1000 for p, v in slowest[1].items()},
            "rest_ms": (slowest[0] - sum(slowest[1].values())) * 1000,
        }
    return {
        "slowest": where,
        "calls": len(names),
        "answered": (
            {**stats.summary_ms(ok), "p95_ms": stats.percentile(ok, 95) * 1000} if ok else None
        ),
        "failed": len(failed),
        "failures": sorted(set(failed))[:3],
        "wall_s": wall,
    }


async def _from_empty_pool(k: Kind, c: clients.GrpcInvoker, names: list[str]) -> dict[str, Any]:
    seconds = []
    init = []
    for name in names:
        reply = await c.invoke(name, tail=True)
        seconds.append(reply.seconds)
        m = re.search(r"Init Duration: ([0-9.]+) ms", reply.log_result)
        if m is None or "Specialise" in reply.log_result:
            raise RuntimeError(f"{name}: not a start of the version's own pod: {reply.log_result}")
        init.append(float(m.group(1)) / 1000)
    return {"cold": stats.summary_ms(seconds), "init": stats.summary_ms(init)}


def run(work: Path, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cold_names = functions.cold_names("kc", sizes.kind_cold)
    burst_names = functions.cold_names("kb", sizes.kind_burst)
    empty_names = functions.cold_names("kz", sizes.kind_empty)
    with kind_cluster(work) as k:
        out["cluster"] = {
            "name": k.name,
            "created_here": k.created,
            "client_target": "the node's address" if k.node_address else "127.0.0.1 (docker-proxy)",
        }
        _delete(k, [*cold_names, *burst_names, *empty_names])  # a killed run's
        k.pool_size(2)
        grpc_target = k.grpc_target
        folder = _apply(k, cold_names, work / "kind-cold")
        with RouterRunner.up(folder, "-q", workdir=work / "kind-local") as local:

            async def measure() -> None:
                c = clients.GrpcInvoker(grpc_target)
                lo = clients.GrpcInvoker(local.grpc_target)
                relayed = clients.GrpcInvoker(f"127.0.0.1:{k.grpc_port}")
                try:
                    out.update(await _cold_through_pool(k, c, cold_names))
                    out["phases_mean_ms_from_metric"] = {
                        p: k.metric("klambda_cold_start_phase_seconds_sum", phase=p)
                        / max(1.0, k.metric("klambda_cold_start_phase_seconds_count", phase=p))
                        * 1000
                        for p in PHASES
                    }
                    warm_name = cold_names[-1]
                    await c.timed(warm_name, 20)
                    await lo.timed(warm_name, 20)
                    await relayed.timed(warm_name, 20)
                    # in turns, so that the machine's other load falls on all three alike
                    cluster_s: list[float] = []
                    local_s: list[float] = []
                    relayed_s: list[float] = []
                    per_turn = max(1, sizes.kind_warm // WARM_TURNS)
                    for _ in range(WARM_TURNS):
                        cluster_s += await c.timed(warm_name, per_turn)
                        local_s += await lo.timed(warm_name, per_turn)
                        relayed_s += await relayed.timed(warm_name, per_turn)
                    warm = stats.summary_ms(cluster_s)
                    warm_l = stats.summary_ms(local_s)
                    out["warm_cluster"], out["warm_local"] = warm, warm_l
                    out["warm_cluster_docker_proxy"] = stats.summary_ms(relayed_s)
                    out["warm_difference_p50_ms"] = warm["p50_ms"] - warm_l["p50_ms"]
                finally:
                    await c.close()
                    await lo.close()
                    await relayed.close()

            asyncio.run(measure())
        _delete(k, cold_names)

        _apply(k, burst_names, work / "kind-burst")
        # first with the pool of 2 (the others wait for pods of their own, or for the pool
        # to refill), then as many first calls as a pool the node holds has ready pods
        # (Fission's comparison): on one 2-core node the pods' CPU requests (73m each at
        # 128 MB) leave room for BURST_POOL_MAX beside the release
        big = min(len(burst_names), BURST_POOL_MAX)
        for size, names, key in ((2, burst_names, "burst_small_pool"),
                                 (big, burst_names[:big], "burst")):  # fmt: skip
            k.pool_size(size)
            try:
                eventually(lambda n=size: _ready_pool_pods(k) >= n, f"{size} ready pool pods",  # type: ignore[misc]
                           timeout=180)  # fmt: skip
            except AssertionError:  # the node holds fewer beside what else runs on it
                size = max(2, _ready_pool_pods(k))
                names = names[:size]

            async def burst(names: list[str] = names) -> dict[str, Any]:
                c = clients.GrpcInvoker(grpc_target)
                try:
                    return await _burst(c, names)
                finally:
                    await c.close()

            result = asyncio.run(burst())
            result["pool_size"] = size
            answered = result["answered"]
            if answered:
                result["p95_vs_cold_p50"] = stats.ratio(answered["p95_ms"], out["cold"]["p50_ms"])
            out[key] = result
            _delete(k, burst_names)
            if key == "burst_small_pool":
                _apply(k, burst_names[:big], work / "kind-burst")
        k.pool_size(2)

        k.pool_size(0)
        try:
            eventually(lambda: _ready_pool_pods(k) == 0, "an empty pool", timeout=180)
            _apply(k, empty_names, work / "kind-empty")

            async def empty() -> dict[str, Any]:
                c = clients.GrpcInvoker(grpc_target)
                try:
                    return await _from_empty_pool(k, c, empty_names)
                finally:
                    await c.close()

            out["empty_pool"] = asyncio.run(empty())
            _delete(k, empty_names)
        finally:
            k.pool_size(2)
    return out


if __name__ == "__main__":  # python -m bench.kind [--quick]
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="klambda-kind-") as tmp:
        sizes = Sizes.quick() if "--quick" in sys.argv else Sizes()
        print(json.dumps(run(Path(tmp), sizes), indent=1))
