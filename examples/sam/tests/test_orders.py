"""The example's own unit tests: the handlers run as plain functions, as a CI job runs them
before it deploys."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent.parent


def load(folder: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{folder}_app", HERE / folder / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_orders_answers_with_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "STAGE", "test")
    assert load("orders").handler({"id": 3}, None) == {"order": 3, "stage": "test", "version": "1"}


def test_orders_fails_when_told() -> None:
    with pytest.raises(RuntimeError):
        load("orders").handler({"fail": True}, None)


def test_report() -> None:
    assert load("report").handler({"time": "t"}, None) == {"report": "nightly", "time": "t"}
