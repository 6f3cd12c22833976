"""Where the router's time goes under load: py-spy on the router process.

Optional: runs only where py-spy is installed (`.venv/bin/pip install py-spy`; it is not a
dependency of klambda). py-spy samples the router without stopping it (--nonblocking,
Python frames only) while ghz (or wrk) drives the no-op function at concurrency 10. The
router is the process that saturates (the CPU columns of part 2 show it); environments
are left out because sampling hundreds of processes at once distorts what it measures.
The table lists the functions on CPU most often, by the time spent in the function
itself (self: time in C code such as gRPC's core or a syscall counts for the Python frame
that called it) and, for klambda's own functions, including their callees (total).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import tools
from bench.lab import Lab

KINDS = ("router", "zygote", "environment")
FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _name(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    file = m.group("file")
    for marker in ("site-packages/", "runtime/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('fn')} ({file})"


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    """Self and total sample shares per function, per process kind, from py-spy's raw output."""
    by_kind: dict[str, dict[str, collections.Counter[str]]] = {}
    totals: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        # --subprocesses prefixes the chain of processes: router; zygote; environment
        depth = 0
        while depth < len(frames) and frames[depth].startswith("process "):
            depth += 1
        kind = KINDS[min(depth, len(KINDS)) - 1] if depth else "router"
        frames = frames[depth:]
        names = [_name(f) for f in frames if f and not f.startswith("thread ")]
        if not names:
            continue
        d = by_kind.setdefault(kind, {})
        d.setdefault("self", collections.Counter())
        d.setdefault("total", collections.Counter())
        d["self"][names[-1]] += count
        for name in set(names):
            d["total"][name] += count
        totals[kind] += count
    out: dict[str, Any] = {"samples": dict(totals)}
    for kind, d in by_kind.items():
        n = totals[kind] or 1
        out[kind] = {
            "self": [(f, c / n) for f, c in d["self"].most_common(top)],
            # total time is told for klambda's own functions: the rest is the runtime's
            "total": [
                (f, c / n)
                for f, c in d["total"].most_common()
                if f.split("(")[-1].startswith("klambda/") and "klambda/cli" not in f
            ][:top],
        }
    return out


def run(lab: Lab) -> dict[str, Any]:
    spy = py_spy()
    if spy is None:
        return {"skipped": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    s = lab.sizes
    out_file = lab.work / "profile.txt"
    seconds = max(1, round(s.profile_seconds))
    recorder = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(lab.router.pid),
            "--nonblocking",
            "--rate",
            "250",
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(out_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.3)  # py-spy attaches
    load_seconds = seconds + 1.0
    if "ghz" in lab.tools:
        driver = f"ghz, noop, concurrency 10, {load_seconds:.0f} s"
        tools.ghz(lab.tools["ghz"], lab.router.grpc_target, "noop", 10, seconds=load_seconds)
    else:
        driver = f"wrk, noop, concurrency 10, {load_seconds:.0f} s"
        url = f"{lab.router.url}/2015-03-31/functions/noop/invocations"
        tools.wrk(url, 10, load_seconds, lab.work)
    _, err = recorder.communicate(timeout=60)
    if not out_file.exists():
        return {"skipped": f"py-spy wrote nothing: {err.decode()[-500:]}"}
    result = summarise(out_file.read_text())
    result["driver"] = driver
    return result
