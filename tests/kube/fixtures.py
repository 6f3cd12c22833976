"""pytest fixtures for a real Kubernetes control plane (see controlplane.py for why).

Use from a conftest.py::

    pytest_plugins = ["tests.kube.fixtures"]

then ask for ``kube_control_plane`` (one control plane per test session; missing binaries
are built by scripts/testenv.sh first, never skipped) or ``kube_namespace`` (a fresh
namespace per test, deleted afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .controlplane import ControlPlane, ensure_binaries


@pytest.fixture(scope="session")
def kube_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager on loopback, admin kubeconfig."""
    bin_dir = ensure_binaries()
    plane = ControlPlane(tmp_path_factory.mktemp("kube"), bin_dir)
    with plane:
        yield plane


@pytest.fixture
def kube_namespace(kube_control_plane: ControlPlane) -> Iterator[str]:
    """A new namespace for one test; deleted (without waiting) when the test ends."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube_control_plane.kubectl("create", "namespace", name)
    yield name
    kube_control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
