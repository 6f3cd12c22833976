from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.testing import RouterRunner

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture(scope="module")
def local_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterRunner]:
    """`klambda up` of the test functions, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("router")
    with RouterRunner.up(FUNCTIONS, workdir=tmp) as r:
        yield r
