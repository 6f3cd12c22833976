"""7. Cold starts in the cluster path through the warm pool, beside local cold starts.

On this machine, before the kind figures: the tests' control plane (etcd, kube-apiserver,
kube-controller-manager, tests/kube), the operator (`kopf run`, a pool of `POOL_SIZE`
python3.11 pods), the pool's pods run as `klambda worker --pool` processes on a test host
in a network namespace (tests/integration/cluster/hostpods.py, the only emulated part of a
node: Pod status and EndpointSlices), and a cluster router (`klambda router`). The same
manifests are served by a local router (`klambda up`).

Each measured request goes to a function never invoked (`pool-000`, `pool-001`, ...), once
through the cluster router (a pool pod: code from the spec, Specialise, fork + init in the
pod, the handler; the claim of the Pod runs beside it) and once through the local router
(fork + init, the handler), back to back, with the same gRPC client. Before each cluster
call the pool has ready pods (the ReplicaSet refills it, then the test host starts the
worker; two are waited for, so that the router has surely seen one). The REPORT line of
each cluster call gives its phases. Then warm calls on the last function through both.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from klambda.testing import RouterRunner, eventually

from bench import clients, functions, stats
from bench.lab import Sizes
from bench.procs import ROOT, stop
from tests.integration.cluster.hostpods import HostPods
from tests.kube.controlplane import ControlPlane, ensure_binaries
from tests.netns import network_host

POOL_SIZE = 3
NAMESPACE = "bench"
PHASES = {
    "code_download": re.compile(r"Code Download: ([0-9.]+) ms"),
    "specialise": re.compile(r"Specialise: ([0-9.]+) ms"),
    "environment_start": re.compile(r"Environment Start: ([0-9.]+) ms"),
    "init": re.compile(r"Init Duration: ([0-9.]+) ms"),
    "handler": re.compile(r"\tDuration: ([0-9.]+) ms"),
}


def phases_of(log_result: str) -> dict[str, float]:
    report = next(line for line in log_result.splitlines() if line.startswith("REPORT"))
    out = {}
    for name, pattern in PHASES.items():
        m = pattern.search(report)
        if m is None:
            raise RuntimeError(f"no {name} in the REPORT line, so not a pool cold start: {report}")
        out[name] = float(m.group(1)) / 1000
    return out


def ready_pool_pods(plane: ControlPlane, pods: HostPods) -> int:
    listed = plane.get_json("pods", "-n", NAMESPACE, "-l", "klambda.io/pool=python3.11")
    names = {p["metadata"]["name"] for p in listed["items"]}
    return sum(1 for p in pods.pods.values() if p.ready and p.name in names)


def run(work: Path, sizes: Sizes) -> dict[str, Any]:
    ensure_binaries()
    names = functions.cold_names("pool", sizes.pool_cold)
    docs = [functions.function(n, functions.NOOP, 128) for n in names]
    folder = functions.write_manifests(work / "pool-functions", docs)
    with ControlPlane(work / "kube") as plane:
        plane.kubectl("apply", "-f", str(ROOT / "crds"))
        plane.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            "crd/functions.klambda.io", "crd/versions.klambda.io", "crd/aliases.klambda.io",
        )  # fmt: skip
        plane.kubectl("create", "namespace", NAMESPACE)
        env = {
            **os.environ,
            "KUBECONFIG": str(plane.kubeconfig),
            "KLAMBDA_OPERATOR_POOL_SIZE": str(POOL_SIZE),
            "KLAMBDA_OPERATOR_RESYNC_SECONDS": "2",
        }
        argv = [sys.executable, "-m", "kopf", "run", "--standalone", f"--namespace={NAMESPACE}"]
        with (work / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [*argv, "-m", "klambda_operator.handlers"], env=env, stdout=log, stderr=log
            )
        try:
            plane.kubectl("apply", "-n", NAMESPACE, "-f", str(folder))
            with (
                network_host() as host,
                HostPods(plane.kubeconfig, NAMESPACE, host, work / "pods") as pods,
                RouterRunner(
                    "router", "--namespace", NAMESPACE, "--kubeconfig", str(plane.kubeconfig),
                    "--host", "127.0.0.1", "--wait-for-worker", "60", "--no-auth",
                    workdir=work / "cluster",
                ) as cluster,
                RouterRunner.up(folder, "-q", workdir=work / "local") as local,
            ):  # fmt: skip
                return asyncio.run(_measure(plane, pods, cluster, local, names, sizes))
        finally:
            stop(operator)


def _active(plane: ControlPlane, names: list[str]) -> bool:
    listed = plane.get_json("functions", "-n", NAMESPACE)["items"]
    states = {f["metadata"]["name"]: (f.get("status") or {}).get("state") for f in listed}
    return all(states.get(n) == "Active" for n in names)


async def _measure(
    plane: ControlPlane,
    pods: HostPods,
    cluster: RouterRunner,
    local: RouterRunner,
    names: list[str],
    sizes: Sizes,
) -> dict[str, Any]:
    eventually(lambda: _active(plane, names), "the functions Active", timeout=120)
    c = clients.GrpcInvoker(cluster.grpc_target)
    lo = clients.GrpcInvoker(local.grpc_target)
    cold_cluster, cold_local, refills = [], [], []
    phases: dict[str, list[float]] = {k: [] for k in PHASES}
    try:
        for name in names:
            t0 = time.monotonic()
            # two ready: the older of them has surely reached the router's watch
            eventually(lambda: ready_pool_pods(plane, pods) >= 2, "ready pool pods", timeout=120)
            refills.append(time.monotonic() - t0)
            reply = await c.invoke(name, tail=True)
            cold_cluster.append(reply.seconds)
            for k, v in phases_of(reply.log_result).items():
                phases[k].append(v)
            reply = await lo.invoke(name, tail=True)
            if "Init Duration" not in reply.log_result:
                raise RuntimeError(f"{name}: the local call was not a cold start")
            cold_local.append(reply.seconds)
        warm_name = names[-1]
        await c.timed(warm_name, 20)
        await lo.timed(warm_name, 20)
        warm_cluster = await c.timed(warm_name, sizes.pool_warm)
        warm_local = await lo.timed(warm_name, sizes.pool_warm)
    finally:
        await c.close()
        await lo.close()
    metric = {
        phase: cluster.metric("klambda_cold_start_phase_seconds_sum", phase=phase)
        / max(1.0, cluster.metric("klambda_cold_start_phase_seconds_count", phase=phase))
        * 1000
        for phase in PHASES
    }
    cold = stats.summary_ms(cold_cluster)
    cold_l = stats.summary_ms(cold_local)
    phase_p50 = {k: stats.percentile(v, 50) * 1000 for k, v in phases.items()}
    warm = stats.summary_ms(warm_cluster)
    warm_l = stats.summary_ms(warm_local)
    return {
        "pool_size": POOL_SIZE,
        "cold_cluster": cold,
        "cold_local": cold_l,
        "ratio_cold_cluster_vs_local": stats.ratio(cold["p50_ms"], cold_l["p50_ms"]),
        "phases_p50_ms": phase_p50,
        "phases_mean_ms_from_metric": metric,
        "unaccounted_p50_ms": cold["p50_ms"] - sum(phase_p50.values()),
        "warm_cluster": warm,
        "warm_local": warm_l,
        "warm_difference_p50_ms": warm["p50_ms"] - warm_l["p50_ms"],
        "pool_wait_before_call": stats.summary_ms(refills),
    }


if __name__ == "__main__":  # a quick look: python -m bench.pool
    import tempfile

    with tempfile.TemporaryDirectory(prefix="klambda-pool-") as tmp:
        print(json.dumps(run(Path(tmp), Sizes.quick()), indent=1))
