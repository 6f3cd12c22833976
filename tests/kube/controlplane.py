"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on loopback.

Why: klambda's operator, Helm chart and RBAC must be tested against a real API server, not
a mock, and this project's machines have no Docker (so no kind). The binaries are built from
the Go module proxy by ``scripts/testenv.sh``; this module starts them as plain processes on
127.0.0.1 with a throwaway PKI made by ``openssl``. There is no kubelet and no scheduler: pods
stay Pending, but the garbage collector, namespace, service-account, deployment and replicaset
controllers run, so ownerReferences, namespace deletion and Deployments behave for real.

Only the standard library and ``klambda.testing`` (itself standard library only) are used,
so this file also runs as a debugging CLI::

    .venv/bin/python tests/kube/controlplane.py [--bin-dir DIR] [--dir DIR]

which starts a control plane, prints its kubeconfig path and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from klambda.testing import StopWaiting, eventually, free_port

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
TESTENV_SCRIPT = REPO_ROOT / "scripts" / "testenv.sh"

#: Controllers run by kube-controller-manager. Enough for ownerReferences, namespaces,
#: service accounts and Deployments -> ReplicaSets -> (Pending) Pods.
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "endpointslice-controller",
    "service-cidr-controller",
)

SERVICE_CLUSTER_IP_RANGE = "198.19.240.0/24"  # a config value only: nothing routes to it


class ControlPlaneError(RuntimeError):
    """A component failed to start, or a kubectl call failed."""


def default_bin_dir() -> Path:
    """Where ``scripts/testenv.sh`` puts its binaries (same rule as ``--print-bin-dir``)."""
    override = os.environ.get("KLAMBDA_KUBE_BIN_DIR")
    if override:
        return Path(override)
    cache = os.environ.get("KLAMBDA_CACHE") or str(Path.home() / ".cache" / "klambda")
    return Path(cache) / "bin"


