"""A queue backend from the one URL setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from klambda.queue import JetStreamQueue, SqliteQueue, open_queue


def test_open_queue_from_urls(tmp_path: Path) -> None:
    q = open_queue(f"sqlite://{tmp_path}/q.db?synchronous=normal&visibility_timeout=7")
    assert isinstance(q, SqliteQueue)
    assert (q.path, q.synchronous, q.visibility_timeout) == (tmp_path / "q.db", "NORMAL", 7.0)
    n = open_queue("nats://a:4222,b:4222?stream_prefix=X&replicas=3", visibility_timeout=9)
    assert isinstance(n, JetStreamQueue)
    assert n.servers == ["nats://a:4222", "nats://b:4222"]
    assert (n.events_stream, n.dlq_stream, n.replicas, n.visibility_timeout) == (
        "X_EVENTS",
        "X_DLQ",
        3,
        9,
    )
    with pytest.raises(ValueError, match="scheme"):
        open_queue("redis://x")
