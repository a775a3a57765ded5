"""Say a briefing schedule in words ("每天 08:00、18:00", "Daily 08:00 and 18:00") instead of its cron string.

The words come from the times the product's own trigger fires (``periods.make_trigger``) over a sample
fortnight, not from reading the string again: whatever the trigger makes of a field is what the words say. Shapes without plain words (steps in minutes, some months only, ...) are shown as the
expression itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.briefings import periods
from dashboard.briefings.text import bt

# A Monday at midnight: the sample fortnight starts here (in the schedule's time zone).
_MONDAY = datetime(2024, 1, 1)
_MAX_TIMES = 6  # more fire times a day than this read better as "hourly" or as the expression
_DAY_NAMES = {"zh": "一二三四五六日", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def _join(items: list[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cap(words: str) -> str:
    return words[:1].upper() + words[1:]


def _days(weekdays: list[int], lang: str) -> str:
    """Return the words for a set of weekdays (0 = Monday, as datetime.weekday counts)."""
    if weekdays == list(range(7)):
        return bt("cron_daily", lang)
    if weekdays == list(range(5)):
        return bt("cron_weekdays", lang)
    if weekdays == [5, 6]:
        return bt("cron_weekends", lang)
    names = _DAY_NAMES[lang]
    if len(weekdays) >= 3 and weekdays == list(range(weekdays[0], weekdays[-1] + 1)):
        return bt("cron_day_range", lang, first=names[weekdays[0]], last=names[weekdays[-1]])
    if lang == "zh":
        return "每周" + "、".join(names[d] for d in weekdays)
    return _join([names[d] for d in weekdays], lang)


def _fires(trigger, tz: str, days: int) -> list[datetime]:
    start = _MONDAY.replace(tzinfo=ZoneInfo(tz))
    return list(periods._fires_between(trigger, start, start + timedelta(days=days) - timedelta(microseconds=1)))


def cron_words(cron: str | None, lang: str, tz: str) -> str:
    """Return the schedule ``cron`` (a 5-field crontab as ``PANORAMA_BRIEFING_CRON`` holds it) in words."""
    lang = "en" if lang == "en" else "zh"
    raw = bt("cron_raw", lang, cron=" ".join(str(cron).split()))
    try:
        trigger = periods.make_trigger(cron, tz)
    except ValueError:  # the scheduler refuses it at start; a page showing the schedule must not fail
        return raw
    if trigger is None:
        return bt("cron_off", lang)
    minute, hour, day, month, _dow = str(cron).split()
    if month != "*":
        return raw
    if day != "*":
        return _monthly(trigger, tz, lang, raw) if _dow == "*" else raw
    fires = _fires(trigger, tz, 14)
    by_day: dict[int, list[str]] = {}
    for t in fires:
        by_day.setdefault(t.weekday(), [])
        stamp = t.strftime("%H:%M")
        if stamp not in by_day[t.weekday()]:
            by_day[t.weekday()].append(stamp)
    times = {tuple(v) for v in by_day.values()}
    if len(times) != 1:
        return raw
    (times_of_day,) = times
    weekdays = sorted(by_day)
    if len(times_of_day) > _MAX_TIMES:
        minutes = {s[3:] for s in times_of_day}
        if hour == "*" and len(times_of_day) == 24 and len(minutes) == 1:
            (mm,) = minutes
            every = bt("cron_hourly_on_the_hour", lang) if mm == "00" else bt("cron_hourly_at", lang, m=int(mm))
            return _cap(every if weekdays == list(range(7)) else f"{_days(weekdays, lang)} {every}")
        return raw
    return f"{_days(weekdays, lang)} {_join(list(times_of_day), lang)}"


def _monthly(trigger, tz: str, lang: str, raw: str) -> str:
    """Return the words of a schedule on some days of every month, or ``raw`` when it is not that."""
    fires = _fires(trigger, tz, 366)
    days = sorted({t.day for t in fires})
    times = sorted({t.strftime("%H:%M") for t in fires})
    if not days or len(times) > _MAX_TIMES or len(fires) != (12 * len(days) - _short_months(days)) * len(times):
        return raw
    return bt("cron_monthly", lang, days=_join([bt("cron_day_of_month", lang, d=d) for d in days], lang),
              times=_join(times, lang))


def _short_months(days: list[int]) -> int:
    """Return how many (day, month) pairs of 2024 do not exist for ``days`` (a 31st in April, ...)."""
    lengths = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return sum(1 for d in days for n in lengths if d > n)
