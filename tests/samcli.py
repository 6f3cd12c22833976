"""The AWS SAM CLI's sample events (`sam local generate-event`), the reference the trigger
tests compare klambda's events with, field by field. `make setup` installs the SAM CLI in
its own venv (scripts/setup-sam.sh); a test that needs it fails, naming that, without it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

SAM = Path(os.environ.get("CACHE", Path.home() / ".cache/klambda")) / "sam/bin/sam"


def generate_event(service: str, event: str, *args: str) -> dict[str, Any]:
    """What `sam local generate-event SERVICE EVENT ARGS...` prints, parsed."""
    if not SAM.exists():
        raise AssertionError(f"{SAM} is missing: run `make setup` (scripts/setup-sam.sh)")
    out = subprocess.run(
        [str(SAM), "local", "generate-event", service, event, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        timeout=120,
    )
    value: dict[str, Any] = json.loads(out.stdout)
    return value


def shape(value: Any) -> Any:
    """The value's structure: the same keys, each leaf replaced by its JSON type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__
