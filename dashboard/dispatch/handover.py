"""Hand incidents up to the city centre and down to a district centre ("1+11+N"): who runs each, and the audit.

``incidents.centre`` names the centre that runs an incident: NULL the city centre, else a district's code. A new
incident goes to its district's centre, or up to the city centre by itself (``storage.incidents.hand_up_reason``:
its severity, or reports spanning districts; ingest and merge apply it). By hand: a district centre hands its own
incidents up; the city centre takes any up and hands any down to a district the incident involves. Each write runs
in the caller's transaction, as ``board``'s do, and returns the ``board.Change`` to publish.
"""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection

from dashboard.core import errors
from dashboard.core.city import City
from dashboard.core.roles import check_role
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.storage.incidents import auto_up_row, hand_up_reason, involved, lock_places
from dashboard.storage.models import incidents, task_events


class Refused(d.InvalidTransition):
    """A hand-over the incident's state does not allow (422), with its own error code."""

    def __init__(self, message: str, code: str):
        super().__init__(message, key=code)
        self.code = code


class NotAllowed(errors.Forbidden):
    """A hand-over this user may not make (403), with its own error code."""

    def __init__(self, message: str, code: str):
        super().__init__(message, key=code)
        self.code = code


class UnknownDistrict(d.DispatchError):
    """A district the city pack does not know (400)."""

    code = "unknown_district"


def may_hand_up(user, incident: dict) -> bool:
    """Tell whether ``user`` may hand ``incident`` (as listed: ``centre``) up: an officer, commander or admin of the
    city centre, one that runs it at a district centre, the incident still open and run by a district."""
    if not check_role(user, "command") or incident.get("centre") is None or incident["status"] in d.DONE:
        return False
    own = getattr(user, "district", None)
    return own is None or own == incident["centre"]


def may_hand_down(user, incident: dict, city: City) -> bool:
    """Tell whether ``user`` may hand ``incident`` down: an officer, commander or admin of the city centre, in a
    city with district centres, the incident still open."""
    return (check_role(user, "command") and getattr(user, "district", None) is None and city.centres is not None
            and incident["status"] not in d.DONE)


def _locked(conn: Connection, incident_id: int) -> dict:
    """Lock the incident, after ingest's join lock of its place: no batch joins a report (and re-decides its
    centre) while a person moves it."""
    inc = d.lock_incident(conn, incident_id)
    lock_places(conn, [(inc["district"], inc["kind"])])
    if inc["status"] in d.DONE:
        raise Refused(f"incident {incident_id} is {inc['status']}: it is no longer handed over", "incident_done")
    return inc


def _set_centre(conn: Connection, incident_id: int, centre: str | None, now_ms: int) -> dict:
    """Give an incident to ``centre`` (None: the city's) as a change of it (its version moves); return it."""
    return dict(conn.execute(update(incidents).where(incidents.c.id == incident_id)
                             .values(centre=centre, version=incidents.c.version + 1, updated_ms=now_ms)
                             .returning(*incidents.c)).mappings().one())


def _move(conn: Connection, inc: dict, centre: str | None, actor: str, note: str | None, now_ms: int, code: str,
          params: dict) -> d.Change:
    row = _set_centre(conn, inc["id"], centre, now_ms)
    conn.execute(insert(task_events), [d._event(inc["id"], None, "handover", actor, now_ms, inc["status"],
                                                inc["status"], note, code, params)])
    return d.Change(row, [])


def hand_up(conn: Connection, incident_id: int, user, note: str | None, now_ms: int) -> d.Change:
    """Hand an incident a district centre runs up to the city centre: by that centre (``handed_up``), or taken up
    by the city centre (``taken_up``). 403 for another district's centre, 422 once the city centre runs it."""
    inc = _locked(conn, incident_id)
    if inc["centre"] is None:
        raise Refused(f"the city centre runs incident {incident_id} already", "already_city_centre")
    own = getattr(user, "district", None)
    if own is not None and own != inc["centre"]:
        raise NotAllowed(f"incident {incident_id} is run by the {inc['centre']} centre, not yours ({own})",
                         "not_your_centre")
    code = "handed_up" if own is not None else "taken_up"
    return _move(conn, inc, None, user.username, note, now_ms, code, {"district": inc["centre"]})


