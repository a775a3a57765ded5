"""Load a city's public holidays and make-up working days (holidays.yaml), and pick an anomaly baseline's hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dashboard.core.rules import RulesError, validated_file, _line, _message as _rules_message

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MAX_SPAN_DAYS = 15  # the longest holiday China has had is 9 days; a longer span is a typo (2026-10-01 to 2026-01-07)


class Span(BaseModel):
    """One holiday as announced: its days off (from .. to, inclusive) and the weekend days worked for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(min_length=1, max_length=32)]
    name_en: Annotated[str, Field(min_length=1, max_length=64)]
    from_: Annotated[date, Field(alias="from")]
    to: date
    workdays: tuple[date, ...] = ()  # 调休上班: a Saturday or Sunday worked to bridge the holiday

    @model_validator(mode="after")
    def _days(self) -> "Span":
        if self.to < self.from_:
            raise ValueError(f"'to' ({self.to}) is before 'from' ({self.from_})")
        if (self.to - self.from_).days + 1 > MAX_SPAN_DAYS:
            raise ValueError(f"{(self.to - self.from_).days + 1} days off: at most {MAX_SPAN_DAYS} (a typo in a date?)")
        for d in self.workdays:
            if d.weekday() < 5:
                raise ValueError(f"make-up working day {d} is a {d:%A}: only a Saturday or Sunday is worked in lieu")
            if self.from_ <= d <= self.to:
                raise ValueError(f"{d} is both a day off and a make-up working day")
        return self


class Year(BaseModel):
    """One year's arrangement: ``published`` (the State Council's notice, with its source) or ``statutory``
    (only the days the law fixes, 法定节假日, until the notice of the year is entered)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    year: Annotated[int, Field(ge=2000, le=2100)]
    status: Literal["published", "statutory"]
    source: Annotated[str, Field(min_length=1, max_length=300)]
    holidays: Annotated[list[Span], Field(min_length=1)]


class HolidaysFile(BaseModel):
    """The whole holidays.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    years: Annotated[list[Year], Field(min_length=1)]


@dataclass(frozen=True)
class Day:
    """A day the calendar names: a day off (``holiday``) or a weekend day worked (``workday``), and why."""

    kind: Literal["holiday", "workday"]
    name: str
    name_en: str


@dataclass(frozen=True)
class Holidays:
    """The city's calendar: its named days, and the years it covers with how sure they are."""

    days: Mapping[date, Day] = field(default_factory=dict)
    years: Mapping[int, str] = field(default_factory=dict)  # year -> published | statutory

    def day(self, d: date) -> Day | None:
        """Return what the calendar says of ``d`` (None: an ordinary day, by its day of the week)."""
        return self.days.get(d)

    def rest(self, d: date) -> bool:
        """Tell whether ``d`` is a day off: a holiday, or a Saturday or Sunday not worked in lieu."""
        named = self.days.get(d)
        return named.kind == "holiday" if named else d.weekday() >= 5


_KEYS = {"top": ("years",), "year": ("year", "status", "source", "holidays"),
         "holiday": ("name", "name_en", "from", "to", "workdays")}


def _message(error) -> str:
    """Say a pydantic error as a sentence, naming the keys a misspelt one could have been."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        parent = "top" if len(loc) == 1 else "holiday" if "holidays" in loc[:-1] else "year"
        return f"unknown key {loc[-1]!r} (expected one of {', '.join(_KEYS[parent])})"
    return _rules_message(error)


def load_holidays(path: str | Path) -> Holidays:
    """Load and validate holidays.yaml; raise RulesError naming the line of every problem found."""
    path = Path(path)
    parsed, lines = validated_file(path, HolidaysFile, "years", _message)
    days: dict[date, Day] = {}
    where: dict[date, int] = {}
    years: dict[int, str] = {}
    problems: list[tuple[int, str]] = []
    for i, y in enumerate(parsed.years):
        if y.year in years:
            problems.append((_line(lines, ("years", i, "year")), f"year {y.year} is listed twice"))
        years[y.year] = y.status
        for j, s in enumerate(y.holidays):
            at = _line(lines, ("years", i, "holidays", j))
            if y.year not in (s.from_.year, s.to.year):
                problems.append((at, f"{s.name} ({s.from_} to {s.to}) is not in {y.year}"))
                continue
            named = [(s.from_ + timedelta(days=k), Day("holiday", s.name, s.name_en))
                     for k in range((s.to - s.from_).days + 1)]
            named += [(d, Day("workday", s.name, s.name_en)) for d in s.workdays]
            for d, day in named:
                if d in days:
                    problems.append((at, f"{d} is already named at line {where[d]}"))
                    continue
                days[d], where[d] = day, at
    if problems:
        raise RulesError(path.name, problems)
    return Holidays(days, years)


def local_date(ms: int, tz: str) -> date:
    """Return the date in the city's time zone of an instant (epoch milliseconds)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz)).date()


def baseline_hours(now_ms: int, weeks: int, tz: str, calendar: Holidays) -> tuple[list[int], str]:
    """Return the past hours an anomaly baseline compares the current hour with, newest first, and how chosen.

    * An ordinary day (``week``): the same hour of the week in the last ``weeks`` weeks whose day was ordinary
      too; a week whose day was a holiday or a make-up working day is skipped and an earlier one taken (at most
      ``2 x weeks`` weeks back).
    * A holiday (``rest``): the same hour of the last ``weeks`` days off before it (earlier days of the same
      holiday, other holidays, Saturdays and Sundays not worked), at most ``2 x weeks`` weeks back: a holiday is
      not a Tuesday, whatever day of the week it falls on, and the same holiday a year ago is beyond the hour
      rollups' reach and differs in weather and in the weekday it falls on.
    * A make-up working day (``work``): the same hour of the last ``weeks`` working days before it.

    Hours are whole hours (epoch milliseconds); the city's day of each is read in its time zone.
    """
    hour = now_ms - now_ms % HOUR_MS
    today = calendar.day(local_date(hour, tz))
    if today is None:
        past = [hour - k * WEEK_MS for k in range(1, 2 * weeks + 1)]
        return [h for h in past if calendar.day(local_date(h, tz)) is None][:weeks], "week"
    rest = today.kind == "holiday"
    past = [hour - k * DAY_MS for k in range(1, 14 * weeks + 1)]
    return [h for h in past if calendar.rest(local_date(h, tz)) == rest][:weeks], "rest" if rest else "work"
