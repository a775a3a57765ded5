"""Serve the duty rosters under /api: who is on duty now per department with the shifts, and overrides."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from dashboard.core.clock import iso
from dashboard.core.errors import NotFound
from dashboard.core.roles import check_role
from dashboard.core.rosters import DAYS, ROLES, Rosters
from dashboard.core.scope import CITY, Scope
from dashboard.dispatch import duty
from dashboard.storage import rosters as store
from dashboard.web.api import ApiError, json_errors, read_body, services
from dashboard.web.auth import current_user, reader_scope, require

bp = Blueprint("rosters_api", __name__, url_prefix="/api")
json_errors(bp)
REASON_MAX = 500
# How long one override may last: longer is a roster change (rosters.yaml), not a stand-in.
OVERRIDE_MAX_MS = 31 * 86_400_000
# Who may read phone numbers and e-mail addresses: those who act on alerts and tasks (and admin).
CONTACTS = "command"


class OverrideBody(BaseModel):
    """The body of POST /api/rosters/overrides: who stands in, in which role of which department, when, why."""

    model_config = ConfigDict(extra="forbid")
    department: StrictStr = Field(max_length=64)
    person: StrictStr = Field(max_length=64)
    role: StrictStr = Field(max_length=16)
    start: StrictStr | None = Field(None, alias="from", max_length=64)
    until: StrictStr = Field(max_length=64)
    reason: StrictStr = Field(min_length=1, max_length=REASON_MAX)

    @field_validator("reason")
    @classmethod
    def _said(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("say why the roster is overridden")
        return v.strip()


def person_doc(p, contacts: bool) -> dict:
    """Return a person as the API and the page show them: phone and e-mail only to those who may read them."""
    doc = {"id": p.id, "name": p.name, "name_en": p.name_en, "role": p.role}
    if contacts:
        doc.update(phone=p.phone, email=p.email)
    return doc


def override_doc(row: dict, tz: str) -> dict:
    """Return a stored override as the API answers it."""
    return {"id": row["id"], "department": row["department"], "person": row["person"], "role": row["role"],
            "from": iso(row["from_ms"], tz), "until": iso(row["until_ms"], tz), "reason": row["reason"],
            "created_by": row["created_by"], "created_at": iso(row["created_ms"], tz),
            "ended_at": iso(row["ended_ms"], tz) if row["ended_ms"] is not None else None,
            "ended_by": row["ended_by"]}


def district_of(city, department: str) -> str | None:
    """Return the district a department of the pack serves (a district government's, a street office's); None for
    a city department (or one the pack does not know)."""
    return next((d.get("district") for d in city.departments if d["code"] == department), None)


def readable(city, scope: Scope) -> tuple[str, ...] | None:
    """Return the departments whose rosters (and overrides) ``scope`` reads (None: every one, the city's)."""
    if scope.city:
        return None
    return tuple(code for code in city.rosters.rosters if scope.reads_roster(district_of(city, code)))


def read_overrides(conn, city, scope: Scope, now_ms: int, all_: bool = False) -> list[dict]:
    """Return the overrides ``scope`` reads, newest first: in force now or later (``all_``: ended ones too)."""
    return store.listed(conn, now_ms, all_=all_, departments=readable(city, scope))


def duty_now(city, rosters: Rosters, rows: list[dict], now_ms: int, contacts: bool,
             scope: Scope = CITY) -> list[dict]:
    """Return every department with a roster ``scope`` reads: its policy's ladder with who is on duty now at each
    level (the overrides in force taking their role's place), its shifts and its people."""
    overrides = [store.as_override(r) for r in rows]
    names = {d["code"]: d for d in city.departments}
    out = []
    for code, roster in rosters.rosters.items():
        if not scope.reads_roster(names.get(code, {}).get("district")):
            continue  # another district's department (SPEC section 13)
        policy = roster.policy
        ladder = []
        for i, lv in enumerate(policy.levels):
            people = rosters.on_duty(roster, lv.role, now_ms, overrides)
            by = [o.id for o in overrides if o.department == code and o.role == lv.role and o.covers(now_ms)]
            ladder.append({"level": i + 1, "role": lv.role, "after_min": lv.after_ms // 60_000,
                           "channels": list(lv.channels), "override": by[0] if by else None,
                           "people": [person_doc(p, contacts) for p in people]})
        dep = names.get(code, {})
        out.append({"code": code, "name": dep.get("name", code), "name_en": dep.get("name_en", code),
                    "district": dep.get("district"),
                    "policy": {"name": policy.name, "rounds": policy.rounds,
                               "round_every_min": policy.round_every_ms // 60_000},
                    "on_duty": ladder,
                    "shifts": [{"name": s.name, "days": [DAYS[d] for d in s.days], "time": s.hours,
                                "who": list(s.who)} for s in roster.shifts],
                    "people": [person_doc(p, contacts) for p in roster.people.values()]})
    return out


@bp.get("/rosters")
@require("view")
def get_rosters():
    """Who is on duty now per department, with the shifts; phones and e-mail for officers, commanders, admin."""
    svc, scope = services(), reader_scope()
    now, tz = svc.clock(), svc.config["PANORAMA_TZ"]
    with svc.read(primary=True) as conn:
        rows = read_overrides(conn, svc.city, scope, now)
    contacts = check_role(current_user(), CONTACTS)
    return jsonify({"now": iso(now, tz), "timezone": tz, "fallback": svc.city.rosters.fallback,
                    "departments": duty_now(svc.city, svc.city.rosters, rows, now, contacts, scope),
                    "overrides": [override_doc(r, tz) for r in rows]})


@bp.get("/rosters/overrides")
@require("command")
def get_overrides():
    """The overrides in force now or later, newest first (``?all=1``: every override, ended ones too)."""
    svc = services()
    every = request.args.get("all")
    if every not in (None, "", "0", "1"):
        raise ApiError(400, "bad_all", "all must be 0 or 1")
    with svc.read(primary=True) as conn:
        rows = read_overrides(conn, svc.city, reader_scope(), svc.clock(), all_=every == "1")
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"overrides": [override_doc(r, tz) for r in rows]})


