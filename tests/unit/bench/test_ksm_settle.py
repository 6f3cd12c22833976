"""When the burst part stops waiting for ksmd (bench/ksm.py): merging has settled once a
full scan, the second after ksmd started or later, adds less than 1 % to the merged pages."""

from __future__ import annotations

import pytest

from bench.ksm import Sample, settled, time_to


def samples(*rows: tuple[float, int, int]) -> list[Sample]:
    return [Sample(t, scans, merged) for t, scans, merged in rows]


# what 300 idle environments did here, every second: a first scan that only reads the
# pages, a second that merges some, a third that merges most, a fourth that adds nothing
MEASURED = samples(
    (0.0, 10, 0),
    (1.0, 11, 0),
    (3.0, 11, 0),
    (5.0, 12, 22_502),
    (8.0, 12, 130_765),
    (11.0, 13, 206_347),
    (14.0, 13, 206_347),
    (17.0, 14, 206_350),
)


@pytest.mark.parametrize(
    ("upto", "expected"),
    [
        (0, False),  # no sample yet
        (1, False),
        (3, False),  # one full scan since the start
        (4, False),  # the second merged the first pages
        (6, False),  # the third scan merged 9x what the second had: still growing
        (7, False),  # within the fourth scan, which has not ended
        (8, True),  # the fourth added 3 pages to 206,347
    ],
)
def test_settled_after_a_scan_that_adds_under_one_percent(upto: int, expected: bool) -> None:
    assert settled(MEASURED[:upto]) is expected


def test_nothing_merged_in_two_scans_is_settled() -> None:
    assert settled(samples((0.0, 0, 0), (1.0, 1, 0), (2.0, 2, 0)))


def test_one_scan_is_too_early_whatever_the_counts() -> None:
    assert not settled(samples((0.0, 0, 500), (1.0, 1, 500)))
    assert settled(samples((0.0, 0, 500), (1.0, 1, 500)), min_scans=1)


def test_a_scan_count_that_jumps_between_samples_compares_with_the_last_seen() -> None:
    # scans 1 and 2 ended between two samples: the end of scan 3 is compared with the
    # count seen at scan 1
    assert not settled(samples((0.0, 0, 0), (1.0, 1, 100), (2.0, 3, 150)))
    assert settled(samples((0.0, 0, 0), (1.0, 1, 1000), (2.0, 3, 1005)))


def test_one_percent_is_of_the_merged_count_at_the_scan_end() -> None:
    assert settled(samples((0.0, 0, 0), (1.0, 1, 990), (2.0, 2, 1000)))
    assert not settled(samples((0.0, 0, 0), (1.0, 1, 989), (2.0, 2, 1000)))
    assert settled(samples((0.0, 0, 0), (1.0, 1, 989), (2.0, 2, 1000)), growth=0.02)


def test_time_to_95_percent_of_the_final_count() -> None:
    assert time_to(MEASURED) == 11.0
    assert time_to(MEASURED, share=0.5) == 8.0
    assert time_to(samples((0.0, 0, 0), (1.0, 1, 0))) is None
    assert time_to([]) is None
