"""Which files the log store ingests: a function's live and sealed files, also those the
other router processes of `klambda up --processes N` write in folders of their own."""

from __future__ import annotations

from pathlib import Path

from klambda.logstore.ingest import log_files


def test_files_of_every_router_process_in_order(tmp_path: Path) -> None:
    for name in ("a.log", "a.1700000000000.log", "b.log", ".ingest.jsonl", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "router-1").mkdir()
    (tmp_path / "router-1" / "a.log").write_text("")
    (tmp_path / "router-1" / "a.1600000000000.log").write_text("")
    (tmp_path / "archive").mkdir()  # retention's folder, not a process's
    (tmp_path / "archive" / "a.log").write_text("")
    found = [
        (f.function, f.sealed, f.path.relative_to(tmp_path).as_posix()) for f in log_files(tmp_path)
    ]
    assert found == [
        ("a", 1600000000000, "router-1/a.1600000000000.log"),
        ("a", 1700000000000, "a.1700000000000.log"),
        ("a", None, "a.log"),
        ("a", None, "router-1/a.log"),
        ("b", None, "b.log"),
    ]
