"""Helpers that run a real Kubernetes control plane for the integration and e2e tests."""
