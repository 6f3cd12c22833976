"""Fixtures shared by every tier: the real Kubernetes control plane lives in tests.kube."""

pytest_plugins = ["tests.kube.fixtures"]
