"""EventBridge schedule expressions, `rate(5 minutes)` and `cron(0 3 * * ? *)`, and their ticks.

Parsing follows EventBridge's grammar: six cron fields (minutes, hours, day-of-month,
month, day-of-week, year), the wildcards each field allows (`, - * / ? L W #`),
day-of-week 1-7 or SUN-SAT (1 is Sunday), one of the two day fields `?`; a rate is a
positive whole number of minutes, hours or days, singular for 1 and plural otherwise.
Anything else is refused with a message naming the field.

Ticks come from croniter, given the expression in its own dialect: day-of-week 0-6,
`6L` (last Friday) as `L5`, `L` alone (Saturday) as 6. The year is checked here, because
croniter stops at 2099 and EventBridge goes to 2199. Times are computed in the schedule's
time zone (zoneinfo), so `cron(0 9 * * ? *)` in Europe/Paris follows daylight saving time.

Rate ticks are anchored to the Unix epoch in UTC (every 5 minutes is :00, :05, ...), so
every router computes the same ticks, and a tick (its UTC time) identifies one firing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_RANGES = {
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
    "year": (1970, 2199),
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^rate\((\d+) (minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
# a year restricted to years that never come is searched this far ahead, then given up
_SEARCH_YEARS = 250


@dataclass(frozen=True)
class Rate:
    value: int
    unit: str  # minute | hour | day

    @property
    def seconds(self) -> int:
        return self.value * _UNITS[self.unit]

    def __str__(self) -> str:
        return f"rate({self.value} {self.unit}{'s' if self.value != 1 else ''})"


@dataclass(frozen=True)
class Cron:
    fields: tuple[str, ...]  # EventBridge's six, as written
    dialect: str  # croniter's: minute hour day month day-of-week second(0)
    years: frozenset[int] | None  # None: every year

    def __str__(self) -> str:
        return f"cron({' '.join(self.fields)})"


ScheduleExpression = Rate | Cron


def parse(text: str) -> ScheduleExpression:
    """A schedule expression, or ValueError saying what is wrong with it."""
    text = text.strip()
    m = _RATE.match(text)
    if m:
        return _rate(int(m.group(1)), m.group(2))
    if text.startswith("rate("):
        raise ValueError(
            f"{text!r}: a rate is rate(VALUE UNIT), VALUE a positive whole number and UNIT "
            "minute(s), hour(s) or day(s), e.g. rate(5 minutes)"
        )
    m = _CRON.match(text)
    if m:
        return _cron(text, m.group(1).split())
    raise ValueError(f"{text!r}: a schedule is rate(...) or cron(...)")


def _rate(value: int, unit: str) -> Rate:
    if value < 1:
        raise ValueError(f"rate({value} {unit}): the value must be a positive whole number")
    singular = unit.rstrip("s")
    if value == 1 and unit != singular:
        raise ValueError(f"rate(1 {unit}): for 1 the unit is singular: rate(1 {singular})")
    if value > 1 and unit == singular:
        raise ValueError(f"rate({value} {unit}): for {value} the unit is plural: {unit}s")
    return Rate(value, singular)


def _cron(text: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ValueError(
            f"{text!r}: cron takes six fields (minutes hours day-of-month month day-of-week "
            f"year), got {len(fields)}"
        )
    for name, field in zip(FIELDS, fields, strict=True):
        try:
            _check_field(name, field.upper())
        except ValueError as err:
            raise ValueError(f"{text!r}: {name} {field!r}: {err}") from None
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ValueError(
            f"{text!r}: one of day-of-month and day-of-week must be '?' and the other not "
            "(EventBridge cannot combine them)"
        )
    up = [f.upper() for f in fields]
    dialect = " ".join(
        [up[0], up[1], "*" if up[2] == "?" else up[2], up[3], _dow_dialect(up[4]), "0"]
    )
    try:
        croniter(dialect)
    except (ValueError, KeyError) as err:
        raise ValueError(f"{text!r}: {err}") from None
    years = None if up[5] == "*" else frozenset(_expand(up[5], *_RANGES["year"]))
    return Cron(tuple(fields), dialect, years)


def _check_field(name: str, field: str) -> None:
    lo, hi = _RANGES[name]
    for item in field.split(","):
        if not item:
            raise ValueError("an empty item between commas")
        if item == "?":
            if name not in ("day-of-month", "day-of-week") or field != "?":
                raise ValueError("'?' stands alone, in day-of-month or day-of-week only")
            continue
        if item == "L":
            if name not in ("day-of-month", "day-of-week") or field != "L":
                raise ValueError("'L' stands alone, in day-of-month or day-of-week only")
            continue
        if name == "day-of-month" and item.endswith("W"):
            _value(name, item[:-1], lo, hi)
            if field != item:
                raise ValueError("'W' (nearest weekday) stands alone")
            continue
        if name == "day-of-week" and ("#" in item or item.endswith("L")):
            if field != item:
                raise ValueError("'#' and 'L' stand alone in day-of-week")
            if item.endswith("L"):
                _value(name, item[:-1], lo, hi)
                continue
            day, _, nth = item.partition("#")
            _value(name, day, lo, hi)
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise ValueError(f"'#{nth}': the week of the month is 1-5")
            continue
        base, slash, step = item.partition("/")
        if slash and (not step.isdigit() or int(step) < 1):
            raise ValueError(f"'/{step}': the increment is a positive whole number")
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        _value(name, start, lo, hi)
        if dash:
            _value(name, end, lo, hi)
        if any(c in item for c in "LW#?"):
            raise ValueError(f"{item!r} mixes wildcards this field does not take together")


def _value(name: str, token: str, lo: int, hi: int) -> int:
    if token.isdigit():
        n = int(token)
        if lo <= n <= hi:
            return n
        raise ValueError(f"{n} is out of {lo}-{hi}")
    names = _MONTHS if name == "month" else _DAYS if name == "day-of-week" else ()
    if token in names:
        return names.index(token) + 1
    allowed = f"{lo}-{hi}" + (f" or {names[0]}-{names[-1]}" if names else "")
    raise ValueError(f"{token!r} is not a value of {allowed}")


def _dow_dialect(field: str) -> str:
    """EventBridge's day-of-week (1-7 = SUN-SAT) in croniter's (0-6 = SUN-SAT)."""
    if field in ("?", "*"):
        return "*"
    if field == "L":
        return "6"  # the last day of the week: Saturday
    if field.endswith("L"):
        return f"L{_dow(field[:-1])}"
    if "#" in field:
        day, _, nth = field.partition("#")
        return f"{_dow(day)}#{nth}"
    items = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        if base != "*":
            start, dash, end = base.partition("-")
            base = str(_dow(start)) + (f"-{_dow(end)}" if dash else "")
        items.append(base + (f"/{step}" if slash else ""))
    return ",".join(items)


def _dow(token: str) -> int:
    return int(token) - 1 if token.isdigit() else _DAYS.index(token)


def _expand(field: str, lo: int, hi: int) -> list[int]:
    """The values a numeric field (the year) names."""
    out: list[int] = []
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = int(step_text) if slash else 1
        if base == "*":
            start, end = lo, hi
        else:
            a, dash, b = base.partition("-")
            start = int(a)
            end = int(b) if dash else (hi if slash else start)
        out.extend(range(start, end + 1, step))
    return out


def time_zone(name: str) -> ZoneInfo:
    """A named time zone (`UTC`, `Europe/Paris`), or ValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone name (e.g. UTC, Europe/Paris)") from None


