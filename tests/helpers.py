"""Paths and commands the tests share. Routers are started with `klambda.testing`."""

from __future__ import annotations

import shutil
from pathlib import Path

from klambda.testing import CLI

ROOT = Path(__file__).resolve().parent.parent
KLAMBDA = [*CLI]


def copy_functions(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".klambda"))
    return dst
