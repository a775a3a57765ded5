"""Replay the panorama as it stood at a past minute: check the time asked for, build that minute's state.

The counts, risk and trend come from the same rollups and code as the live state (``state.build_state`` with
the replayed minute as its end); only what the live state reads from "now" alone is read as of that minute
here: the newest events (by their time, not by arrival) and the feeds' freshness (from the minute rollups); and
what the live pages draw from the socket alone: the alerts open then (from their audit trail) and where each
unit stood (from its track).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import func, or_, select, union_all
from sqlalchemy.engine import Connection

from dashboard.core import errors
from dashboard.core.channels import DOMAINS
from dashboard.core.city import City
from dashboard.core.clock import DAY_MS, iso
from dashboard.core.messages import TICKER_EVENTS, alert_view, event_view, unit_view
from dashboard.core.scope import Scope
from dashboard.panorama.state import TREND_MINUTES, build_state, district_state
from dashboard.storage import alerts as alert_store
from dashboard.storage import units as unit_store
from dashboard.storage.incidents import OPEN_STATUSES, held_by
from dashboard.storage.models import district_minutes, events, incidents
from dashboard.storage.queries import HOURLY_MINUTES, RATE_MINUTES, stale

MINUTE_MS = 60_000
SPEEDS = (0, 1, 5, 15, 60)  # 0: paused
# How far back a replayed minute looks for its newest events and each feed's last event.
LOOKBACK_MS = DAY_MS
PAGE_MINUTES = 1440  # a page replays every short window (up to 24 h) and its trends in full


class BadReplay(errors.DomainError):
    """A replay time that is malformed, in the future or older than retention."""

    code = "bad_at"


def rollup_floor(now_ms: int, rollup_days: int) -> int:
    """Return the oldest minute the minute rollups still hold (``partitions.Retention``: whole UTC days)."""
    return (now_ms - rollup_days * DAY_MS) // DAY_MS * DAY_MS


def earliest(now_ms: int, rollup_days: int, minutes: int) -> int:
    """Return the earliest minute a window of ``minutes`` can be replayed at and still be counted in full:
    a window read from the minute rollups must start inside their retention; the long windows read the hour
    rollups (kept for years), and their minute must be inside it."""
    floor = rollup_floor(now_ms, rollup_days)
    return floor + (minutes * MINUTE_MS if minutes < HOURLY_MINUTES else 0)


def parse_at(text: str, now_ms: int, rollup_days: int, minutes: int, tz: str = "UTC") -> int:
    """Return the epoch ms of an RFC 3339 time (an offset or Z is required), refused with ``BadReplay`` when
    malformed, later than now or earlier than ``earliest``. The minute it falls in is what is replayed."""
    raw = (text or "").strip()
    try:
        if len(raw) > 40 or "T" not in raw.upper():
            raise ValueError
        when = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise BadReplay(f"at must be an RFC 3339 time such as 2026-11-26T08:30:00+08:00, not {raw[:40]!r}",
                        key="replay_bad_at") from None
    if when.tzinfo is None:
        raise BadReplay("at needs its offset from UTC (+08:00 or Z)", key="replay_bad_at")
    at_ms = int(when.timestamp() * 1000)
    if at_ms > now_ms:
        raise BadReplay("at is in the future: the panorama of now is GET /api/summary without at",
                        key="replay_future")
    first = earliest(now_ms, rollup_days, minutes)
    if at_ms < first:
        raise BadReplay(f"at is older than the {rollup_days} days kept (PANORAMA_ROLLUP_RETENTION_DAYS, less the "
                        f"window): the earliest this window can be replayed at is {iso(first, tz)}",
                        key="replay_too_old")
    return at_ms


def parse_speed(text: str | None) -> int:
    """Return a replay speed (0 paused, 1, 5, 15 or 60); a missing one is 1, anything else ``BadReplay``."""
    if text in (None, ""):
        return 1
    if not (text.isascii() and text.isdigit() and int(text) in SPEEDS):
        raise BadReplay(f"speed must be one of {', '.join(map(str, SPEEDS))}", key="replay_bad_speed")
    return int(text)


def events_as_of(conn: Connection, city: City, at_ms: int, limit: int = TICKER_EVENTS) -> list[dict]:
    """Return the newest events by their time at or before ``at_ms`` (the end of its minute), newest first.

    Per district, each an index range scan of ``ix_events_district_ts`` (no city-wide time index exists), then
    merged: the same rows whoever asks, however large the day's partition.
    """
    e = events.c
    end = at_ms - at_ms % MINUTE_MS + MINUTE_MS
    parts = [select(e.domain, e.event_id, e.ts_ms, e.kind, e.district, e.street, e.severity, e.title, e.value,
                    e.unit, e.seq)
             .where(e.district == d.code, e.ts_ms < end, e.ts_ms >= end - LOOKBACK_MS)
             .order_by(e.ts_ms.desc(), e.seq.desc()).limit(limit) for d in city.districts]
    if not parts:
        return []
    rows = union_all(*(p.subquery().select() for p in parts)).subquery()
    stmt = select(*(rows.c[k] for k in ("domain", "event_id", "ts_ms", "kind", "district", "street", "severity",
                                        "title", "value", "unit"))).order_by(rows.c.ts_ms.desc(),
                                                                             rows.c.seq.desc()).limit(limit)
    return [event_view(*row) for row in conn.execute(stmt)]


def feeds_as_of(conn: Connection, at_ms: int, stale_after: dict[str, int]) -> dict[str, dict]:
    """Return each domain's freshness as it stood at ``at_ms``, from the minute rollups: the age of its last
    minute with events (to the minute: the rollups keep no seconds) and its rate over the five minutes before."""
    end = at_ms - at_ms % MINUTE_MS + MINUTE_MS
    dm = district_minutes.c
    rows = conn.execute(select(dm.domain, func.max(dm.minute_ms),
                               func.sum(dm.n).filter(dm.minute_ms >= end - RATE_MINUTES * MINUTE_MS))
                        .where(dm.minute_ms < end, dm.minute_ms >= end - LOOKBACK_MS).group_by(dm.domain)).all()
    found = {domain: (last, n) for domain, last, n in rows}
    out = {}
    for domain in DOMAINS:
        last, n = found.get(domain, (None, 0))
        age = None if last is None else max(0.0, round((at_ms - last) / 1000, 1))
        out[domain] = {"last_event_age_s": age, "rate_per_min": round((n or 0) / RATE_MINUTES, 2),
                       "stale": stale(domain, age, stale_after)}
    return out


def replay_state(conn: Connection, city: City, at_ms: int, stale_after: dict[str, int], tz: str) -> dict:
    """Return the panorama's whole state as it stood at ``at_ms``, in the live state's shape, marked ``replay``,
    with the open alerts and the units as a socket's snapshot carries them (the whole city's: scope it)."""
    doc = build_state(conn, city, at_ms, stale_after)
    doc["events"] = events_as_of(conn, city, at_ms)
    doc["feeds"] = feeds_as_of(conn, at_ms, stale_after)
    doc["alerts"] = [alert_view(r, tz, None) for r in alert_store.open_as_of(conn, at_ms)]
    doc["units"] = [unit_view(r, tz) for r in unit_store.positions_as_of(conn, at_ms)]
    doc["replay"] = True
    return doc


def scoped(state: dict, scope: Scope, trend_of: Callable[[str], dict]) -> dict:
    """Return a replayed minute's state as ``scope`` reads it, as its socket snapshot would have carried it: a
    district centre's district (with its own trend, ``trend_of(code)``), a liaison's department's units, a
    wall's units without their tasks."""
    if scope.district is not None:
        state = district_state(state, scope.district, trend_of(scope.district))
    if "units" in state:
        state = {**state, "units": scope.units(state["units"])}
    return state


