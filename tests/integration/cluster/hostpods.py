"""The warm pool's pods of a real API server, run as processes on this test host.

The tests' control plane (tests/kube) has no kubelet, scheduler or CNI: Pods stay Pending
and bound to no Node. `HostPods` plays the two parts of a node that the pool's tests need,
for the pool Pods of one namespace and nothing else:

- the kubelet's: for every Pod labelled `klambda.io/component: pool` (made by the pool's
  real ReplicaSet), run its container's command (`klambda worker --pool RUNTIME`, with the
  container's environment) as a process on the test host (a network namespace,
  tests/netns.py), and report it through the Pod's status (podIP, phase Running, the
  Ready condition) once it serves; stop the process when the Pod is deleted. A Pod keeps
  its process when a router relabels it (a specialised pod is the same pod);
- the EndpointSlice controller's, for those Pods: each klambda Service (a pool's, a
  version's) gets hand-made EndpointSlices with the Service's labels listing the ready
  Pods its selector matches (address, port, targetRef), from the Pods' real labels. The
  real controller runs too, but skips Pods bound to no Node.

Only Pod status and these EndpointSlices are written here: the Deployments, ReplicaSets,
Pods and their labels are the operator's, the router's and the real controllers' work.
All pods listen on the one test host's address, each on its own ports (gRPC and the invoke
lane), so each ready pod has its own EndpointSlice (ports are per slice).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klambda.contract import (
    COMPONENT_POOL,
    LABEL_COMPONENT,
    WORKER_LANE_PORT,
    WORKER_LANE_PORT_NAME,
    WORKER_PORT,
    WORKER_PORT_NAME,
)
from lightkube import ApiError, Client, KubeConfig
from lightkube.resources.core_v1 import Pod, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import PatchType

from tests.helpers import KLAMBDA, ROOT
from tests.netns import NetHost

log = logging.getLogger(__name__)
MANAGER = "tests.klambda.io"
MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass
class HostPod:
    name: str
    uid: str
    port: int
    lane_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    ready: bool = False

    @property
    def serving(self) -> bool:
        return self.proc.poll() is None and b"klambda worker:" in self.log_path.read_bytes()


def command_of(pod: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The worker container's command line and environment, as the Pod says."""
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "").replace("$$", "$") for e in container.get("env") or []}
    return list(container["command"]), env


