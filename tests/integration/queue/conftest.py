"""Fixtures for the queue tests: one real nats-server for the package, and a `make_queue`
factory parametrized over both backends (each test gets its own SQLite file, or its own
streams on the shared server through a unique prefix)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from klambda.queue import Queue, open_queue

from tests.integration.queue.natsserver import NatsServer, nats_server

MakeQueue = Callable[..., Awaitable[Queue]]


@pytest.fixture(scope="package")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


def queue_url(backend: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    """A URL for `open_queue` naming a fresh queue of `backend`."""
    if backend == "sqlite":
        return f"sqlite://{tmp / f'queue-{uuid.uuid4().hex[:8]}.db'}"
    server: NatsServer = request.getfixturevalue("nats")
    tag = uuid.uuid4().hex[:10]
    return f"{server.url}?stream_prefix=T{tag.upper()}&subject_prefix=t{tag}"


@pytest.fixture(params=["sqlite", "jetstream"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_queue(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[MakeQueue]:
    """Opens queues of the test's backend; all the queues made share one store (the same
    SQLite file, the same streams), like two processes of one installation."""
    url = queue_url(backend, tmp_path, request)
    opened: list[Queue] = []

    async def make(visibility: float = 10.0) -> Queue:
        q = open_queue(url, visibility_timeout=visibility)
        await q.open()
        opened.append(q)
        return q

    yield make
    for q in reversed(opened):
        await q.close()