def hand_down(conn: Connection, incident_id: int, district: str | None, user, note: str | None, now_ms: int,
              city: City) -> d.Change:
    """Hand an incident down to the centre of ``district`` (None: the incident's own), one of the districts it
    involves; only the city centre does. Moving it from one district centre to another is ``handed_across``."""
    if getattr(user, "district", None) is not None:
        raise NotAllowed("a district centre hands incidents up, never down", "district_cannot_hand_down")
    if city.centres is None:
        raise Refused(f"{city.name_en} has no district centres", "no_district_centres")
    if district is not None:
        found = city.resolve(district)
        if found is None:
            raise UnknownDistrict(f"unknown district {district!r}; one of {', '.join(city.by_code)}")
        district = found.code
    inc = _locked(conn, incident_id)
    district = district or inc["district"]
    if inc["centre"] == district:
        raise Refused(f"the {district} centre runs incident {incident_id} already", "already_that_centre")
    places = involved(conn, [incident_id]).get(incident_id, {inc["district"]})
    if district not in places:
        raise Refused(f"incident {incident_id} involves {', '.join(sorted(places))}, not {district}",
                      "district_not_involved")
    if inc["centre"] is None:
        return _move(conn, inc, district, user.username, note, now_ms, "handed_down", {"to_district": district})
    return _move(conn, inc, district, user.username, note, now_ms, "handed_across",
                 {"district": inc["centre"], "to_district": district})


def after_merge(conn: Connection, before: dict, into: dict, places: dict[int, set[str]], away_id: int, city: City,
                now_ms: int) -> dict:
    """Send the incident merged into up to the city centre when the merge raised its severity to the city's or
    brought reports of a district new to it (``before``: it as it was; ``places``: the districts each of the two
    involved before the merge, ``involved``'s); return it as it now is."""
    if into["centre"] is None or city.centres is None:
        return into
    mine, theirs = places.get(into["id"], {into["district"]}), places.get(away_id, set())
    why = hand_up_reason(city.centres, before["severity"], into["severity"], bool(theirs - mine))
    return into if why is None else _auto_up(conn, into, why, city, now_ms, mine | theirs)


def _auto_up(conn: Connection, inc: dict, why: str, city: City, now_ms: int, places=()) -> dict:
    conn.execute(insert(task_events), [auto_up_row(inc, why, city.centres, now_ms, places)])
    return _set_centre(conn, inc["id"], None, now_ms)


def after_split(conn: Connection, new: dict, places: set[str], city: City, now_ms: int) -> dict:
    """Give an incident split off a centre as a new incident gets one: its district's, or the city's when its
    severity is the city's or its reports span districts; return it as it now is."""
    if city.centres is None:
        return new
    why = hand_up_reason(city.centres, None, new["severity"], len(places) > 1)
    if why is None:
        return dict(conn.execute(update(incidents).where(incidents.c.id == new["id"])
                                 .values(centre=new["district"]).returning(*incidents.c)).mappings().one())
    return _auto_up(conn, {**new, "centre": new["district"]}, why, city, now_ms, places)


def do_hand_up(svc, user, incident_id: int, note: str | None) -> d.Change:
    """Hand an incident up for ``user`` (``hand_up`` says who may) in its own transaction; publish it."""
    _may(user)
    with svc.engine.begin() as conn:
        change = hand_up(conn, incident_id, user, note, svc.clock())
    desk.publish(svc, [change.incident], [])
    return change


def do_hand_down(svc, user, incident_id: int, district: str | None, note: str | None) -> d.Change:
    """Hand an incident down for ``user`` (``hand_down`` says who may and where to) in its own transaction;
    publish it."""
    _may(user)
    with svc.engine.begin() as conn:
        change = hand_down(conn, incident_id, district, user, note, svc.clock(), svc.city)
    desk.publish(svc, [change.incident], [])
    return change


def _may(user) -> None:
    if not check_role(user, "command"):
        raise errors.Forbidden("only an officer, a commander or an admin hands incidents over")
