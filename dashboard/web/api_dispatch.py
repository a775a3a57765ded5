"""Serve linked dispatch under /api: incidents, tasks, transitions (the desk does the work: dispatch.desk)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from dashboard.dispatch import board as d
from dashboard.dispatch import handover
from dashboard.dispatch.desk import (ACTIVE, STATUSES, detail, do_escalate, do_merge, do_redispatch,
                                     do_resolve_for, do_split, do_transition,
                                     in_district, incident_doc, may_see, queue, reader, scope, task_doc,
                                     write)
from dashboard.web.api import ApiError, json_errors, read_body, services
from dashboard.web.auth import current_user, require
bp = Blueprint("dispatch_api", __name__, url_prefix="/api")
json_errors(bp)

NOTE_MAX = 2000


class DispatchBody(BaseModel):
    """The body of POST /api/incidents/<id>/dispatch."""

    model_config = ConfigDict(extra="forbid")
    departments: list[StrictStr] | None = Field(None, max_length=50)
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class CloseBody(BaseModel):
    """The body of POST /api/incidents/<id>/close."""

    model_config = ConfigDict(extra="forbid")
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class TransitionBody(BaseModel):
    """The body of POST /api/tasks/<id>/transition."""

    model_config = ConfigDict(extra="forbid")
    to: StrictStr
    version: StrictInt
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class EscalateBody(BaseModel):
    """The body of POST /api/incidents/<id>/escalate: the overdue task escalated with it, if any."""

    model_config = ConfigDict(extra="forbid")
    task_id: StrictInt | None = Field(None, ge=1, le=2**63 - 1)


class ResolveForBody(BaseModel):
    """The body of POST /api/tasks/<id>/resolve_for: the version seen and who in the department said so."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt
    note: StrictStr = Field(min_length=1, max_length=NOTE_MAX)