@bp.post("/rosters/overrides")
@require("command")
def post_override():
    """Put a person of a department's roster in a role from a time (default now) until a time, with a reason."""
    svc = services()
    body = read_body(OverrideBody, required=True)
    row = create_override(svc, body.department, body.person, body.role, body.start, body.until, body.reason,
                          current_user().username, reader_scope())
    return jsonify({"override": override_doc(row, svc.config["PANORAMA_TZ"])}), 201


def may_override(user, city) -> bool:
    """Tell whether ``user`` may set or end a roster override of some department: an officer or commander of the
    city centre, or of a district centre whose district's departments have rosters (Scope.sets_roster)."""
    scope = reader_scope()
    return check_role(user, "command") and any(scope.sets_roster(district_of(city, code))
                                               for code in city.rosters.rosters)


def check_sets(city, scope: Scope, department: str) -> None:
    """Refuse (ApiError 403) an override of ``department``'s roster that the reader's centre does not set."""
    district = district_of(city, department)
    if not scope.reads_roster(district):
        raise ApiError(403, "other_district", "that department is another district's: its centre sets its roster")
    if not scope.sets_roster(district):
        raise ApiError(403, "city_only", "a city department's duty roster is the city's: the city centre overrides it")


def create_override(svc, department: str, person: str, role: str, start: str | None, until: str, reason: str,
                    actor: str, scope: Scope = CITY) -> dict:
    """Check and record an override (the API's and the page's one way); ApiError 400 naming what is wrong, 403
    when the reader's centre does not set that department's roster."""
    rosters = svc.city.rosters
    roster = rosters.rosters.get(department)
    if roster is None:
        raise ApiError(400, "unknown_department", f"no roster for department {department!r}")
    check_sets(svc.city, scope, department)
    if person not in roster.people:
        raise ApiError(400, "unknown_person", f"{person!r} is not on {department}'s roster")
    if role not in ROLES:
        raise ApiError(400, "bad_role", f"role must be one of {', '.join(ROLES)}")
    if not reason.strip():
        raise ApiError(400, "bad_request", "say why the roster is overridden")
    now = svc.clock()
    from_ms = now if start in (None, "") else _time(start, "from")
    until_ms = _time(until, "until")
    if until_ms <= max(from_ms, now):
        raise ApiError(400, "bad_until", "until must be after from and in the future")
    if until_ms - from_ms > OVERRIDE_MAX_MS:
        raise ApiError(400, "bad_until", "an override lasts at most 31 days; a standing change goes in rosters.yaml")
    with svc.engine.begin() as conn:
        row = store.create(conn, department=department, person=person, role=role, from_ms=from_ms,
                           until_ms=until_ms, reason=reason.strip(), actor=actor, now_ms=now)
        # the ladders already queued tell whoever is on duty now, in the override's own transaction
        duty.replan(conn, svc.city, department, now, f"o{row['id']}s")
        return row


@bp.delete("/rosters/overrides/<id:override_id>")
@require("command")
def delete_override(override_id: int):
    """End an override now (withdraw one not begun); another district's department's is as if there were none."""
    svc, scope = services(), reader_scope()
    now = svc.clock()
    with svc.engine.begin() as conn:
        department = store.get(conn, override_id)["department"]
        if not scope.reads_roster(district_of(svc.city, department)):
            raise NotFound(f"no roster override {override_id}")
        check_sets(svc.city, scope, department)
        row = store.end(conn, override_id, current_user().username, now)
        duty.replan(conn, svc.city, row["department"], now, f"o{row['id']}e")
    return jsonify({"override": override_doc(row, svc.config["PANORAMA_TZ"])})


def _time(text: str, name: str) -> int:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ApiError(400, f"bad_{name}", f"{name} must be an RFC 3339 time with its offset, e.g. "
                                           "2026-12-06T20:00:00+08:00")
    return int(at.timestamp() * 1000)


def init_app(server) -> None:
    """Register the rosters API (after the main API blueprint)."""
    server.register_blueprint(bp)
