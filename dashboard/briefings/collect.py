"""Gather a briefing's numbers for one period from SQL: KPIs, districts, top incidents, dispatch, trends."""

from __future__ import annotations

import math
from statistics import median

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from dashboard.core.city import City
from dashboard.core.messages import incident_view
from dashboard.storage.models import district_minutes, incidents, task_events, tasks
from dashboard.core.clock import iso
from dashboard.storage.risk import pressure_score
from dashboard.core.channels import DOMAINS

TOP_INCIDENTS = 10
# Trend buckets: the smallest of these that keeps a period to at most ~100 points.
_STEPS_MIN = (1, 5, 10, 15, 30, 60, 120, 360, 720, 1440)


def _counts(conn: Connection, start: int, end: int) -> dict[str, list[int]]:
    """Return {district: [n per domain..., sev1..sev4]} for whole minutes in [start, end)."""
    dm = district_minutes.c
    rows = conn.execute(select(dm.district, dm.domain, func.sum(dm.n), func.sum(dm.sev1), func.sum(dm.sev2),
                               func.sum(dm.sev3), func.sum(dm.sev4))
                        .where(dm.minute_ms >= start, dm.minute_ms < end)
                        .group_by(dm.district, dm.domain)).all()
    out: dict[str, dict] = {}
    for district, domain, n, *sev in rows:
        if domain not in DOMAINS:
            continue
        entry = out.setdefault(district, {"counts": dict.fromkeys(DOMAINS, 0), "sev": [0, 0, 0, 0]})
        entry["counts"][domain] += int(n or 0)
        entry["sev"] = [a + int(b or 0) for a, b in zip(entry["sev"], sev)]
    return out


def _totals(by_district: dict) -> dict[str, int]:
    totals = dict.fromkeys(DOMAINS, 0)
    for entry in by_district.values():
        for dom in DOMAINS:
            totals[dom] += entry["counts"][dom]
    return totals


def _opened(conn: Connection, start: int, end: int) -> dict[str, int]:
    """Return incidents opened in [start, end) by district."""
    i = incidents.c
    rows = conn.execute(select(i.district, func.count()).where(i.opened_ms >= start, i.opened_ms < end)
                        .group_by(i.district)).all()
    return {d: int(n) for d, n in rows}


def change(cur: float, prev: float) -> float | None:
    """Return the change in percent against the previous period, None when it had nothing."""
    if not prev:
        return 0.0 if not cur else None
    return round(100.0 * (cur - prev) / prev, 1)


def trend_step_minutes(minutes: int) -> int:
    """Return the trend bucket in minutes for a period of ``minutes``."""
    return next((s for s in _STEPS_MIN if minutes / s <= 100), _STEPS_MIN[-1])


