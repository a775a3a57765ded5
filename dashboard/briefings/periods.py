"""Turn the briefing cron expression into slots: the latest due, the one before, and the period each covers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# How far back to look for the latest slot: a day covers any usual schedule; a yearly cron still works.
_LOOKBACK = (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367))
# A manual briefing covers at least this much: made just after a slot, it still reports the period before.
MANUAL_MIN_MS = 3_600_000
DISABLED = ("", "off", "none", "false", "0")


def make_trigger(cron: str, tz: str) -> CronTrigger | None:
    """Return the trigger of a 5-field crontab in the city's time zone, None when briefings are off."""
    if cron is None or str(cron).strip().lower() in DISABLED:
        return None
    fields = str(cron).split()
    if len(fields) == 5:
        fields[4] = crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=ZoneInfo(tz))


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """Return a crontab day-of-week field with its numbers as day names, as APScheduler reads them.

    In crontab (and SPEC §7) 0 and 7 are Sunday and 1-5 Monday to Friday; APScheduler's ``from_crontab`` counts
    0 as Monday, so ``0 8 * * 1-5`` ran Tuesday to Saturday. Names mean the same to both; numbers, ranges and
    steps are turned into the names of the days crontab means. A field that is not crontab is left for
    APScheduler to refuse."""
    out = []
    for token in field.split(","):
        base, _, step = token.partition("/")
        bounds = [0, 7] if base == "*" else base.split("-")
        if not all(str(x).isdigit() for x in bounds) or len(bounds) > 2 or (step and not step.isdigit()) \
                or token == "*":
            out.append(token)  # names, '*' alone, or something APScheduler will judge
            continue
        lo = int(bounds[0])
        hi = int(bounds[-1]) if len(bounds) == 2 else (7 if step else lo)  # crontab's "a/n": a to the week's end
        if hi > 7 or lo > hi:
            out.append(token)
            continue
        out.extend(_DAYS[d % 7] for d in range(lo, hi + 1, int(step or 1)))
    return ",".join(dict.fromkeys(out))


def to_ms(dt: datetime) -> int:
    """Return epoch milliseconds of an aware datetime."""
    return int(dt.timestamp() * 1000)


def from_ms(ms: int, tz: str) -> datetime:
    """Return epoch milliseconds as an aware datetime in ``tz``."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz))


def _fires_between(trigger: CronTrigger, start: datetime, end: datetime):
    """Yield the trigger's fire times in [start, end]."""
    t = trigger.get_next_fire_time(None, start)
    while t is not None and t <= end:
        yield t
        t = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))


def latest_slot(trigger: CronTrigger, now: datetime) -> datetime | None:
    """Return the newest fire time at or before ``now`` (None if none within a year)."""
    for back in _LOOKBACK:
        last = None
        for last in _fires_between(trigger, now - back, now):
            pass
        if last is not None:
            return last
    return None


def previous_slot(trigger: CronTrigger, slot: datetime) -> datetime | None:
    """Return the fire time just before ``slot``."""
    return latest_slot(trigger, slot - timedelta(microseconds=1))


def slot_key(slot: datetime) -> str:
    """Return the exactly-once key of a scheduled slot: its local minute with the offset."""
    return "schedule:" + slot.isoformat(timespec="minutes")


def scheduled_period(trigger: CronTrigger, slot: datetime) -> tuple[int, int]:
    """Return [start, end) in ms of a scheduled slot: since the slot before it (a day when there is none)."""
    prev = previous_slot(trigger, slot) or slot - timedelta(days=1)
    return to_ms(prev), to_ms(slot)


def manual_period(trigger: CronTrigger | None, now_ms: int, tz: str) -> tuple[int, int]:
    """Return [start, end) in ms of a briefing asked for now: whole minutes since the last slot an hour old."""
    end = now_ms - now_ms % 60_000
    if trigger is None:
        return end - 86_400_000, end
    slot = latest_slot(trigger, from_ms(end - MANUAL_MIN_MS, tz))
    start = to_ms(slot) if slot is not None else end - 86_400_000
    return start, end
