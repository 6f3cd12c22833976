"""Retention: records older than a function's logRetentionInDays are archived as gzipped
JSON Lines, then deleted; newer ones, and functions without retention, are kept."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
from pathlib import Path

from klambda.logs import lines
from klambda.logstore import Ingester, LogStore
from klambda.logstore.retention import Retention, cutoff
from klambda.testing import CLI, RouterRunner, eventually

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def write(folder: Path, function: str, ages_days: list[float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / lines.live_name(function), "a") as f:
        for i, age in enumerate(ages_days):
            t = (NOW - dt.timedelta(days=age)).timestamp()
            f.write(lines.encode(t, "stream-a", f"r{i}", f"{function} record {i}, {age} days old"))


def test_cutoff_counts_days_back() -> None:
    assert cutoff(NOW, 7) == dt.datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def test_expired_records_are_archived_then_deleted(tmp_path: Path) -> None:
    write(tmp_path / "logs", "short", [10, 8, 7.5, 6, 1])
    write(tmp_path / "logs", "forever", [400, 1])
    store = LogStore(tmp_path / "logs.duckdb")
    try:
        Ingester(store, tmp_path / "logs").ingest_once()
        archive = tmp_path / "archive"
        days = {"short": 7, "forever": None}
        retention = Retention(store, archive, days.get, clock=lambda: NOW)
        (done,) = retention.run()
        assert (done.function, done.records) == ("short", 3)
        assert done.path.parent == archive / "short"
        assert done.path.name.endswith(".jsonl.gz")
        with gzip.open(done.path, "rt") as f:
            archived = [json.loads(line) for line in f]
        assert [a["message"] for a in archived] == [
            "short record 0, 10 days old",
            "short record 1, 8 days old",
            "short record 2, 7.5 days old",
        ]
        assert archived[0]["timestamp"] == int((NOW - dt.timedelta(days=10)).timestamp() * 1000)
        assert (archived[0]["logStream"], archived[0]["requestId"]) == ("stream-a", "r0")
        left = store.records([], NOW - dt.timedelta(days=1000), NOW)
        assert [r.message for r in left] == [
            "forever record 0, 400 days old",
            "short record 3, 6 days old",
            "forever record 1, 1 days old",
            "short record 4, 1 days old",
        ]
        assert retention.run() == []  # nothing more to expire
        assert sorted(p.name for p in (archive / "short").iterdir()) == [done.path.name]
    finally:
        store.close()


def test_the_router_archives_on_start(tmp_path: Path) -> None:
    fns = tmp_path / "functions"
    fns.mkdir()
    spec = {
        "runtime": "python3.11",
        "handler": "app.handler",
        "code": {"inline": {"app.py": "def handler(e, c):\n    return 1\n"}},
        "logRetentionInDays": 1,
    }
    doc = {"apiVersion": "klambda.io/v1alpha1", "kind": "Function", "metadata": {"name": "brief"}}
    (fns / "brief.yaml").write_text(json.dumps({**doc, "spec": spec}))
    now = dt.datetime.now(UTC)
    state = tmp_path / "state"
    folder = state / "logs"
    folder.mkdir(parents=True)
    with open(folder / lines.live_name("brief"), "w") as f:  # left by an earlier run
        for age in (3, 2, 0.5):
            t = (now - dt.timedelta(days=age)).timestamp()
            f.write(lines.encode(t, "s", "", f"{age} days old"))
    archive = tmp_path / "archived"
    env = {"KLAMBDA_LOG_ARCHIVE_DIR": str(archive)}
    with RouterRunner.up(fns, "-q", workdir=tmp_path, env=env) as router:
        files = eventually(lambda: list((archive / "brief").glob("*.jsonl.gz")), "an archive")
        with gzip.open(files[0], "rt") as g:
            assert [json.loads(x)["message"] for x in g] == ["3 days old", "2 days old"]
        out = subprocess.run(
            [*CLI, "logs", "brief", "--since", "7d", "--endpoint", router.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.splitlines() == ["0.5 days old"]