class HostPods:
    def __init__(self, kubeconfig: Path, namespace: str, host: NetHost, workdir: Path) -> None:
        self.client = Client(config=KubeConfig.from_file(kubeconfig), namespace=namespace)
        self.namespace = namespace
        self.host = host
        self.workdir = workdir
        self.pods: dict[str, HostPod] = {}  # by uid
        self.gone: list[HostPod] = []
        self._ports = itertools.count(9100)
        self._slices: dict[str, dict[str, Any]] = {}  # name -> what was applied
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="host-pods", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> HostPods:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for pod in list(self.pods.values()):
            self._stop_pod(pod)
        self.client.close()

    def address_of(self, pod_name: str) -> str:
        pod = next(p for p in self.pods.values() if p.name == pod_name)
        return f"{self.host.address}:{pod.port}"

    def log_of(self, pod_name: str) -> str:
        pod = next(p for p in [*self.pods.values(), *self.gone] if p.name == pod_name)
        return pod.log_path.read_text(errors="replace")

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as err:  # the next tick tries again; the test sees the rest
                self.errors.append(repr(err))
                log.exception("host pods")
            self._stop.wait(0.2)

    def _tick(self) -> None:
        raw = [p.to_dict() for p in self.client.list(Pod, labels={MANAGED_BY: None})]
        listed = {p["metadata"]["uid"]: p for p in raw}
        for uid, pod in listed.items():
            labels = pod["metadata"].get("labels") or {}
            deleting = pod["metadata"].get("deletionTimestamp")
            pool = labels.get(LABEL_COMPONENT) == COMPONENT_POOL
            if uid not in self.pods and pool and not deleting:
                self._start(pod)
            mine = self.pods.get(uid)
            if mine is not None and not mine.ready and mine.serving:
                self._report_ready(mine)
        for uid in set(self.pods) - set(listed):
            self._stop_pod(self.pods[uid])
        self._mirror_endpoints(raw)

    def _start(self, pod: dict[str, Any]) -> None:
        name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        argv, env = command_of(pod)
        if argv[:2] != ["klambda", "worker"]:
            raise AssertionError(f"pod {name} does not run the worker: {argv}")
        port, lane_port = next(self._ports), next(self._ports)
        code = self.workdir / name / "task"  # the pod's emptyDir at /var/task
        code.parent.mkdir(parents=True)
        argv = [*KLAMBDA, *argv[1:], "--host", self.host.address, "--port", str(port)]
        argv += ["--lane-port", str(lane_port)]
        argv += ["--code-dir", str(code)]
        log_path = self.workdir / name / "worker.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                self.host.wrap(argv),
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.pods[uid] = HostPod(name, uid, port, lane_port, proc, log_path)

    def _report_ready(self, pod: HostPod) -> None:
        status = {
            "status": {
                "phase": "Running",
                "podIP": self.host.address,
                "podIPs": [{"ip": self.host.address}],
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "ContainersReady", "status": "True"},
                ],
            }
        }
        try:
            self.client.patch(Pod.Status, pod.name, status, patch_type=PatchType.MERGE)
        except ApiError as err:
            if err.status.code != 404:
                raise
        pod.ready = True

    def _stop_pod(self, pod: HostPod) -> None:
        self.pods.pop(pod.uid, None)
        self.gone.append(pod)
        if pod.proc.poll() is None:
            pod.proc.send_signal(signal.SIGTERM)
            try:
                pod.proc.wait(20)
            except subprocess.TimeoutExpired:
                pod.proc.kill()
                pod.proc.wait(5)

    # ------------------------------------------------------------- EndpointSlices

    def _mirror_endpoints(self, pods: list[dict[str, Any]]) -> None:
        services = [s.to_dict() for s in self.client.list(Service, labels={MANAGED_BY: None})]
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        desired: dict[str, dict[str, Any]] = {}
        for svc in services:
            name = svc["metadata"]["name"]
            selector = (svc.get("spec") or {}).get("selector") or {}
            members = [
                (mine, by_uid[uid])
                for uid, mine in self.pods.items()
                if mine.ready and uid in by_uid and _matches(selector, by_uid[uid])
            ]
            for mine, pod in members:
                desired[f"{name}-{mine.uid[:8]}"] = _slice(svc, mine, pod, self.host.address)
            if not members:
                desired[f"{name}-none"] = _slice(svc, None, None, self.host.address)
        for slice_name, body in desired.items():
            if self._slices.get(slice_name) != body:
                self.client.patch(
                    EndpointSlice,
                    slice_name,
                    {**body, "metadata": {**body["metadata"], "name": slice_name}},
                    patch_type=PatchType.APPLY,
                    field_manager=MANAGER,
                    force=True,
                )
                self._slices[slice_name] = body
        for slice_name in set(self._slices) - set(desired):
            with contextlib.suppress(ApiError):
                self.client.delete(EndpointSlice, slice_name)
            del self._slices[slice_name]


def _matches(selector: dict[str, str], pod: dict[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _slice(
    svc: dict[str, Any], mine: HostPod | None, pod: dict[str, Any] | None, address: str
) -> dict[str, Any]:
    labels = dict(svc["metadata"].get("labels") or {})
    labels["kubernetes.io/service-name"] = svc["metadata"]["name"]
    labels["endpointslice.kubernetes.io/managed-by"] = MANAGER
    endpoints = []
    port, lane_port = WORKER_PORT, WORKER_LANE_PORT
    if mine is not None and pod is not None:
        port, lane_port = mine.port, mine.lane_port
        endpoints = [
            {
                "addresses": [address],
                "conditions": {"ready": True},
                "targetRef": {
                    "kind": "Pod",
                    "name": mine.name,
                    "namespace": pod["metadata"]["namespace"],
                    "uid": mine.uid,
                },
            }
        ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"labels": labels},
        "addressType": "IPv4",
        "ports": [
            {"name": WORKER_PORT_NAME, "port": port, "protocol": "TCP"},
            {"name": WORKER_LANE_PORT_NAME, "port": lane_port, "protocol": "TCP"},
        ],
        "endpoints": endpoints,
    }
