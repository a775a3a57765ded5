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


def district_trends(conn: Connection, now_ms: int, minutes: int = TREND_MINUTES) -> dict[str, dict]:
    """Return ``trend`` of every district that has counts in the last ``minutes``, in one read (the gateway's: each
    district centre's screens draw their own district's line)."""
    start, end = trend_bounds(now_ms, minutes)
    dm = district_minutes.c
    out: dict[str, dict] = {}
    for district, minute, domain, n in conn.execute(
            select(dm.district, dm.minute_ms, dm.domain, func.sum(dm.n))
            .where(dm.minute_ms >= start, dm.minute_ms < end).group_by(dm.district, dm.minute_ms, dm.domain)):
        if domain in DOMAINS:
            series = out.setdefault(district, {"start": start, "step_ms": MINUTE_MS,
                                               "series": {d: [0] * minutes for d in DOMAINS}})["series"]
            series[domain][(minute - start) // MINUTE_MS] = int(n)
    return out


def empty_trend(now_ms: int, minutes: int = TREND_MINUTES) -> dict:
    """Return a trend with no counts (a district with nothing in the last ``minutes``)."""
    return {"start": trend_bounds(now_ms, minutes)[0], "step_ms": MINUTE_MS,
            "series": {d: [0] * minutes for d in DOMAINS}}


def district_windows(windows: dict, code: str) -> dict:
    """Return a state's windows as a district centre of ``code`` reads them: its district only, its counts as
    the totals, its previous window as the previous."""
    out = {}
    for name, w in windows.items():
        entry = (w.get("districts") or {}).get(code)
        zero = {d: 0 for d in DOMAINS}
        out[name] = {**w, "totals": dict(entry["counts"]) if entry else zero,
                     "previous": dict(entry.get("previous") or zero) if entry else zero,
                     "districts": {code: entry} if entry else {}}
    return out


def district_state(state: dict, code: str, trend_of_district: dict | None) -> dict:
    """Return a live state (or a delta's ``state`` part) as a district centre of ``code`` reads it: the windows of
    its district, its own trend (``trend_of_district``), its events, alerts and units; what a part does not hold
    stays out."""
    out = dict(state)
    if "windows" in state:
        out["windows"] = district_windows(state["windows"], code)
    if "trend" in state:
        out["trend"] = trend_of_district or empty_trend(state.get("generated_at") or 0)
    for part in ("events", "alerts", "units"):  # (alerts and units: a snapshot's, a replayed minute's)
        if part in state:
            out[part] = [e for e in state[part] if e.get("district") == code]
    return out


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
        prev_by = counts[minutes].get("prev_by", {})
        for dist in city.districts:
            per = {d: cur.get((dist.code, d), [0] * 5) for d in DOMAINS}
            # "previous": the district's own previous window, what its district centre's KPI deltas compare with
            districts[dist.code] = {"counts": {d: per[d][0] for d in DOMAINS}, "risk": risk[dist.code],
                                    "previous": {d: prev_by.get((dist.code, d), 0) for d in DOMAINS}}
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
