"""The shared concurrency pools (klambda.router.sharedpools) decide as `ConcurrencyPools`
does, whichever process (row) asks, and give back a dead process's slots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from klambda.router import sharedpools
from klambda.router.admission import ACCOUNT_LIMIT, RESERVED_LIMIT, ConcurrencyPools
from klambda.router.sharedpools import SharedPools


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[SharedPools, SharedPools]]:
    """The leader's view (row 0) and a follower's (row 1) of one file."""
    leader = SharedPools(tmp_path / "admission.map", 0, create=True, account_limit=200)
    follower = SharedPools(tmp_path / "admission.map", 1)
    yield leader, follower
    follower.close()
    leader.close()


def test_reserved_limit_holds_across_rows(shared: tuple[SharedPools, SharedPools]) -> None:
    leader, follower = shared
    leader.set_reserved("a", 5)
    got = [(leader if i % 2 else follower).try_acquire("a") for i in range(8)]
    assert got == [None] * 5 + [RESERVED_LIMIT] * 3
    assert follower.in_flight("a") == 5
    follower.release("a")
    assert leader.try_acquire("a") is None
    assert leader.try_acquire("a") == RESERVED_LIMIT


def test_the_same_decisions_as_one_process(shared: tuple[SharedPools, SharedPools]) -> None:
    leader, follower = shared
    single = ConcurrencyPools(account_limit=200)
    for pools in (single, leader):
        pools.set_reserved("big", 100)
    # a fixed mix of calls and ends over functions, alternating rows
    script = [("x", +1)] * 60 + [("y", +1)] * 45 + [("x", -1)] * 10 + [("big", +1)] * 101
    script += [("y", +1)] * 10
    one: list[str | None] = []
    two: list[str | None] = []
    held: dict[str, list[SharedPools]] = {}
    for n, (fn, step) in enumerate(script):
        if step > 0:
            one.append(single.try_acquire(fn))
            row = leader if n % 3 else follower
            r = row.try_acquire(fn)
            two.append(r)
            if r is None:
                held.setdefault(fn, []).append(row)
        else:
            single.release(fn)
            held[fn].pop().release(fn)
    assert one == two
    assert ACCOUNT_LIMIT in two
    assert RESERVED_LIMIT in two
    assert leader.account_in_flight == single.account_in_flight
    assert follower.unreserved_in_flight == single.unreserved_in_flight


def test_only_the_leader_writes_reservations(shared: tuple[SharedPools, SharedPools]) -> None:
    leader, follower = shared
    follower.set_reserved("a", 3)  # a follower reloading its registry: ignored
    assert leader.reserved == {}
    leader.set_reserved("a", 3)
    assert follower.reserved == {"a": 3}
    assert follower.unreserved_limit == 197
    leader.set_reserved("a", None)
    assert follower.reserved == {}
    assert follower.unreserved_limit == 200


def test_a_dead_row_gives_its_slots_back(shared: tuple[SharedPools, SharedPools]) -> None:
    leader, follower = shared
    leader.set_reserved("a", 5)
    for _ in range(3):
        assert follower.try_acquire("a") is None
        assert follower.try_acquire("b") is None
    assert leader.try_acquire("a") is None
    assert leader.reclaim(1) == 6
    assert leader.in_flight("a") == 1
    assert leader.account_in_flight == 1
    assert leader.unreserved_in_flight == 0
    assert [leader.try_acquire("a") for _ in range(5)] == [None] * 4 + [RESERVED_LIMIT]


def test_reclaim_repairs_totals_left_half_written(
    shared: tuple[SharedPools, SharedPools],
) -> None:
    leader, follower = shared
    assert follower.try_acquire("a") is None
    leader._q[sharedpools._IN_FLIGHT + leader._slot("a")] += 7  # garbage in a total ...
    leader.reclaim(1)  # ... is summed again from the rows
    assert leader.in_flight("a") == 0
    assert leader.account_in_flight == 0


def test_scale_up_is_one_bucket(tmp_path: Path) -> None:
    leader = SharedPools(tmp_path / "m", 0, create=True, scale_up_per_minute=60, now=0.0)
    follower = SharedPools(tmp_path / "m", 1)
    a, b = leader.scale_up(), follower.scale_up()
    assert sum((a if i % 2 else b).try_take(0.0) for i in range(100)) == 60
    assert not a.try_take(0.5)
    assert b.try_take(1.01)
    follower.close()
    leader.close()


def test_a_follower_needs_the_leaders_file(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"\0" * sharedpools.SIZE)
    with pytest.raises(RuntimeError, match="not the leader's"):
        SharedPools(tmp_path / "m", 1)
