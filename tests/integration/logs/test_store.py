"""The log store on a real DuckDB file: what it discovers at ingest agrees with the rule in
klambda.logs.discover, each record is stored once whatever happens to the files, sealed
files are finished and removed, the offsets survive a restart, and DuckDB keeps to the
memory and threads it is given."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from klambda import logformat
from klambda.logs import lines
from klambda.logs.discover import discover
from klambda.logstore import Ingester, LogStore
from klambda.logstore.store import MEMORY_MB, THREADS
from klambda.router.server import Router
from klambda.settings import RouterSettings
from klambda.worker.logs import LogHub

from tests.unit.logs.test_discover import CASES, RID

from ..conftest import FUNCTIONS

UTC = dt.UTC
FIELDS = (
    "type, request_id, level, duration, billed_duration, memory_size, max_memory_used, "
    "init_duration"
)


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    s = LogStore(tmp_path / "logs.duckdb")
    yield s  # type: ignore[misc]
    s.close()


def everything(store: LogStore) -> list[tuple[object, ...]]:
    _, rows = store.execute(f"SELECT message, {FIELDS} FROM events ORDER BY ts, message")
    return rows


def test_sql_discovers_what_the_rule_discovers(store: LogStore, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    hub = LogHub(folder)
    messages = [m for m, _ in CASES] + [
        logformat.report(RID, 0.5, 10240, 10240, 1.0, "error", "Runtime.ExitError"),
        "REPORT RequestId: x\tDuration: 1.5 ms\tnot the rest",
        "REPORTED nothing",
        '{"type": "platform.report", "record": "not an object"}',
        '{"type": "platform.report", "record": {"metrics": {"durationMs": "12"}}}',
        '{"level": ["INFO"], "requestId": 7}',
        'multi\nline\ttabbed \\ back\\slashed "quoted" \u00e9\u4e2d',
    ]
    for i, m in enumerate(messages):
        hub.write("fn", "stream", m)
        hub.write("fn", "stream", f"padding {i}")
    hub.close()
    Ingester(store, folder).ingest_once()
    stored = {row[0]: row[1:] for row in everything(store)}
    assert set(stored) >= set(messages)
    for m in messages:
        d = discover(m)
        expected = (
            d.type,
            d.request_id,
            d.level,
            d.duration,
            d.billed_duration,
            d.memory_size,
            d.max_memory_used,
            d.init_duration,
        )
        assert stored[m] == expected, m


def test_records_are_stored_once_and_partial_lines_wait(store: LogStore, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    hub = LogHub(folder)
    for i in range(5):
        hub.write("fn", "s1", f"line {i}", "r1")
    hub.flush()
    ing = Ingester(store, folder)
    assert ing.ingest_once() == 5
    assert ing.ingest_once() == 0
    live = folder / lines.live_name("fn")
    with open(live, "a") as f:  # a record caught half written
        f.write(lines.encode(1.0, "s1", "r1", "half")[:20])
    assert ing.ingest_once() == 0
    with open(live, "a") as f:
        f.write(lines.encode(1.0, "s1", "r1", "half")[20:])
    assert ing.ingest_once() == 1
    assert store.count() == 6
    rec = store.records(["fn"], dt.datetime(1969, 12, 31, tzinfo=UTC), dt.datetime.now(UTC))
    assert rec[0].message == "half"  # t=1.0: the oldest
    assert {r.request_id for r in rec} == {"r1"}
    assert {r.stream for r in rec} == {"s1"}
    hub.close()


def test_sealed_files_are_finished_then_removed(store: LogStore, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    hub = LogHub(folder, rotate_bytes=2000)
    ing = Ingester(store, folder)
    written = 0
    for round_ in range(4):
        for i in range(30):
            hub.write("fn", "s", f"round {round_} record {i} " + "x" * 40)
            written += 1
        hub.flush()  # seals the file when it is past 2000 bytes
        if round_ == 1:
            ing.ingest_once()
    hub.write("other", "s", "another function")
    hub.flush()
    sealed = [n for n in os.listdir(folder) if (lines.parse_name(n) or ("", None))[1]]
    assert sealed, "nothing was sealed"
    ing.ingest_once()
    assert store.count() == written + 1
    assert sorted(os.listdir(folder)) == [".ingest.jsonl", "other.log"]  # no sealed file left
    _, rows = store.execute("SELECT count(*), count(DISTINCT message) FROM events")
    assert rows == [(written + 1, written + 1)]
    hub.close()


def test_offsets_survive_a_restart_and_a_reused_inode_is_a_new_file(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    hub = LogHub(folder)
    for i in range(3):
        hub.write("fn", "s", f"before {i}")
    hub.flush()
    store = LogStore(tmp_path / "logs.duckdb")
    Ingester(store, folder).ingest_once()
    store.close()
    hub.write("fn", "s", "after")
    hub.close()
    store = LogStore(tmp_path / "logs.duckdb")
    try:
        assert Ingester(store, folder).ingest_once() == 1
        # the file is replaced by one whose first line differs (as when an inode is reused)
        live = folder / lines.live_name("fn")
        live.write_text(lines.encode(2.0, "s", "", "a new file") * 4)
        assert Ingester(store, folder).ingest_once() == 4
        assert store.count() == 8
    finally:
        store.close()


def _duckdb_limits(store: LogStore) -> tuple[str, int]:
    _, rows = store.execute("SELECT current_setting('memory_limit'), current_setting('threads')")
    return rows[0][0], rows[0][1]


@pytest.mark.parametrize(
    ("kwargs", "memory", "threads"),
    [
        ({}, f"{MEMORY_MB}.0 MiB", THREADS),
        ({"memory_mb": 64, "threads": 1}, "64.0 MiB", 1),
        ({"memory_mb": 1024, "threads": 4}, "1.0 GiB", 4),
    ],
)
def test_duckdb_is_given_the_stores_memory_limit_and_threads(
    tmp_path: Path, kwargs: dict[str, int], memory: str, threads: int
) -> None:
    store = LogStore(tmp_path / "logs.duckdb", **kwargs)
    try:
        assert _duckdb_limits(store) == (memory, threads)
    finally:
        store.close()


@pytest.mark.parametrize("kwargs", [{"memory_mb": 0}, {"threads": 0}])
def test_a_store_with_no_memory_or_no_thread_is_refused(
    tmp_path: Path, kwargs: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LogStore(tmp_path / "logs.duckdb", **kwargs)


def test_the_router_opens_its_store_with_the_settings_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAMBDA_LOG_STORE_MEMORY_MB", "48")
    monkeypatch.setenv("KLAMBDA_LOG_STORE_THREADS", "1")
    settings = RouterSettings.from_env(state_dir=tmp_path / "state", echo_logs=False)
    router = Router(settings, FUNCTIONS)
    router.load()  # builds the store; starts nothing
    assert router.logstore is not None
    try:
        assert _duckdb_limits(router.logstore) == ("48.0 MiB", 1)
    finally:
        router.logstore.close()