def ensure_binaries(components: Sequence[str] = ()) -> Path:
    """Build missing components with ``scripts/testenv.sh`` (a no-op when cached).

    Returns the bin dir. A missing component is built, never a reason to skip a test.
    """
    bin_dir = default_bin_dir()
    wanted = components or ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
    if all((bin_dir / name).exists() for name in wanted):
        return bin_dir
    subprocess.run(["bash", str(TESTENV_SCRIPT), *wanted], check=True, stdout=subprocess.DEVNULL)
    return bin_dir


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child when the thread that started it exits."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A started component: its Popen, log file and command line."""

    def __init__(self, name: str, argv: list[str], log_path: Path, die_with_parent: bool) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )

    def stop(self, grace: float) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.terminate()
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            self.popen.wait(timeout=10)


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on free loopback ports.

    Attributes (valid after :meth:`start`): ``server`` (``https://127.0.0.1:PORT``),
    ``kubeconfig`` (admin kubeconfig path, certs embedded), ``etcd_url``, ``ca_cert``,
    ``work_dir``, ``bin_dir``, ``logs`` (component name -> log file path).
    """

    def __init__(
        self,
        work_dir: Path | str,
        bin_dir: Path | str | None = None,
        *,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        startup_timeout: float = 90.0,
        extra_apiserver_args: Sequence[str] = (),
        die_with_parent: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.bin_dir = Path(bin_dir) if bin_dir is not None else default_bin_dir()
        self.controllers = tuple(controllers)
        self.startup_timeout = startup_timeout
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.die_with_parent = die_with_parent

        self.pki_dir = self.work_dir / "pki"
        self.log_dir = self.work_dir / "logs"
        self.kubeconfig = self.work_dir / "admin.kubeconfig"
        self.ca_cert = self.pki_dir / "ca.crt"
        self.logs: dict[str, Path] = {}
        self.apiserver_port = 0
        self.etcd_port = 0
        self.controller_manager_port = 0
        self.server = ""
        self.etcd_url = ""
        self._procs: list[_Process] = []
        self._started = False

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Make the PKI, start the three components and wait until they are ready."""
        if self._started:
            return self
        self._started = True
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            if not (self.bin_dir / name).exists():
                raise ControlPlaneError(
                    f"{self.bin_dir / name} is missing: run scripts/testenv.sh to build it"
                )
        for d in (self.work_dir, self.pki_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            self._make_pki()
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig(
                self.kubeconfig,
                user={
                    "client-certificate-data": _b64(self.pki_dir / "admin.crt"),
                    "client-key-data": _b64(self.pki_dir / "admin.key"),
                },
            )
            self._start_controller_manager()
            self._wait_for_default_service_account()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every component (then SIGKILL after ``grace`` s). Safe to call twice."""
        while self._procs:
            self._procs.pop().stop(grace)

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.popen.poll() is None for p in self._procs)

    # ---------------------------------------------------------------- kubectl & API

    @property
    def kubectl_path(self) -> str:
        built = self.bin_dir / "kubectl"
        if built.exists():
            return str(built)
        found = shutil.which("kubectl")
        if found is None:
            raise ControlPlaneError("no kubectl: run scripts/testenv.sh kubectl")
        return found

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | str | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane (admin unless ``kubeconfig`` is given).

        With ``check=True`` a non-zero exit raises :class:`ControlPlaneError` with stderr.
        """
        argv = [self.kubectl_path, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}"
            )
        return proc

    def env(self, kubeconfig: Path | str | None = None) -> dict[str, str]:
        """``os.environ`` plus KUBECONFIG (admin by default) and bin_dir first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig or self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def helm(
        self,
        *args: str,
        kubeconfig: Path | str | None = None,
        check: bool = True,
        timeout: float = 180.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built helm against this control plane, with helm's homes in work_dir."""
        env = self.env(kubeconfig)
        for kind in ("CACHE", "CONFIG", "DATA"):
            env[f"HELM_{kind}_HOME"] = str(self.work_dir / "helm" / kind.lower())
        argv = [str(self.bin_dir / "helm"), *args]
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(
                f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}"
            )
        return proc

    def apply(self, manifest: str | Mapping[str, Any], *, namespace: str | None = None) -> str:
        """``kubectl apply -f -`` a YAML/JSON string or a dict; returns kubectl's stdout."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        ns = [f"--namespace={namespace}"] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=text).stdout

    def get_json(self, *args: str, kubeconfig: Path | str | None = None) -> Any:
        """``kubectl get ARGS -o json``, parsed."""
        out = self.kubectl("get", *args, "-o", "json", kubeconfig=kubeconfig).stdout
        return json.loads(out)

    def api_request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 30.0
    ) -> tuple[int, Any]:
        """An admin HTTPS request to the API server; returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._admin_ssl(), timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def service_account_kubeconfig(
        self,
        name: str,
        namespace: str,
        *,
        path: Path | str | None = None,
        duration: str = "1h",
        create: bool = False,
    ) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount ``namespace/name``.

        The token comes from ``kubectl create token`` (the TokenRequest API), so the
        ServiceAccount's RBAC is exactly what a pod running as it would get. With
        ``create=True`` the namespace and ServiceAccount are created if missing.
        """
        if create:
            for args in (("namespace", namespace), ("serviceaccount", name, "-n", namespace)):
                got = self.kubectl("get", *args, check=False)
                if got.returncode != 0:
                    self.kubectl("create", *args)
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        target = Path(path) if path else self.work_dir / f"sa-{namespace}-{name}.kubeconfig"
        self._write_kubeconfig(target, user={"token": token}, user_name=f"{namespace}-{name}")
        return target

    def log_tail(self, name: str, lines: int = 40) -> str:
        return tail(self.log_dir / f"{name}.log", lines)

    # ---------------------------------------------------------------- internals

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(
            ["openssl", *args], cwd=self.pki_dir, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")

    def _make_pki(self) -> None:
        """CA, API serving cert, admin client cert, service-account signing key pair."""
        if shutil.which("openssl") is None:
            raise ControlPlaneError("openssl is not installed (apt-get install openssl)")
        cnf = self.pki_dir / "openssl.cnf"
        cnf.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
            "[ca]\nbasicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
            "subjectKeyIdentifier = hash\n"
            "[server]\nbasicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default.svc.cluster.local,IP:198.19.240.1\n"
            "[client]\nbasicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = clientAuth\n"
        )
        ec = ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
        self._openssl(*ec, "-out", "ca.key")
        self._openssl(
            "req", "-x509", "-new", "-key", "ca.key", "-config", "openssl.cnf",
            "-extensions", "ca", "-subj", "/CN=klambda-test-ca", "-days", "3650",
            "-out", "ca.crt",
        )  # fmt: skip
        for name, subj, ext in (
            ("apiserver", "/CN=kube-apiserver", "server"),
            ("admin", "/O=system:masters/CN=klambda-admin", "client"),
        ):
            self._openssl(*ec, "-out", f"{name}.key")
            self._openssl(
                "req", "-new", "-key", f"{name}.key", "-config", "openssl.cnf",
                "-subj", subj, "-out", f"{name}.csr",
            )  # fmt: skip
            self._openssl(
                "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", str(secrets.randbits(63)), "-days", "3650",
                "-extfile", "openssl.cnf", "-extensions", ext, "-out", f"{name}.crt",
            )  # fmt: skip
        self._openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"
        )
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")

    def _spawn(self, name: str, argv: list[str]) -> _Process:
        log_path = self.log_dir / f"{name}.log"
        self.logs[name] = log_path
        proc = _Process(name, argv, log_path, self.die_with_parent)
        self._procs.append(proc)
        return proc

    def _wait(self, proc: _Process, url: str, context: ssl.SSLContext | None) -> None:
        """Poll ``url`` until HTTP 200; fail early if the process exits."""

        def ready() -> bool:
            if proc.popen.poll() is not None:
                raise StopWaiting(f"{proc.name} exited with {proc.popen.returncode}")
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as resp:
                    return bool(resp.status == 200)
            except urllib.error.HTTPError as err:
                body = err.read()[:500].decode(errors="replace")
                raise ControlPlaneError(f"HTTP {err.code}: {body}") from None

        try:
            eventually(
                ready, f"{proc.name} ready at {url}", timeout=self.startup_timeout, interval=0.2
            )
        except AssertionError as err:
            raise ControlPlaneError(f"{err}; log {proc.log_path}:\n{tail(proc.log_path)}") from err

    def _admin_ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return ctx

    def _start_etcd(self) -> None:
        self.etcd_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://{LOOPBACK}:{self.etcd_port}"
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        proc = self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=klambda",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=klambda={peer_url}",
                "--unsafe-no-fsync",  # test data: speed over durability
                "--log-level=warn",
            ],
        )
        self._wait(proc, f"{self.etcd_url}/health", None)

    def _start_apiserver(self) -> None:
        self.apiserver_port = free_port()
        self.server = f"https://{LOOPBACK}:{self.apiserver_port}"
        pki = self.pki_dir
        proc = self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC",
                # The "kubernetes" Endpoints object may not hold a loopback address.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                *self.extra_apiserver_args,
            ],
        )
        self._wait(proc, f"{self.server}/readyz", self._admin_ssl())

    def _start_controller_manager(self) -> None:
        self.controller_manager_port = free_port()
        proc = self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(self.controllers)}",
                f"--root-ca-file={self.ca_cert}",
                f"--service-account-private-key-file={self.pki_dir / 'sa.key'}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={self.controller_manager_port}",
                f"--cert-dir={self.work_dir / 'kcm-certs'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--profiling=false",
            ],
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its serving cert is self-signed, loopback only
        self._wait(proc, f"https://{LOOPBACK}:{self.controller_manager_port}/healthz", insecure)

    def _wait_for_default_service_account(self) -> None:
        """The serviceaccount controller is working once default/default exists."""
        if "serviceaccount-controller" not in self.controllers:
            return
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        try:
            eventually(
                lambda: self.api_request("GET", path)[0] == 200,
                "ServiceAccount default/default",
                timeout=self.startup_timeout,
                interval=0.2,
            )
        except AssertionError as err:
            raise ControlPlaneError(
                f"{err}; kube-controller-manager log:\n" + self.log_tail("kube-controller-manager")
            ) from err

    def _write_kubeconfig(
        self, path: Path, *, user: dict[str, str], user_name: str = "admin"
    ) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "klambda-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _b64(self.ca_cert),
                    },
                }
            ],
            "users": [{"name": user_name, "user": user}],
            "contexts": [
                {
                    "name": "klambda-test",
                    "context": {"cluster": "klambda-test", "user": user_name},
                }
            ],
            "current-context": "klambda-test",
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2))  # JSON is valid kubeconfig YAML
        tmp.chmod(0o600)
        tmp.replace(path)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bin-dir", type=Path, default=None, help="default: testenv cache")
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: a temp dir)")
    args = parser.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="klambda-kube-"))
    plane = ControlPlane(work, args.bin_dir or ensure_binaries())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    with plane:
        print(f"server:     {plane.server}")
        print(f"kubeconfig: {plane.kubeconfig}")
        print(f"logs:       {plane.log_dir}")
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while plane.running:
                time.sleep(1)
        if not plane.running:
            print("a component exited; see the logs", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
