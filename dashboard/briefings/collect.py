"""Gather a briefing's numbers for one period from SQL: KPIs, districts, top incidents, dispatch, trends.

The same numbers for one district centre (``district``): its counts, its streets and kinds, the incidents it
reads (``storage.incidents.of_district``: its own and those handed down to it), their dispatch, its alerts.
"""

from __future__ import annotations

import math
from statistics import median

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.engine import Connection

from dashboard.core.alerts import LEVELS
from dashboard.core.city import City, District
from dashboard.core.messages import incident_view
from dashboard.storage.incidents import of_district
from dashboard.storage.models import alerts, district_minutes, incidents, task_events, tasks
from dashboard.storage.queries import grouped
from dashboard.core.clock import iso
from dashboard.storage.risk import pressure_score
from dashboard.core.channels import DOMAINS

TOP_INCIDENTS = 10
TOP_KINDS = 10
DISTRICT_ALERTS = 20  # the alerts a district's briefing lists (all are counted)
# Trend buckets: the smallest of these that keeps a period to at most ~100 points.
_STEPS_MIN = (1, 5, 10, 15, 30, 60, 120, 360, 720, 1440)


def _of(column, district: str | None):
    """Return the condition ``column`` is ``district`` (None: no condition, the city)."""
    return true() if district is None else column == district


def _read_by(district: str | None):
    """Return the condition on ``incidents`` that the reader (None: the city) reads the incident."""
    return true() if district is None else of_district(district)


