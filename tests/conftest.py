"""Fixtures shared by every tier: the real Kubernetes control plane lives in tests.kube."""

import pytest

pytest_plugins = ["tests.kube.fixtures"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.fuzzcount import EXAMPLES

    if EXAMPLES:
        terminalreporter.section("fuzz examples")
        for name, n in sorted(EXAMPLES.items()):
            terminalreporter.write_line(f"{name}: {n} examples")
