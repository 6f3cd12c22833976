"""A router for the fuzz suites, and the example counts they print."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.testing import RouterRunner

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture(scope="package")
def fuzzed_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    with RouterRunner.up(FUNCTIONS, "-q", workdir=tmp_path_factory.mktemp("fuzz")) as r:
        yield r
        assert r.proc.poll() is None, "the router died under fuzzing:\n" + r.output()[-3000:]
