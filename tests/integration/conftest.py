from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import RunningRouter, router

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture(scope="module")
def local_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """`klambda up` of the test functions, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("router")
    with router(FUNCTIONS, tmp) as r:
        yield r