def trend(conn: Connection, start: int, end: int) -> dict:
    """Return the city's events per bucket and domain over [start, end) (the shape of figures.make_trend)."""
    step = trend_step_minutes(max(1, (end - start) // 60_000)) * 60_000
    n = max(1, -(-(end - start) // step))
    series = {dom: [0] * n for dom in DOMAINS}
    dm = district_minutes.c
    rows = conn.execute(select(dm.minute_ms, dm.domain, func.sum(dm.n))
                        .where(dm.minute_ms >= start, dm.minute_ms < end)
                        .group_by(dm.minute_ms, dm.domain)).all()
    for minute, domain, count in rows:
        if domain in series:
            series[domain][(minute - start) // step] += int(count or 0)
    return {"start": start, "step_ms": step, "series": series}


def importance(incident: dict) -> tuple:
    """Return the sort key that orders the top incidents: what mattered most in the period first.

    An incident scores points for each thing that made it matter, added up:

    * severity: 4 per level (一般/info 4, 较大/minor 8, 重大/major 12, 特别重大/critical 16);
    * reports: 2 per doubling of its reports, counted up to 16 reports (1: 0, 2: 2, 5: 4.6, 16 or more: 8);
    * departments involved: 2 per department it was dispatched to, counted up to 5 (10);
    * time to close: 1 per hour from opening to its resolution, counted up to 4 hours (4); an incident
      not resolved by the period's end counts until then.

    So a major fire with five reports sent to five departments and closed in three hours (12 + 4.6 + 10 + 3
    = 29.6) comes before a critical lone report nobody was sent to (16 + 0 + 0 + at most 4 = 20), and any
    incident more severe by one level starts 4 points ahead. Equal scores go to the more severe, then the
    earlier opened, then the lower id. ``incident`` holds ``severity``, ``reports``, ``departments`` (a
    count), ``hours_to_close``, ``opened_ms`` and ``id``; the score is the key's first item, negated.
    """
    points = (4 * incident["severity"]
              + 2 * math.log2(min(max(incident["reports"], 1), 16))
              + 2 * min(incident["departments"], 5)
              + min(max(incident["hours_to_close"], 0.0), 4.0))
    return -round(points, 6), -incident["severity"], incident["opened_ms"], incident["id"]


def top_incidents(conn: Connection, city: City, start: int, end: int, tz: str,
                  limit: int = TOP_INCIDENTS) -> list[dict]:
    """Return the ``limit`` most important incidents reported in the period (``importance``), with their tasks."""
    i, tk, e = incidents.c, tasks.c, task_events.c
    departments = (select(func.count(func.distinct(tk.department)))
                   .where(tk.incident_id == i.id, tk.created_ms < end).scalar_subquery())
    # The incident's own status changes are its audit rows without a task.
    resolved = (select(func.max(e.at_ms))
                .where(e.incident_id == i.id, e.task_id.is_(None), e.action == "status",
                       e.to_state == "resolved", e.at_ms < end).scalar_subquery())
    candidates = []
    for r in conn.execute(select(incidents, departments.label("n_departments"), resolved.label("resolved_ms"))
                          # a merged-away incident is the one it went into: counted there, once
                          .where(i.opened_ms < end, i.last_report_ms >= start, i.merged_into.is_(None))).mappings():
        row = dict(r)
        closed_ms = row["resolved_ms"] if row["resolved_ms"] is not None else end
        row["departments"] = int(row.pop("n_departments") or 0)
        row["hours_to_close"] = (closed_ms - row["opened_ms"]) / 3_600_000
        candidates.append(row)
    rows = sorted(candidates, key=importance)[:limit]
    by_incident: dict[int, list[dict]] = {r["id"]: [] for r in rows}
    names = {d["code"]: d for d in city.departments}
    if rows:
        for t in conn.execute(select(tk.incident_id, tk.department, tk.state, tk.escalated)
                              .where(tk.incident_id.in_(list(by_incident))).order_by(tk.id)).mappings():
            dep = names.get(t["department"], {})
            by_incident[t["incident_id"]].append({"department": t["department"], "name": dep.get("name"),
                                                  "name_en": dep.get("name_en"), "state": t["state"],
                                                  "escalated": bool(t["escalated"])})
    return [{**incident_view(r, tz, domain=True), "street": r["street"],
             "last_report_at": iso(r["last_report_ms"], tz), "departments": r["departments"],
             "hours_to_close": round(r["hours_to_close"], 2), "importance": round(-importance(r)[0], 1),
             "tasks": by_incident[r["id"]]} for r in rows]


def dispatch_performance(conn: Connection, city: City, start: int, end: int) -> list[dict]:
    """Return, per department, what happened in the period: tasks dispatched and their incidents,
    acknowledgements and resolutions with the median seconds from dispatch, and deadlines missed."""
    t, e = tasks.c, task_events.c
    out: dict[str, dict] = {}

    def entry(dep: str) -> dict:
        return out.setdefault(dep, {"department": dep, "tasks": 0, "incidents": set(), "ack_s": [],
                                    "resolve_s": [], "deadlines_missed": 0})

    for dep, incident_id in conn.execute(select(t.department, t.incident_id)
                                         .where(t.created_ms >= start, t.created_ms < end)).all():
        row = entry(dep)
        row["tasks"] += 1
        row["incidents"].add(incident_id)
    # Each task reaches a state once (transitions only go forward), so each row is one task's time.
    moved = conn.execute(
        select(t.department, e.action, e.to_state, e.at_ms - t.created_ms)
        .join(tasks, tasks.c.id == e.task_id)
        .where(e.at_ms >= start, e.at_ms < end,
               or_(and_(e.action == "transition", e.to_state.in_(["acknowledged", "resolved"])),
                   e.action == "escalate"))).all()
    for dep, action, to_state, elapsed in moved:
        row = entry(dep)
        if action == "escalate":
            row["deadlines_missed"] += 1
        else:
            row["ack_s" if to_state == "acknowledged" else "resolve_s"].append(elapsed / 1000)
    names = {d["code"]: d for d in city.departments}
    result = []
    for dep, row in out.items():
        info = names.get(dep, {})
        result.append({
            "department": dep, "name": info.get("name", dep), "name_en": info.get("name_en", dep),
            "tasks": row["tasks"], "incidents": len(row["incidents"]),
            "acknowledged": len(row["ack_s"]),
            "median_ack_s": round(median(row["ack_s"]), 1) if row["ack_s"] else None,
            "resolved": len(row["resolve_s"]),
            "median_resolve_s": round(median(row["resolve_s"]), 1) if row["resolve_s"] else None,
            "deadlines_missed": row["deadlines_missed"],
        })
    result.sort(key=lambda r: (-r["tasks"], -r["deadlines_missed"], r["department"]))
    return result


def collect(conn: Connection, city: City, start: int, end: int, tz: str) -> dict:
    """Return everything a briefing shows for [start, end), against the period of equal length before it."""
    minutes = max(1, (end - start) // 60_000)
    prev_start = start - (end - start)
    cur, prev = _counts(conn, start, end), _counts(conn, prev_start, start)
    opened, opened_prev = _opened(conn, start, end), _opened(conn, prev_start, start)
    totals, totals_prev = _totals(cur), _totals(prev)
    sev = [sum(e["sev"][i] for e in cur.values()) for i in range(4)]
    districts = []
    for d in city.districts:
        c = cur.get(d.code, {"counts": dict.fromkeys(DOMAINS, 0), "sev": [0, 0, 0, 0]})
        total = sum(c["counts"].values())
        total_prev = sum(prev[d.code]["counts"].values()) if d.code in prev else 0
        districts.append({**d.as_ref(), "population": d.population, "counts": c["counts"], "total": total,
                          "previous_total": total_prev, "change_pct": change(total, total_prev),
                          "major": c["sev"][2] + c["sev"][3], "incidents_opened": opened.get(d.code, 0),
                          "risk": pressure_score(tuple(c["sev"]), minutes, d.population)})
    dispatch = dispatch_performance(conn, city, start, end)
    events, events_prev = sum(totals.values()), sum(totals_prev.values())
    n_opened, n_opened_prev = sum(opened.values()), sum(opened_prev.values())
    return {
        "period": {"start": iso(start, tz), "end": iso(end, tz), "minutes": minutes},
        "previous_period": {"start": iso(prev_start, tz), "end": iso(start, tz)},
        "kpis": {
            "events": events, "events_previous": events_prev, "events_change_pct": change(events, events_prev),
            "by_domain": {dom: {"count": totals[dom], "previous": totals_prev[dom],
                                "change_pct": change(totals[dom], totals_prev[dom])} for dom in DOMAINS},
            "by_severity": {str(i + 1): n for i, n in enumerate(sev)},
            "incidents_opened": n_opened, "incidents_opened_previous": n_opened_prev,
            "incidents_opened_change_pct": change(n_opened, n_opened_prev),
            "tasks_dispatched": sum(r["tasks"] for r in dispatch),
            "deadlines_missed": sum(r["deadlines_missed"] for r in dispatch),
        },
        "districts": districts,
        "top_incidents": top_incidents(conn, city, start, end, tz),
        "dispatch": dispatch,
        "trend": trend(conn, start, end),
    }
