"""Kernel same-page merging (KSM) for one measurement: ksmd on, a wait, then as it was.

klambda marks its environments mergeable (`PR_SET_MEMORY_MERGE` in the zygote), but the
kernel's ksmd merges pages only while /sys/kernel/mm/ksm/run is 1, a host-wide switch that
is the operator's (0 on most distributions). The burst part (bench/burst.py) reads its
idle environments' memory as the host has it, then, when it runs as root and ksmd is off,
turns ksmd on at a scan rate of its own (`RATE`), waits until merging has settled, turns
it off and puts the rate back, and reads the memory again: the merged pages stay merged
until their processes write to them or exit.

ksmd merges a page once it has seen it unchanged across a full scan and met an identical
one, so merging takes two or three full scans (`full_scans`). What is merged is counted in
the measured processes themselves (`ksm_merging_pages` of /proc/PID/ksm_stat): the
host-wide counters keep the pages of processes that exited while ksmd was off until its
next scans. The wait ends at the end of a full scan, the second after ksmd started or
later, that added less than 1 % to the merged pages, or at the timeout. It reports when
they first reached 95 % of their final count and ksmd's CPU over the wait (/proc/PID/stat).

If the bench is killed during the wait (SIGKILL), ksmd stays on: `echo 0 >
/sys/kernel/mm/ksm/run`. The arithmetic (`settled`, `time_to`) is pure.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds

KSM = Path("/sys/kernel/mm/ksm")
# up to 5,000 pages a wake-up, 50 wake-ups a second at most: ~150,000 pages/s here, ~2 s a
# full scan of 100 idle environments (~2,300 pages each), ~15-20 s of 1,000
RATE = {"pages_to_scan": 5000, "sleep_millisecs": 20}
MIN_SCANS = 2  # full scans after ksmd started before merging may count as settled
GROWTH = 0.01  # a full scan adding less than this share of the merged pages: settled


@dataclass(frozen=True)
class Sample:
    seconds: float  # since ksmd was turned on
    full_scans: int  # /sys/kernel/mm/ksm/full_scans
    merged: int  # the measured processes' pages that are merged ones (ksm_merging_pages)


def _scan_ends(samples: Sequence[Sample]) -> dict[int, int]:
    """The merged pages when each full scan count was first seen."""
    ends: dict[int, int] = {}
    for s in samples:
        ends.setdefault(s.full_scans, s.merged)
    return ends


def settled(samples: Sequence[Sample], min_scans: int = MIN_SCANS, growth: float = GROWTH) -> bool:
    """Whether merging has stopped growing: the latest full scan, at least the
    `min_scans`th since the first sample, added less than `growth` of the pages merged
    by its end (nothing merged, twice over, is settled too)."""
    if not samples:
        return False
    first, last = samples[0].full_scans, samples[-1].full_scans
    if last - first < min_scans:
        return False
    ends = _scan_ends(samples)
    earlier = [k for k in ends if k < last]
    if not earlier:
        return False
    now, before = ends[last], ends[max(earlier)]
    return now - before <= growth * now


def time_to(samples: Sequence[Sample], share: float = 0.95) -> float | None:
    """Seconds until the merged pages first reached `share` of their last count (None:
    nothing was merged)."""
    if not samples or samples[-1].merged <= 0:
        return None
    goal = share * samples[-1].merged
    return next(s.seconds for s in samples if s.merged >= goal)


def _read(name: str) -> str:
    return (KSM / name).read_text().strip()


def _write(name: str, value: object) -> None:
    (KSM / name).write_text(f"{value}\n")


def run_state() -> str | None:
    """/sys/kernel/mm/ksm/run: "0" ksmd off, "1" on, "2" unmerging; None: no KSM here."""
    try:
        return _read("run")
    except OSError:
        return None


def unavailable() -> str | None:
    """Why this run cannot turn ksmd on for a measurement, or None."""
    if not (KSM / "run").exists():
        return "this kernel has no KSM (no /sys/kernel/mm/ksm)"
    if os.geteuid() != 0:
        return "not root: ksmd is the host's to turn on (/sys/kernel/mm/ksm/run)"
    run = _read("run")
    if run != "0":
        return (
            f"ksmd was already on (/sys/kernel/mm/ksm/run = {run}): the figure above "
            "already holds its merging, and the bench leaves it alone"
        )
    return None


def ksm_stat(pid: int) -> dict[str, str]:
    """/proc/PID/ksm_stat as names and values ({} if the process or the file is gone)."""
    try:
        text = Path(f"/proc/{pid}/ksm_stat").read_text()
    except OSError:
        return {}
    pairs = (line.partition(" ") for line in text.splitlines())
    return {k.rstrip(":"): v.strip() for k, _, v in pairs}


def marked(pid: int) -> bool | None:
    """Whether a process's memory is marked for merging (PR_SET_MEMORY_MERGE); None where
    the kernel does not say (before 6.4)."""
    value = ksm_stat(pid).get("ksm_merge_any")
    return None if value is None else value == "yes"


def merging_pages(pids: Sequence[int]) -> int:
    """How many of these processes' pages are merged ones."""
    return sum(int(ksm_stat(pid).get("ksm_merging_pages", 0)) for pid in pids)


def ksmd_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == "ksmd":
                    return int(entry)
    return None


@contextlib.contextmanager
def switched_on(rate: Mapping[str, int]) -> Iterator[None]:
    """ksmd on at `rate`; off again, and the rate as it was, whatever happens."""
    saved = {name: _read(name) for name in ("run", *rate)}
    print(
        f"bench: ksmd on for a measurement (/sys/kernel/mm/ksm/run was {saved['run']})",
        file=sys.stderr,
        flush=True,
    )
    try:
        for name, value in rate.items():
            _write(name, value)
        _write("run", 1)
        yield
    finally:
        _write("run", saved["run"])  # first: ksmd stops before its rate changes
        for name in rate:
            _write(name, saved[name])
        print(f"bench: /sys/kernel/mm/ksm/run back to {_read('run')}", file=sys.stderr)


def merge(
    pids: Sequence[int], timeout: float, poll: float = 0.5, rate: Mapping[str, int] = RATE
) -> dict[str, Any]:
    """Turn ksmd on, wait until its merging of `pids` has settled (or `timeout` seconds),
    turn it off (see `unavailable` first), and say what it took."""
    pid = ksmd_pid()
    samples: list[Sample] = []
    with switched_on(rate):
        cpu0 = cpu_seconds(pid) if pid else 0.0
        scanned0 = int(_read("pages_scanned"))
        t0 = time.monotonic()
        while True:
            now = time.monotonic() - t0
            samples.append(Sample(now, int(_read("full_scans")), merging_pages(pids)))
            if settled(samples) or now >= timeout:
                break
            time.sleep(poll)
        cpu = cpu_seconds(pid) - cpu0 if pid else None
        shared = int(_read("pages_shared"))
        scanned = int(_read("pages_scanned")) - scanned0
    return {
        "rate": dict(rate),
        "settled": settled(samples),
        "waited_s": samples[-1].seconds,
        "seconds_to_95": time_to(samples),
        "full_scans": samples[-1].full_scans - samples[0].full_scans,
        "ksmd_cpu_s": cpu,
        "pages_scanned": scanned,
        "merged_pages": samples[-1].merged,  # the processes' pages that are merged ones
        "pages_shared": shared,  # the merged pages kept, host-wide
    }