class RedispatchBody(BaseModel):
    """The body of POST /api/tasks/<id>/redispatch: the version seen, and why (optional)."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class MergeBody(BaseModel):
    """The body of POST /api/incidents/<id>/merge: the incident it goes into, its own version seen, why."""

    model_config = ConfigDict(extra="forbid")
    into: StrictInt = Field(ge=1, le=2**63 - 1)
    version: StrictInt
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class SplitBody(BaseModel):
    """The body of POST /api/incidents/<id>/split: the reports (event ids as the detail shows them) to move."""

    model_config = ConfigDict(extra="forbid")
    reports: list[StrictStr] = Field(max_length=200)
    version: StrictInt
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class HandUpBody(BaseModel):
    """The body of POST /api/incidents/<id>/hand-up: why (optional)."""

    model_config = ConfigDict(extra="forbid")
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class HandDownBody(BaseModel):
    """The body of POST /api/incidents/<id>/hand-down: the district whose centre takes it (its code, slug or name;
    none: the incident's own district), and why (optional)."""

    model_config = ConfigDict(extra="forbid")
    district: StrictStr | None = Field(None, min_length=1, max_length=64)
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


def _moved_doc(moved, tz: str) -> dict:
    return {"incidents": [incident_doc(i, tz) for i in moved.incidents],
            "tasks": [task_doc(t, tz) for t in moved.tasks]}


def _change_doc(change, tz: str) -> dict:
    return {"incident": incident_doc(change.incident, tz), "tasks": [task_doc(t, tz) for t in change.tasks]}


def _statuses(arg: str | None) -> tuple[str, ...]:
    if not arg:
        return ACTIVE
    if arg == "all":
        return STATUSES
    wanted = tuple(s.strip() for s in arg.split(",") if s.strip())
    bad = [s for s in wanted if s not in STATUSES]
    if bad or not wanted:
        raise ApiError(400, "bad_status", f"status must be all or some of {', '.join(STATUSES)}")
    return wanted


@bp.get("/incidents")
@require("view")
def get_incidents():
    """Incidents (default: not closed), the most severe first, then the oldest."""
    svc = services()
    statuses = _statuses(request.args.get("status"))
    tz = svc.config["PANORAMA_TZ"]
    with svc.engine.connect() as conn:
        # a liaison sees the incidents their department holds tasks of, and no other
        # and a district centre's user those of their district (SPEC section 13)
        rows = queue(conn, statuses, department=scope(current_user()), district=reader(current_user()).district)
    return jsonify({"incidents": [incident_doc(r, tz) for r in rows]})


@bp.get("/incidents/<id:incident_id>")
@require("view")
def get_incident(incident_id: int):
    svc = services()
    with svc.engine.connect() as conn:
        doc = detail(conn, svc, incident_id, svc.clock())
        if not in_district(conn, current_user(), incident_id):  # another district's: as if there were none
            raise ApiError(404, "not_found", f"no incident {incident_id}")
        if not may_see(conn, current_user(), incident_id):
            raise ApiError(403, "forbidden", "a liaison sees only the incidents of their own department's tasks")
    return jsonify(doc)


@bp.post("/incidents/<id:incident_id>/dispatch")
@require("officer")
def post_dispatch(incident_id: int):
    """Route an incident to the departments named, or to the rules' suggestion."""
    svc = services()
    body = read_body(DispatchBody, required=False)
    if svc.city.rules is None:
        raise ApiError(400, "no_rules", f"{svc.city.name_en} has no routing rules")
    change = write(svc, d.dispatch, incident_id, body.departments, current_user().username, body.note, svc.clock(),
                   svc.city.rules, svc.city, user=current_user())
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident": incident_doc(change.incident, tz), "tasks": [d.task_view(t, tz) for t in change.tasks]})


@bp.post("/incidents/<id:incident_id>/close")
@require("officer")
def post_close(incident_id: int):
    """Close a resolved incident."""
    svc = services()
    body = read_body(CloseBody, required=False)
    change = write(svc, d.close_incident, incident_id, current_user().username, body.note, svc.clock(),
                   user=current_user())
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident": incident_doc(change.incident, tz), "tasks": [d.task_view(t, tz) for t in change.tasks]})


@bp.post("/incidents/<id:incident_id>/escalate")
@require("command")
def post_escalate(incident_id: int):
    """Escalate to emergency management (dispatch.escalation): the dispatch status stays as it is."""
    svc = services()
    body = read_body(EscalateBody, required=False)
    change = do_escalate(svc, current_user(), incident_id, body.task_id)
    return jsonify(_change_doc(change, svc.config["PANORAMA_TZ"]))


@bp.post("/incidents/<id:incident_id>/merge")
@require("command")
def post_merge(incident_id: int):
    """Merge this incident into another (``into``): 409 stale version, 422 into itself, a closed one or a chain."""
    svc = services()
    body = read_body(MergeBody, required=True)
    moved = do_merge(svc, current_user(), incident_id, body.into, body.version, body.note)
    return jsonify(_moved_doc(moved, svc.config["PANORAMA_TZ"]))


@bp.post("/incidents/<id:incident_id>/split")
@require("command")
def post_split(incident_id: int):
    """Move some reports of this incident to a new one; the first incident answered is this, the second the new."""
    svc = services()
    body = read_body(SplitBody, required=True)
    moved = do_split(svc, current_user(), incident_id, body.reports, body.version, body.note)
    return jsonify(_moved_doc(moved, svc.config["PANORAMA_TZ"]))


@bp.post("/incidents/<id:incident_id>/hand-up")
@require("command")
def post_hand_up(incident_id: int):
    """Hand an incident up to the city centre (not in the SPEC: dispatch.handover): a district centre its own, the
    city centre any a district runs. 403 another centre's, 422 the city's already or over."""
    svc = services()
    body = read_body(HandUpBody, required=False)
    change = handover.do_hand_up(svc, current_user(), incident_id, (body.note or "").strip() or None)
    return jsonify(_change_doc(change, svc.config["PANORAMA_TZ"]))


@bp.post("/incidents/<id:incident_id>/hand-down")
@require("command")
def post_hand_down(incident_id: int):
    """Hand an incident down to a district centre (the city centre only; not in the SPEC: dispatch.handover).
    400 unknown district, 403 a district user, 422 already there, a district it does not involve, or over."""
    svc = services()
    body = read_body(HandDownBody, required=False)
    change = handover.do_hand_down(svc, current_user(), incident_id, body.district,
                                   (body.note or "").strip() or None)
    return jsonify(_change_doc(change, svc.config["PANORAMA_TZ"]))


@bp.post("/tasks/<id:task_id>/resolve_for")
@require("officer")
def post_resolve_for(task_id: int):
    """Record a department's resolution on its behalf (it has nobody on the system), with a note."""
    svc = services()
    body = read_body(ResolveForBody, required=True)
    change = do_resolve_for(svc, current_user(), task_id, body.version, body.note)
    return jsonify(_change_doc(change, svc.config["PANORAMA_TZ"]))


@bp.post("/tasks/<id:task_id>/redispatch")
@require("command")
def post_redispatch(task_id: int):
    """Send a late task to its department again, deadlines restarted: 409 stale, 422 once it is on scene."""
    svc = services()
    body = read_body(RedispatchBody, required=True)
    change = do_redispatch(svc, current_user(), task_id, body.version, body.note)
    return jsonify(_change_doc(change, svc.config["PANORAMA_TZ"]))


@bp.get("/tasks")
@require("view")
def get_tasks():
    svc = services()
    state = request.args.get("status") or request.args.get("state")
    if state is not None and state not in d.TRANSITIONS:
        raise ApiError(400, "bad_status", f"status must be one of {', '.join(d.TRANSITIONS)}")
    tz = svc.config["PANORAMA_TZ"]
    department, own = request.args.get("department") or None, scope(current_user())
    if own is not None:
        # A liaison asking for another department is refused, not quietly shown their own.
        if department not in (None, own):
            raise ApiError(403, "forbidden", "a liaison sees only their own department's tasks")
        department = own
    with svc.engine.connect() as conn:
        rows = d.list_tasks(conn, department=department, state=state, district=reader(current_user()).district)
    return jsonify({"tasks": [d.task_view(t, tz) for t in rows]})


@bp.post("/tasks/<id:task_id>/transition")
@require("dispatch")
def post_transition(task_id: int):
    """Move a task: 409 on a stale version, 422 when the move is not allowed."""
    svc = services()
    body = read_body(TransitionBody, required=True)
    change = do_transition(svc, current_user(), task_id, body.to, body.version, body.note)
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident": incident_doc(change.incident, tz), "task": d.task_view(change.task, tz)})


def init_app(server) -> None:
    """Register the dispatch API (after the main API blueprint)."""
    server.register_blueprint(bp)


