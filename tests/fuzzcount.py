"""How many examples each property-based (fuzz) suite ran: printed at the end of the run,
so a reader sees how hard each was tried (KLAMBDA_FUZZ_EXAMPLES raises the bound)."""

from __future__ import annotations

import os
from collections import Counter

EXAMPLES: Counter[str] = Counter()
# examples per property; the default keeps `make test` fast
BOUND = int(os.environ.get("KLAMBDA_FUZZ_EXAMPLES", "400"))


class Huge(str):
    """A huge string that shows itself short in a failing example."""

    def __repr__(self) -> str:
        return f"<{len(self)} characters>"