def _counts(conn: Connection, start: int, end: int, district: str | None = None) -> dict[str, list[int]]:
    """Return {district: [n per domain..., sev1..sev4]} for whole minutes in [start, end) (one ``district``'s)."""
    dm = district_minutes.c
    rows = conn.execute(select(dm.district, dm.domain, func.sum(dm.n), func.sum(dm.sev1), func.sum(dm.sev2),
                               func.sum(dm.sev3), func.sum(dm.sev4))
                        .where(dm.minute_ms >= start, dm.minute_ms < end, _of(dm.district, district))
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


def _opened(conn: Connection, start: int, end: int, district: str | None = None) -> dict[str, int]:
    """Return incidents opened in [start, end) by district (a ``district``'s: those it reads, under its code)."""
    i = incidents.c
    if district is not None:
        n = conn.execute(select(func.count()).where(i.opened_ms >= start, i.opened_ms < end,
                                                    of_district(district))).scalar()
        return {district: int(n or 0)}
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


def trend(conn: Connection, start: int, end: int, district: str | None = None) -> dict:
    """Return the city's (a ``district``'s) events per bucket and domain over [start, end) (the shape of
    figures.make_trend)."""
    step = trend_step_minutes(max(1, (end - start) // 60_000)) * 60_000
    n = max(1, -(-(end - start) // step))
    series = {dom: [0] * n for dom in DOMAINS}
    dm = district_minutes.c
    rows = conn.execute(select(dm.minute_ms, dm.domain, func.sum(dm.n))
                        .where(dm.minute_ms >= start, dm.minute_ms < end, _of(dm.district, district))
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
                  limit: int = TOP_INCIDENTS, district: str | None = None) -> list[dict]:
    """Return the ``limit`` most important incidents reported in the period (``importance``), with their tasks
    (``district``: of the incidents that district centre reads)."""
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
                          .where(i.opened_ms < end, i.last_report_ms >= start, i.merged_into.is_(None),
                                 _read_by(district))).mappings():
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


def dispatch_performance(conn: Connection, city: City, start: int, end: int,
                         district: str | None = None) -> list[dict]:
    """Return, per department, what happened in the period: tasks dispatched and their incidents,
    acknowledgements and resolutions with the median seconds from dispatch, and deadlines missed
    (``district``: the tasks of the incidents that district centre reads)."""
    t, e = tasks.c, task_events.c
    # A district centre's dispatch: its incidents' tasks, whichever department they went to.
    mine = true() if district is None else t.incident_id.in_(select(incidents.c.id).where(of_district(district)))
    out: dict[str, dict] = {}

    def entry(dep: str) -> dict:
        return out.setdefault(dep, {"department": dep, "tasks": 0, "incidents": set(), "ack_s": [],
                                    "resolve_s": [], "deadlines_missed": 0})

    for dep, incident_id in conn.execute(select(t.department, t.incident_id)
                                         .where(t.created_ms >= start, t.created_ms < end, mine)).all():
        row = entry(dep)
        row["tasks"] += 1
        row["incidents"].add(incident_id)
    # Each task reaches a state once (transitions only go forward), so each row is one task's time.
    moved = conn.execute(
        select(t.department, e.action, e.to_state, e.at_ms - t.created_ms)
        .join(tasks, tasks.c.id == e.task_id)
        .where(e.at_ms >= start, e.at_ms < end, mine,
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


def _street_counts(conn: Connection, district: District, start: int, end: int) -> dict:
    """Return {street name (None: streets the pack does not know): counts per domain} of ``district``."""
    name_of = {s.name: s.name for s in district.streets} | {s.code: s.name for s in district.streets if s.code}
    out: dict = {}
    for street, domain, n, *_ in grouped(conn, start, end, "street", "domain", district=district.code):
        if domain in DOMAINS and street:
            counts = out.setdefault(name_of.get(street), dict.fromkeys(DOMAINS, 0))
            counts[domain] += int(n or 0)
    return out


def streets(conn: Connection, district: District, start: int, end: int, prev_start: int) -> list[dict]:
    """Return ``district``'s streets with their counts by domain in the period and the change against the one
    before, busiest first; the events of streets the pack does not know in one row named None, if any."""
    cur, prev = _street_counts(conn, district, start, end), _street_counts(conn, district, prev_start, start)
    names = [(s.name, s.name_en) for s in district.streets] + ([(None, None)] if None in cur or None in prev else [])
    rows = []
    for name, name_en in names:
        counts = cur.get(name, dict.fromkeys(DOMAINS, 0))
        total, total_prev = sum(counts.values()), sum(prev.get(name, {}).values())
        rows.append({"name": name, "name_en": name_en, "counts": counts, "total": total,
                     "previous_total": total_prev, "change_pct": change(total, total_prev)})
    rows.sort(key=lambda r: (-r["total"], r["name"] is None, r["name"] or ""))
    return rows


def kinds(conn: Connection, district: str, start: int, end: int, prev_start: int,
          limit: int = TOP_KINDS) -> list[dict]:
    """Return ``district``'s most frequent event kinds in the period with the previous period's count."""
    counts: dict[tuple[str, str], list[int]] = {}
    for i, (lo, hi) in enumerate(((start, end), (prev_start, start))):
        for domain, kind, n, *_ in grouped(conn, lo, hi, "domain", "kind", district=district):
            if domain in DOMAINS and kind:
                counts.setdefault((domain, kind), [0, 0])[i] += int(n or 0)
    rows = [{"domain": dom, "kind": k, "count": n, "previous": p, "change_pct": change(n, p)}
            for (dom, k), (n, p) in counts.items() if n]
    rows.sort(key=lambda r: (-r["count"], r["domain"], r["kind"]))
    return rows[:limit]


def district_alerts(conn: Connection, district: str, start: int, end: int, tz: str,
                    limit: int = DISTRICT_ALERTS) -> dict:
    """Return the alerts of ``district`` that fired in the period: how many of each level, and the ``limit``
    most severe (then the earliest) with their place, title and whether they have ended."""
    a = alerts.c
    fired = and_(a.district == district, a.fired_ms >= start, a.fired_ms < end)
    by_level = dict.fromkeys(LEVELS, 0)
    for level, n in conn.execute(select(a.level, func.count()).where(fired).group_by(a.level)).all():
        if level in by_level:
            by_level[level] = int(n)
    rank = case({lvl: i for i, lvl in enumerate(LEVELS)}, value=a.level, else_=-1)
    rows = conn.execute(select(a.id, a.rule, a.level, a.status, a.zone, a.domain, a.fired_ms, a.resolved_ms,
                               a.title, a.title_en).where(fired)
                        .order_by(rank.desc(), a.fired_ms, a.id).limit(limit)).mappings().all()
    return {"total": sum(by_level.values()), "by_level": by_level,
            "list": [{"id": r["id"], "rule": r["rule"], "level": r["level"], "status": r["status"],
                      "zone": r["zone"], "domain": r["domain"], "fired_at": iso(r["fired_ms"], tz),
                      "resolved_at": iso(r["resolved_ms"], tz) if r["resolved_ms"] else None,
                      "title": r["title"], "title_en": r["title_en"]} for r in rows]}


def collect(conn: Connection, city: City, start: int, end: int, tz: str, district: str | None = None) -> dict:
    """Return everything a briefing shows for [start, end), against the period of equal length before it.

    ``district``: a district centre's briefing, the same numbers of that district alone (its one row in
    ``districts``), with its ``streets``, ``kinds`` and ``alerts`` (KeyError for a code the pack lacks).
    """
    minutes = max(1, (end - start) // 60_000)
    prev_start = start - (end - start)
    cur, prev = _counts(conn, start, end, district), _counts(conn, prev_start, start, district)
    opened, opened_prev = _opened(conn, start, end, district), _opened(conn, prev_start, start, district)
    totals, totals_prev = _totals(cur), _totals(prev)
    sev = [sum(e["sev"][i] for e in cur.values()) for i in range(4)]
    districts = []
    for d in city.districts if district is None else (city.by_code[district],):
        c = cur.get(d.code, {"counts": dict.fromkeys(DOMAINS, 0), "sev": [0, 0, 0, 0]})
        total = sum(c["counts"].values())
        total_prev = sum(prev[d.code]["counts"].values()) if d.code in prev else 0
        districts.append({**d.as_ref(), "population": d.population, "counts": c["counts"], "total": total,
                          "previous_total": total_prev, "change_pct": change(total, total_prev),
                          "major": c["sev"][2] + c["sev"][3], "incidents_opened": opened.get(d.code, 0),
                          "risk": pressure_score(tuple(c["sev"]), minutes, d.population)})
    dispatch = dispatch_performance(conn, city, start, end, district)
    events, events_prev = sum(totals.values()), sum(totals_prev.values())
    n_opened, n_opened_prev = sum(opened.values()), sum(opened_prev.values())
    scoped = {}
    if district is not None:
        scoped = {"streets": streets(conn, city.by_code[district], start, end, prev_start),
                  "kinds": kinds(conn, district, start, end, prev_start),
                  "alerts": district_alerts(conn, district, start, end, tz)}
    return {
        "district": city.by_code[district].as_ref() if district is not None else None,
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
        "top_incidents": top_incidents(conn, city, start, end, tz, district=district),
        "dispatch": dispatch,
        "trend": trend(conn, start, end, district),
        **scoped,
    }
