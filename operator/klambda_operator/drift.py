"""Does a live object still say what the builder says? A pure, field-by-field compare.

The API server adds defaults (protocols, probe thresholds, clusterIPs, ...) and keeps
fields other managers own, so a live object is compared as a superset: every field the
builder sets must hold the built value; fields it does not set are left alone. Empty
values the server omits ("", [], {}) count as equal to absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EMPTY: tuple[Any, ...] = ("", None, [], {})


def differences(desired: Any, live: Any, path: str = "") -> list[str]:
    """The paths where `live` does not hold `desired` (empty when in sync)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [path or "."]
        out: list[str] = []
        for key, want in desired.items():
            here = f"{path}.{key}"
            if key not in live:
                if want not in EMPTY:
                    out.append(here)
                continue
            out.extend(differences(want, live[key], here))
        return out
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return [path]
        return [
            d
            for i, (w, g) in enumerate(zip(desired, live, strict=True))
            for d in differences(w, g, f"{path}[{i}]")
        ]
    if desired in EMPTY and live in EMPTY:
        return []
    return [] if desired == live else [path]