def next_tick(expr: ScheduleExpression, after: datetime, tz: ZoneInfo | None = None) -> datetime:
    """The first tick strictly after `after` (aware), in UTC; ValueError if none comes."""
    if isinstance(expr, Rate):
        s = expr.seconds
        ts = (int(after.timestamp()) // s + 1) * s
        return datetime.fromtimestamp(ts, UTC)
    zone = tz or ZoneInfo("UTC")
    start = after.astimezone(zone)
    for _ in range(_SEARCH_YEARS):
        if expr.years is not None and start.year not in expr.years:
            later = [y for y in expr.years if y > start.year]
            if not later:
                break
            start = datetime(min(later), 1, 1, tzinfo=zone) - timedelta(seconds=1)
        try:
            tick: datetime = croniter(expr.dialect, start).get_next(datetime)
        except CroniterBadDateError:
            break
        if expr.years is None or tick.year in expr.years:
            return tick.astimezone(UTC)
        start = tick
    raise ValueError(f"{expr} never fires after {after.isoformat()}")


def prev_tick(
    expr: ScheduleExpression, at: datetime, tz: ZoneInfo | None = None
) -> datetime | None:
    """The last tick at or before `at`, in UTC, or None."""
    if isinstance(expr, Rate):
        s = expr.seconds
        return datetime.fromtimestamp(int(at.timestamp()) // s * s, UTC)
    zone = tz or ZoneInfo("UTC")
    start = at.astimezone(zone) + timedelta(seconds=1)
    for _ in range(_SEARCH_YEARS):
        if expr.years is not None and start.year not in expr.years:
            earlier = [y for y in expr.years if y < start.year]
            if not earlier:
                return None
            start = datetime(max(earlier) + 1, 1, 1, tzinfo=zone)
        try:
            tick: datetime = croniter(expr.dialect, start).get_prev(datetime)
        except CroniterBadDateError:
            return None
        if expr.years is None or tick.year in expr.years:
            return tick.astimezone(UTC)
        start = tick
    return None
