"""Build the live state of the city that the gateway pushes and the polling fallback returns."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from dashboard.core.city import City
from dashboard.storage.queries import feed_freshness
from dashboard.storage.models import district_minutes, events
from dashboard.storage.queries import WINDOWS, window_bounds, window_counts
from dashboard.storage.risk import RiskCache, district_risks
from dashboard.core.channels import DOMAINS
from dashboard.core.messages import TICKER_EVENTS, event_view

TREND_MINUTES = 60
MINUTE_MS = 60_000


def latest_events(conn: Connection, limit: int = TICKER_EVENTS, district: str | None = None) -> list[dict]:
    """Return the newest stored events, newest first (by arrival: the primary key, never a scan)."""
    e = events.c
    stmt = select(e.domain, e.event_id, e.ts_ms, e.kind, e.district, e.street, e.severity, e.title, e.value,
                  e.unit).order_by(e.seq.desc()).limit(limit)
    if district is not None:
        stmt = stmt.where(e.district == district)
    return [event_view(*row) for row in conn.execute(stmt)]


def trend_bounds(now_ms: int, minutes: int = TREND_MINUTES) -> tuple[int, int]:
    """Return [start, end) in ms of a per-minute trend: the last ``minutes`` whole minutes, the current one left out.

    The current minute is still filling: drawn, it read as a fall to near zero at the end of every line. Every
    per-minute trend (the panorama's, the wall's spotlight, a district's) takes its minutes from here, and the
    browser draws the minutes it is sent, so the line ends at the last complete minute everywhere.
    """
    end = now_ms - now_ms % MINUTE_MS
    return end - minutes * MINUTE_MS, end


def trend(conn: Connection, now_ms: int, minutes: int = TREND_MINUTES, district: str | None = None) -> dict:
    """Return per-minute counts of each domain over the last ``minutes`` complete minutes, oldest first."""
    start, end = trend_bounds(now_ms, minutes)
    dm = district_minutes.c
    stmt = (select(dm.minute_ms, dm.domain, func.sum(dm.n)).where(dm.minute_ms >= start, dm.minute_ms < end)
            .group_by(dm.minute_ms, dm.domain))
    if district is not None:
        stmt = stmt.where(dm.district == district)
    series = {d: [0] * minutes for d in DOMAINS}
    for minute, domain, n in conn.execute(stmt):
        if domain in series:
            series[domain][(minute - start) // MINUTE_MS] = int(n)
    return {"start": start, "step_ms": MINUTE_MS, "series": series}


def build_state(conn: Connection, city: City, now_ms: int, stale_after: dict[str, int],
                risk_cache: dict | RiskCache | None = None) -> dict:
    """Return the whole live state: every window's counts and risk, trends, feed freshness, newest events.

    Risk is each district against its own seasonal baseline, held up by its open alerts (``storage.risk``); a
    builder that runs often (the gateway) passes a dict of its own as ``risk_cache`` so the long windows'
    baselines are read once an hour.

    Every window is in it, so a screen switches window without asking the server again.
    """
    counts = window_counts(conn, now_ms, tuple(WINDOWS.values()))
    risks = district_risks(conn, city.districts, now_ms,
                           {m: (window_bounds(now_ms, m)[0], counts[m]["cur"]) for m in WINDOWS.values()}, risk_cache)
    windows = {}
    for name, minutes in WINDOWS.items():
        start, end = window_bounds(now_ms, minutes)
        cur = counts[minutes]["cur"]
        basis, risk = risks[minutes]
        totals = {d: 0 for d in DOMAINS}
        districts = {}
        for dist in city.districts:
            per = {d: cur.get((dist.code, d), [0] * 5) for d in DOMAINS}
            districts[dist.code] = {"counts": {d: per[d][0] for d in DOMAINS}, "risk": risk[dist.code]}
            for d in DOMAINS:
                totals[d] += per[d][0]
        # risk_basis: "baseline" (the district against its own weeks) or "population" (no baseline yet)
        windows[name] = {"start": start, "end": end, "minutes": minutes, "totals": totals, "risk_basis": basis,
                         "previous": counts[minutes]["prev"], "districts": districts}
    return {
        "generated_at": now_ms,
        "windows": windows,
        "trend": trend(conn, now_ms),
        "feeds": feed_freshness(conn, now_ms, stale_after),
        "events": latest_events(conn),
    }
