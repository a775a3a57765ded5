"""Merge two incidents that are one, split one that is two: reports, tasks and their audit follow.

Each write runs in the caller's transaction, like ``board``'s, and returns what changed for the caller to publish.
No new status: a merged-away incident is ``closed`` with ``merged_into`` naming where it went, and ingest's join
(``storage.incidents.attach``) follows that link. Both hold ingest's join locks of the incidents' places first, so
no batch joins a report to an incident while its reports move.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from dashboard.core.city import City
from dashboard.dispatch import board as d
from dashboard.dispatch import handover
from dashboard.storage.incidents import distance_m, involved, lock_places
from dashboard.storage.models import events, incident_reports, incidents, task_events, tasks

OPEN = ("open", "dispatched", "in_progress")


class Moved(NamedTuple):
    """What a merge or split changed: the incidents as they now are and the tasks written; publish both."""

    incidents: list[dict]
    tasks: list[dict]


def _places(conn: Connection, ids: Sequence[int]) -> None:
    """Take the join locks of the incidents' places, then lock their rows in id order (no deadlock with ingest,
    which takes the same locks first, or with another merge)."""
    rows = conn.execute(select(incidents.c.id, incidents.c.district, incidents.c.kind)
                        .where(incidents.c.id.in_(list(ids)))).all()
    missing = set(ids) - {r.id for r in rows}
    if missing:
        raise d.NotFound(f"no incident {min(missing)}")
    lock_places(conn, [(r.district, r.kind) for r in rows])


def _fresh(inc: dict, version: int) -> None:
    if inc["version"] != version:
        raise d.VersionConflict(f"incident {inc['id']} is at version {inc['version']}, not {version}: reload it")


def _guarded(conn: Connection, incident_id: int, version: int, **values) -> dict:
    """Write the incident still at ``version``, raising VersionConflict (the whole write rolls back) if it moved on:
    the version guard alone keeps two writers apart where the row lock is a no-op (SQLite)."""
    row = conn.execute(update(incidents).where(incidents.c.id == incident_id, incidents.c.version == version)
                       .values(**values, version=incidents.c.version + 1).returning(*incidents.c)).mappings().first()
    if row is None:
        raise d.VersionConflict(f"incident {incident_id} changed meanwhile: reload it")
    return dict(row)


def merge(conn: Connection, away_id: int, into_id: int, version: int, actor: str, note: str | None,
          now_ms: int, city: City | None = None) -> Moved:
    """Merge incident ``away_id`` (at ``version``) into ``into_id``: its reports and live tasks move there (a task
    of a department that already holds a live one there is ended instead), and it closes, ``merged_into`` set.
    With ``city``, the incident merged into goes up to the city centre when the merge makes its severity the
    city's or brings it another district's reports (``handover.after_merge``)."""
    if away_id == into_id:
        raise d.InvalidTransition(f"incident {away_id} cannot be merged into itself", key="merge_self")
    _places(conn, (away_id, into_id))
    locked = {i: d.lock_incident(conn, i) for i in sorted((away_id, into_id))}
    away, into = locked[away_id], locked[into_id]
    _fresh(away, version)
    if away["status"] not in OPEN:
        raise d.InvalidTransition(f"incident {away_id} is {away['status']}: only an open incident is merged",
                                  key="merge_done")
    if into["merged_into"] is not None:
        raise d.InvalidTransition(f"incident {into_id} was merged into {into['merged_into']}: merge into that one",
                                  key="merge_chain")
    if into["status"] not in OPEN:
        raise d.InvalidTransition(f"incident {into_id} is {into['status']}: nothing is merged into it",
                                  key="merge_into_done")
    places = involved(conn, (away_id, into_id)) if city is not None else {}
    conn.execute(update(incident_reports).where(incident_reports.c.incident_id == away_id).values(incident_id=into_id))
    # Incidents merged into this one earlier now point where it goes: ingest follows one link, never a chain.
    conn.execute(update(incidents).where(incidents.c.merged_into == away_id).values(merged_into=into_id))
    moved, audit = _move_tasks(conn, away, into, actor, now_ms, note)
    into = dict(conn.execute(update(incidents).where(incidents.c.id == into_id).values(
        reports=into["reports"] + away["reports"], severity=max(into["severity"], away["severity"]),
        opened_ms=min(into["opened_ms"], away["opened_ms"]),
        last_report_ms=max(into["last_report_ms"], away["last_report_ms"]),
        escalated_ms=into["escalated_ms"] if into["escalated_ms"] is not None else away["escalated_ms"],
        version=incidents.c.version + 1, updated_ms=now_ms).returning(*incidents.c)).mappings().one())
    away = _guarded(conn, away_id, version, status="closed", merged_into=into_id, reports=0, updated_ms=now_ms)
    audit += [d._event(away_id, None, "merge", actor, now_ms, locked[away_id]["status"], "closed", note,
                       "merged_into", {"incident": into_id, "n": locked[away_id]["reports"]}),
              d._event(into_id, None, "merge", actor, now_ms, into["status"], into["status"], note, "merged_from",
                       {"incident": away_id, "n": locked[away_id]["reports"]})]
    d._audit(conn, audit)
    if city is not None:  # said after the merge it follows from
        into = handover.after_merge(conn, locked[into_id], into, places, away_id, city, now_ms)
    return Moved([away, d._settle(conn, into, actor, now_ms, None)], moved)


def _move_tasks(conn: Connection, away: dict, into: dict, actor: str, now_ms: int,
                note: str | None) -> tuple[list[dict], list[dict]]:
    """Move the merged-away incident's live tasks, end those of departments already live on the other, close its
    resolved ones; return the tasks written and the audit rows still to write."""
    rows = [dict(r) for r in conn.execute(select(tasks).where(tasks.c.incident_id == away["id"])
                                          .order_by(tasks.c.id)).mappings()]
    live_there = {r.department: r.lead for r in conn.execute(
        select(tasks.c.department, tasks.c.lead).where(tasks.c.incident_id == into["id"],
                                                        tasks.c.state.in_(list(d.LIVE))))}
    lead_there = any(live_there.values())
    written, audit = [], []
    for t in rows:
        params = {"dep": t["department"], "incident": into["id"]}
        if t["state"] in d.LIVE and t["department"] not in live_there:
            # Its audit trail goes with it: the task's history is read by the incident that holds it.
            conn.execute(update(task_events).where(task_events.c.task_id == t["id"]).values(incident_id=into["id"]))
            written.append(dict(conn.execute(update(tasks).where(tasks.c.id == t["id"]).values(
                incident_id=into["id"], lead=t["lead"] and not lead_there, version=tasks.c.version + 1,
                updated_ms=now_ms).returning(*tasks.c)).mappings().one()))
            audit.append(d._event(into["id"], t["id"], "merge", actor, now_ms, t["state"], t["state"], note,
                                  "task_merged_in", {"dep": t["department"], "incident": away["id"]}))
        elif t["state"] in d.LIVE:
            # The department already works on the other incident: this duplicate ends, its deadlines with it.
            written.append(dict(conn.execute(update(tasks).where(tasks.c.id == t["id"]).values(
                state="closed", version=tasks.c.version + 1, updated_ms=now_ms, note=note)
                .returning(*tasks.c)).mappings().one()))
            audit.append(d._event(away["id"], t["id"], "merge", actor, now_ms, t["state"], "closed", note,
                                  "task_merge_ended", params))
            d.stop_duty(conn, away["id"], t["id"], "closed", now_ms)
        elif t["state"] == "resolved":  # done for the merged-away incident, which closes: as closing it would
            written.append(dict(conn.execute(update(tasks).where(tasks.c.id == t["id"]).values(
                state="closed", version=tasks.c.version + 1, updated_ms=now_ms).returning(*tasks.c)).mappings().one()))
            audit.append(d._event(away["id"], t["id"], "close", actor, now_ms, "resolved", "closed", note,
                                  "merged_into", params))
    return written, audit


def split(conn: Connection, incident_id: int, event_ids: Sequence[str], version: int, actor: str,
          note: str | None, now_ms: int, city: City | None = None) -> Moved:
    """Move the reports ``event_ids`` (as the API shows them) of an incident at ``version`` to a new open incident
    named after the earliest of them; the tasks stay. Counts, severity and latest report recomputed on both. With
    ``city``, the new incident gets a centre as any new one does (``handover.after_split``)."""
    _places(conn, (incident_id,))
    inc = d.lock_incident(conn, incident_id)
    _fresh(inc, version)
    if inc["status"] not in OPEN:
        raise d.InvalidTransition(f"incident {incident_id} is {inc['status']}: only an open incident is split",
                                  key="split_done")
    reports = [dict(r) for r in conn.execute(
        select(events.c.seq, events.c.event_id, events.c.domain, events.c.kind, events.c.district, events.c.street,
               events.c.severity, events.c.title, events.c.lat, events.c.lon, events.c.ts_ms)
        .join(incident_reports, incident_reports.c.event_seq == events.c.seq)
        .where(incident_reports.c.incident_id == incident_id).order_by(events.c.ts_ms, events.c.seq)).mappings()]
    wanted = set(event_ids)
    foreign = wanted - {r["event_id"] for r in reports}
    if foreign:
        raise d.InvalidTransition(f"report {sorted(foreign)[0]!r} is not one of incident {incident_id}'s",
                                  key="split_foreign")
    moving = [r for r in reports if r["event_id"] in wanted]
    staying = [r for r in reports if r["event_id"] not in wanted]
    if not moving or not staying:
        raise d.InvalidTransition("a split moves some of the incident's reports, not none and not all",
                                  key="split_some")
    first = moving[0]
    new = dict(conn.execute(insert(incidents).values(
        domain=first["domain"], kind=first["kind"], district=first["district"], street=first["street"],
        severity=max(r["severity"] for r in moving), status="open", reports=len(moving), title=first["title"],
        lat=first["lat"], lon=first["lon"], opened_ms=first["ts_ms"], last_report_ms=moving[-1]["ts_ms"],
        updated_ms=now_ms, version=1).returning(*incidents.c)).mappings().one())
    conn.execute(update(incident_reports).where(incident_reports.c.incident_id == incident_id,
                                                incident_reports.c.event_seq.in_([r["seq"] for r in moving]))
                 .values(incident_id=new["id"]))
    inc = _guarded(conn, incident_id, version, reports=len(staying), severity=max(r["severity"] for r in staying),
                   last_report_ms=max(r["ts_ms"] for r in staying), updated_ms=now_ms)
    n = len(moving)
    d._audit(conn, [d._event(incident_id, None, "split", actor, now_ms, inc["status"], inc["status"], note,
                             "split_to", {"incident": new["id"], "n": n}),
                    d._event(new["id"], None, "split", actor, now_ms, None, "open", note, "split_from",
                             {"incident": incident_id, "n": n})])
    if city is not None:
        new = handover.after_split(conn, new, {r["district"] for r in moving}, city, now_ms)
    return Moved([inc, new], [])


def merge_targets(conn: Connection, incident_id: int, limit: int = 50) -> list[dict]:
    """Return the open incidents ``incident_id`` may be merged into, each with ``distance_m`` (None without a
    place): the same district's first, then the nearest, then the newest."""
    inc = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
    if inc is None:
        raise d.NotFound(f"no incident {incident_id}")
    rows = [dict(r) for r in conn.execute(
        select(incidents).where(incidents.c.status.in_(OPEN), incidents.c.id != incident_id)
        .order_by((incidents.c.district != inc["district"]), incidents.c.id.desc()).limit(500)).mappings()]
    for r in rows:
        r["distance_m"] = _far(inc, r)
    rows.sort(key=lambda r: (r["district"] != inc["district"], r["distance_m"] is None, r["distance_m"] or 0, -r["id"]))
    return rows[:limit]


def _far(a, b) -> float | None:
    if None in (a["lat"], a["lon"], b["lat"], b["lon"]):
        return None
    return distance_m(a["lat"], a["lon"], b["lat"], b["lon"])

