"""The concurrency pools of several router processes, kept exact in one shared file.

`klambda up --processes N` runs N router processes on the same ports (SO_REUSEPORT: the
kernel spreads connections over them). Throttling must stay what one process would decide:
reserved concurrency 5 means 5 calls running, whichever processes they landed on. So the
counts are not per process: they live in a file that every process maps
(`STATE/admission.map`), and each decision is taken under an exclusive `flock` on it, with
the pure rule of klambda.router.admission (`admit`, `refill`) applied to the shared counts.
A decision is a few reads and writes of the mapping between two system calls (~2 µs),
cheap next to a call (~200 µs), and no process ever waits for another's request.

Why this and not a library: `multiprocessing`'s shared values need a common parent that
creates them before the children fork, and forking a router running gRPC is unsafe; a
counter server (one more hop per call) would cost what the extra processes gain. `flock`
has the property the crash case needs: the kernel drops the lock of a process that dies.

Crashes: every process owns a row of the file and counts its calls there too (per
function: in flight, and taken from the unreserved pool); the totals the decisions read are
sums of the rows. When a process dies its row is zeroed and the totals are summed again
from the rows left (`reclaim`), so a crash leaks no slot, even one in the middle of an
update. The leader (row 0) reclaims the rows of the processes it started when they exit.

Reservations are written by the leader alone (the control API is its); the others read
them from the file at each decision, so a change holds in every process at once.

Layout, 8-byte words: a header (generation of the registry, names used, the totals, the
scale-up bucket), the rows' pids, per function the reservation (-1: none), in flight and
unreserved in flight, then per row and function the same two counts, then the names.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from pathlib import Path

from klambda.api import limits
from klambda.api.rules import check_reservation
from klambda.router.admission import admit, refill

__all__ = ["MAX_FUNCTIONS", "MAX_PROCESSES", "SharedPools", "SharedScaleUp"]

MAGIC = 0x6B6C616D_62646101  # "klambda" + layout version
MAX_PROCESSES = 64
MAX_FUNCTIONS = 2048
NAME_BYTES = 64

# header words
_MAGIC, _GENERATION, _NAMES, _RESERVED_TOTAL, _UNRESERVED, _TOTAL = range(6)
_ACCOUNT, _UNRESERVED_MIN, _SCALE_PER_MINUTE, _TOKENS, _STAMP = range(6, 11)
_HEADER = 16
_PIDS = _HEADER
_RESERVED = _PIDS + MAX_PROCESSES
_IN_FLIGHT = _RESERVED + MAX_FUNCTIONS
_UNRESERVED_BY = _IN_FLIGHT + MAX_FUNCTIONS
_ROW_IN_FLIGHT = _UNRESERVED_BY + MAX_FUNCTIONS
_ROW_UNRESERVED_BY = _ROW_IN_FLIGHT + MAX_PROCESSES * MAX_FUNCTIONS
_WORDS = _ROW_UNRESERVED_BY + MAX_PROCESSES * MAX_FUNCTIONS
_NAMES_AT = _WORDS * 8
SIZE = _NAMES_AT + MAX_FUNCTIONS * NAME_BYTES


class SharedPools:
    """`Admission` over the shared file, as row `row` (0: the leader, which creates it).

    Single-threaded use per process (the event loop), as `ConcurrencyPools`."""

    def __init__(
        self,
        path: Path,
        row: int,
        *,
        create: bool = False,
        account_limit: int = limits.ACCOUNT_CONCURRENCY_DEFAULT,
        unreserved_min: int = limits.UNRESERVED_CONCURRENCY_MIN,
        scale_up_per_minute: int = limits.SCALE_UP_PER_MINUTE_DEFAULT,
        now: float = 0.0,
    ) -> None:
        if not 0 <= row < MAX_PROCESSES:
            raise ValueError(f"row {row}: at most {MAX_PROCESSES} router processes")
        self.path = path
        self.row = row
        self.writer = create  # reservations are the leader's to write
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self._fd = os.open(path, flags, 0o600)
        if create:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            os.ftruncate(self._fd, 0)  # a previous run's counts are gone
            os.ftruncate(self._fd, SIZE)
        self._map = mmap.mmap(self._fd, SIZE)
        self._q = memoryview(self._map).cast("q")
        self._d = memoryview(self._map).cast("d")
        q = self._q
        if create:
            q[_ACCOUNT] = account_limit
            q[_UNRESERVED_MIN] = unreserved_min
            q[_SCALE_PER_MINUTE] = scale_up_per_minute
            self._d[_TOKENS] = float(scale_up_per_minute)
            self._d[_STAMP] = now
            q[_MAGIC] = MAGIC
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        elif q[_MAGIC] != MAGIC:
            raise RuntimeError(f"{path}: not the leader's admission file (or another layout)")
        self.account_limit = q[_ACCOUNT]
        self.unreserved_min = q[_UNRESERVED_MIN]
        self._index: dict[str, int] = {}
        self._lock()
        q[_PIDS + row] = os.getpid()
        self._unlock()

    def _lock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    # names: a function's index is its place in the names table, the same in every process

    def _name_at(self, i: int) -> str:
        at = _NAMES_AT + i * NAME_BYTES
        n = self._map[at]
        return self._map[at + 1 : at + 1 + n].decode()

    def _slot(self, function: str) -> int:
        i = self._index.get(function)
        if i is not None:
            return i
        raw = function.encode()
        if len(raw) >= NAME_BYTES:
            raise ValueError(f"function name {function!r} is longer than {NAME_BYTES - 1} bytes")
        self._lock()
        try:
            used = self._q[_NAMES]
            for j in range(used):
                self._index.setdefault(self._name_at(j), j)
            i = self._index.get(function)
            if i is None:
                if used >= MAX_FUNCTIONS:
                    raise RuntimeError(
                        f"more than {MAX_FUNCTIONS} functions: the shared concurrency pools are "
                        "full (run one router process)"
                    )
                at = _NAMES_AT + used * NAME_BYTES
                self._map[at] = len(raw)
                self._map[at + 1 : at + 1 + len(raw)] = raw
                self._q[_RESERVED + used] = -1
                self._q[_NAMES] = used + 1
                i = self._index[function] = used
            return i
        finally:
            self._unlock()

    # what the control API and the gauges read

    @property
    def reserved(self) -> dict[str, int]:
        q = self._q
        self._lock()
        try:
            used = q[_NAMES]
            return {
                self._name_at(i): q[_RESERVED + i] for i in range(used) if q[_RESERVED + i] >= 0
            }
        finally:
            self._unlock()

    @property
    def unreserved_limit(self) -> int:
        return self.account_limit - self._q[_RESERVED_TOTAL]

    @property
    def account_in_flight(self) -> int:
        return self._q[_TOTAL]

    @property
    def unreserved_in_flight(self) -> int:
        return self._q[_UNRESERVED]

    def in_flight(self, function: str) -> int:
        return self._q[_IN_FLIGHT + self._slot(function)]

    @property
    def generation(self) -> int:
        """Bumped by the leader whenever functions, versions, aliases or reservations
        change; the others reload their registry when it moves."""
        return self._q[_GENERATION]

    def bump_generation(self) -> None:
        self._lock()
        self._q[_GENERATION] += 1
        self._unlock()

    # reservations (the leader's)

    def check_reservation(self, function: str, reserved: int | None) -> None:
        check_reservation(
            function, reserved, self.reserved, self.account_limit, self.unreserved_min
        )

    def set_reserved(self, function: str, reserved: int | None) -> None:
        """The leader's: checked, then written for every process. Elsewhere a no-op (a
        follower that reloads its registry reads the reservations from the file)."""
        if not self.writer:
            return
        self.check_reservation(function, reserved)
        i = self._slot(function)
        q = self._q
        self._lock()
        try:
            q[_RESERVED + i] = -1 if reserved is None else reserved
            q[_RESERVED_TOTAL] = sum(max(0, q[_RESERVED + j]) for j in range(q[_NAMES]))
        finally:
            self._unlock()

    # the invoke path

    def try_acquire(self, function: str) -> str | None:
        """Take a slot for `function`; None on success, else the throttle reason."""
        i = self._slot(function)
        q = self._q
        r = self.row
        self._lock()
        try:
            held = q[_RESERVED + i]
            reserved = None if held < 0 else held
            reason = admit(
                q[_IN_FLIGHT + i],
                reserved,
                q[_UNRESERVED],
                self.account_limit - q[_RESERVED_TOTAL],
            )
            if reason is not None:
                return reason
            q[_IN_FLIGHT + i] += 1
            q[_ROW_IN_FLIGHT + r * MAX_FUNCTIONS + i] += 1
            q[_TOTAL] += 1
            if reserved is None:
                q[_UNRESERVED_BY + i] += 1
                q[_ROW_UNRESERVED_BY + r * MAX_FUNCTIONS + i] += 1
                q[_UNRESERVED] += 1
            return None
        finally:
            self._unlock()

    def release(self, function: str) -> None:
        i = self._slot(function)
        q = self._q
        at = self.row * MAX_FUNCTIONS + i
        self._lock()
        try:
            q[_IN_FLIGHT + i] -= 1
            q[_ROW_IN_FLIGHT + at] -= 1
            q[_TOTAL] -= 1
            if q[_ROW_UNRESERVED_BY + at] > 0:
                q[_UNRESERVED_BY + i] -= 1
                q[_ROW_UNRESERVED_BY + at] -= 1
                q[_UNRESERVED] -= 1
        finally:
            self._unlock()

    # crashes

    def pid_of(self, row: int) -> int:
        return self._q[_PIDS + row]

    def reclaim(self, row: int) -> int:
        """Give back every slot row `row` held (its process is gone); the slots freed."""
        q = self._q
        self._lock()
        try:
            used = q[_NAMES]
            base = row * MAX_FUNCTIONS
            freed = sum(q[_ROW_IN_FLIGHT + base + i] for i in range(used))
            for i in range(used):
                q[_ROW_IN_FLIGHT + base + i] = 0
                q[_ROW_UNRESERVED_BY + base + i] = 0
            q[_PIDS + row] = 0
            self._recount(used)
            return freed
        finally:
            self._unlock()

    def _recount(self, used: int) -> None:
        """The totals again from the rows (under the lock): whatever a process that died in
        the middle of an update left in them."""
        q = self._q
        total = unreserved = 0
        for i in range(used):
            running = sum(q[_ROW_IN_FLIGHT + r * MAX_FUNCTIONS + i] for r in range(MAX_PROCESSES))
            taken = sum(q[_ROW_UNRESERVED_BY + r * MAX_FUNCTIONS + i] for r in range(MAX_PROCESSES))
            q[_IN_FLIGHT + i] = running
            q[_UNRESERVED_BY + i] = taken
            total += running
            unreserved += taken
        q[_TOTAL] = total
        q[_UNRESERVED] = unreserved

    def scale_up(self) -> SharedScaleUp:
        return SharedScaleUp(self)

    def close(self) -> None:
        self._q.release()
        self._d.release()
        self._map.close()
        os.close(self._fd)


class SharedScaleUp:
    """The scale-up token bucket (klambda.router.admission.ScaleUpLimiter) in the shared
    file: new environments start at the account's rate, not N times it. `now` is
    `time.monotonic()`, one clock for every process of the machine."""

    def __init__(self, pools: SharedPools) -> None:
        self._pools = pools

    def try_take(self, now: float) -> bool:
        p = self._pools
        q, d = p._q, p._d
        p._lock()
        try:
            tokens = refill(d[_TOKENS], now - d[_STAMP], q[_SCALE_PER_MINUTE])
            d[_STAMP] = max(now, d[_STAMP])
            ok = tokens >= 1.0
            d[_TOKENS] = tokens - 1.0 if ok else tokens
            return ok
        finally:
            p._unlock()