def incidents_as_of(conn: Connection, district: str, at_ms: int, limit: int, department: str | None = None
                    ) -> tuple[list[dict], int]:
    """Return the district's incidents being handled at ``at_ms`` (the first ``limit``, most severe and most
    recent first) and how many there were: opened by then, and either still being handled or last changed after
    it. An incident keeps no history of its status apart from the audit trail, so one resolved or closed after
    ``at_ms`` counts as still handled then (its last change is its resolution or closing)."""
    i = incidents.c
    where = [i.district == district, i.opened_ms <= at_ms,
             or_(i.status.in_(OPEN_STATUSES), i.updated_ms > at_ms)]
    if department is not None:
        where.append(held_by(department))
    rows = conn.execute(select(i.id, i.kind, i.severity, i.status, i.reports, i.title, i.opened_ms,
                               i.last_report_ms).where(*where)
                        .order_by(i.severity.desc(), i.last_report_ms.desc()).limit(limit)).mappings()
    total = conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one()
    return [dict(r) for r in rows], int(total)


def trend_end(data: object) -> int | None:
    """Return the minute a page's trend store (``{"state": {"trend": {"start", "step_ms"}}}``) ends at: the
    replayed minute of a replayed page; None for anything else."""
    try:
        tr = data["state"]["trend"]  # type: ignore[index]
        start, step = tr["start"], tr["step_ms"]
    except (KeyError, TypeError):
        return None
    if not (isinstance(start, int) and isinstance(step, int)) or isinstance(start, bool) or step != MINUTE_MS:
        return None
    return start + TREND_MINUTES * MINUTE_MS
