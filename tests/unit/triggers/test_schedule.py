"""EventBridge's schedule expressions: AWS's documented examples parse and tick where the
documentation says; what EventBridge refuses is refused, naming the field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from klambda.triggers.schedule import Cron, Rate, next_tick, parse, prev_tick, time_zone

# Monday 2024-01-01 00:00 UTC
START = datetime(2024, 1, 1, tzinfo=UTC)


def ticks(expr: str, n: int = 4, start: datetime = START, tz: str = "UTC") -> list[str]:
    parsed, zone, out, t = parse(expr), time_zone(tz), [], start
    for _ in range(n):
        t = next_tick(parsed, t, zone)
        out.append(t.strftime("%a %Y-%m-%d %H:%M"))
    return out


# (expression, what AWS's documentation says it does, the first ticks after START)
DOCUMENTED = [
    ("cron(0 10 * * ? *)", "10:00 am (UTC) every day",
     ["Mon 2024-01-01 10:00", "Tue 2024-01-02 10:00", "Wed 2024-01-03 10:00"]),
    ("cron(15 12 * * ? *)", "12:15 pm (UTC) every day",
     ["Mon 2024-01-01 12:15", "Tue 2024-01-02 12:15", "Wed 2024-01-03 12:15"]),
    ("cron(0 18 ? * MON-FRI *)", "6:00 pm (UTC) every Monday through Friday",
     ["Mon 2024-01-01 18:00", "Tue 2024-01-02 18:00", "Wed 2024-01-03 18:00",
      "Thu 2024-01-04 18:00", "Fri 2024-01-05 18:00", "Mon 2024-01-08 18:00"]),
    ("cron(0 8 1 * ? *)", "8:00 am (UTC) every first day of the month",
     ["Mon 2024-01-01 08:00", "Thu 2024-02-01 08:00", "Fri 2024-03-01 08:00"]),
    ("cron(0/15 * * * ? *)", "every 15 minutes",
     ["Mon 2024-01-01 00:15", "Mon 2024-01-01 00:30", "Mon 2024-01-01 00:45",
      "Mon 2024-01-01 01:00"]),
    ("cron(0/10 * ? * MON-FRI *)", "every 10 minutes Monday through Friday",
     ["Mon 2024-01-01 00:10", "Mon 2024-01-01 00:20"]),
    ("cron(0/5 8-17 ? * MON-FRI *)",
     "every 5 minutes Monday through Friday between 8:00 am and 5:55 pm (UTC)",
     ["Mon 2024-01-01 08:00", "Mon 2024-01-01 08:05"]),
    ("cron(0/30 20-2 ? * MON-FRI *)",
     "every 30 minutes Monday through Friday between 10:00 pm and 2:00 am (UTC)",
     ["Mon 2024-01-01 00:30", "Mon 2024-01-01 01:00", "Mon 2024-01-01 01:30",
      "Mon 2024-01-01 02:00", "Mon 2024-01-01 02:30", "Mon 2024-01-01 20:00"]),
    ("cron(0 0-5 ? * MON-FRI *)", "12:00 am to 5:00 am (UTC) Monday through Friday",
     ["Mon 2024-01-01 01:00", "Mon 2024-01-01 02:00"]),
    ("cron(0 9 ? * 2#1 *)", "9:00 am (UTC) the first Monday of each month",
     ["Mon 2024-01-01 09:00", "Mon 2024-02-05 09:00", "Mon 2024-03-04 09:00"]),
    ("cron(0 0 ? * 3#2 *)", "the second Tuesday of the month (3#2, as the wildcards say)",
     ["Tue 2024-01-09 00:00", "Tue 2024-02-13 00:00"]),
    ("cron(0 0 L * ? *)", "the last day of the month (L in day-of-month)",
     ["Wed 2024-01-31 00:00", "Thu 2024-02-29 00:00", "Sun 2024-03-31 00:00"]),
    ("cron(0 0 ? * 6L *)", "the last Friday of the month (L in day-of-week)",
     ["Fri 2024-01-26 00:00", "Fri 2024-02-23 00:00", "Fri 2024-03-29 00:00"]),
    ("cron(0 0 ? * L *)", "the last day of the week, Saturday",
     ["Sat 2024-01-06 00:00", "Sat 2024-01-13 00:00"]),
    ("cron(0 0 3W * ? *)", "the weekday closest to the third day of the month (3W)",
     ["Wed 2024-01-03 00:00", "Fri 2024-02-02 00:00", "Mon 2024-03-04 00:00"]),
    ("cron(0 12 ? JAN,FEB,MAR SUN *)", "JAN,FEB,MAR in the month field, names of days",
     ["Sun 2024-01-07 12:00", "Sun 2024-01-14 12:00"]),
    ("cron(0 0 1 1 ? 2026-2027)", "a range of years",
     ["Thu 2026-01-01 00:00", "Fri 2027-01-01 00:00"]),
    ("cron(30 14 10,20 * ? 2030)", "a year far ahead",
     ["Thu 2030-01-10 14:30", "Sun 2030-01-20 14:30"]),
    ("rate(5 minutes)", "every 5 minutes",
     ["Mon 2024-01-01 00:05", "Mon 2024-01-01 00:10"]),
    ("rate(1 minute)", "every minute", ["Mon 2024-01-01 00:01", "Mon 2024-01-01 00:02"]),
    ("rate(1 hour)", "every hour", ["Mon 2024-01-01 01:00", "Mon 2024-01-01 02:00"]),
    ("rate(12 hours)", "every 12 hours", ["Mon 2024-01-01 12:00", "Tue 2024-01-02 00:00"]),
    ("rate(7 days)", "every 7 days (anchored to the epoch: Thursdays)",
     ["Thu 2024-01-04 00:00", "Thu 2024-01-11 00:00"]),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "meaning", "first"), DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_documented_examples(expr: str, meaning: str, first: list[str]) -> None:
    assert ticks(expr, len(first)) == first, meaning
    assert str(parse(expr)) == expr


REFUSED = [
    ("rate(1 minutes)", "rate(1 minute)"),
    ("rate(5 minute)", "plural"),
    ("rate(0 minutes)", "positive"),
    ("rate(5 seconds)", "minute(s), hour(s) or day(s)"),
    ("rate(-5 minutes)", "positive whole number"),
    ("cron(0 10 * * ?)", "six fields"),
    ("cron(0 10 * * * *)", "one of day-of-month and day-of-week must be '?'"),
    ("cron(0 10 ? * ? *)", "one of day-of-month and day-of-week must be '?'"),
    ("cron(60 * * * ? *)", "minutes '60': 60 is out of 0-59"),
    ("cron(0 24 * * ? *)", "hours '24': 24 is out of 0-23"),
    ("cron(0 0 32 * ? *)", "day-of-month '32'"),
    ("cron(0 0 ? 13 MON *)", "month '13'"),
    ("cron(0 0 ? * 0 *)", "day-of-week '0': 0 is out of 1-7"),
    ("cron(0 0 ? * FUN *)", "'FUN' is not a value of 1-7 or SUN-SAT"),
    ("cron(0 0 ? * 2#6 *)", "week of the month is 1-5"),
    ("cron(0 0 * * ? 1969)", "year '1969'"),
    ("cron(0 0 * * ? 2200)", "year '2200'"),
    ("cron(0 L * * ? *)", "hours 'L'"),
    ("cron(0 0 LW * ? *)", "day-of-month 'LW'"),
    ("cron(0 0 ? * MON#1,FRI *)", "stand alone"),
    ("cron(0/0 * * * ? *)", "increment"),
    ("every day", "rate(...) or cron(...)"),
]


@pytest.mark.parametrize(("expr", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused(expr: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse(expr)


def test_time_zones_follow_daylight_saving() -> None:
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer
    winter = ticks("cron(0 9 * * ? *)", 1, START, "Europe/Paris")
    summer = ticks("cron(0 9 * * ? *)", 1, datetime(2024, 7, 1, tzinfo=UTC), "Europe/Paris")
    assert winter == ["Mon 2024-01-01 08:00"]
    assert summer == ["Mon 2024-07-01 07:00"]
    with pytest.raises(ValueError, match="not a time zone"):
        time_zone("Europe/Nowhere")


def test_previous_ticks() -> None:
    rate, cron = parse("rate(5 minutes)"), parse("cron(0 10 * * ? *)")
    at = datetime(2024, 1, 1, 10, 7, 30, tzinfo=UTC)
    assert prev_tick(rate, at) == datetime(2024, 1, 1, 10, 5, tzinfo=UTC)
    assert prev_tick(cron, at) == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    on_tick = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert prev_tick(cron, on_tick) == on_tick
    assert prev_tick(parse("cron(0 0 1 1 ? 2030)"), at) is None


def test_a_schedule_that_ends_says_so() -> None:
    with pytest.raises(ValueError, match="never fires after"):
        next_tick(parse("cron(0 0 1 1 ? 2020)"), START)


def test_kinds() -> None:
    assert parse("rate(2 hours)") == Rate(2, "hour")
    assert parse("rate(2 hours)").seconds == 7200  # type: ignore[union-attr]
    cron = parse("cron(0 18 ? * MON-FRI *)")
    assert isinstance(cron, Cron)
    assert cron.years is None
