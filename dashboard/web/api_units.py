"""Serve the response units under /api (SPEC section 11): the fleet's latest state, assignments, the admin's form."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from dashboard.core import messages
from dashboard.core.units import STATUSES, check_unit
from dashboard.dispatch.desk import publish, reader, scope
from dashboard.dispatch.units import do_assign
from dashboard.storage import units as store
from dashboard.web.api import ApiError, json_errors, read_body, services
from dashboard.web.auth import current_user, require

bp = Blueprint("units_api", __name__, url_prefix="/api")
json_errors(bp)
UNIT_ID = r"^[A-Za-z0-9_-]{1,64}$"


class AssignBody(BaseModel):
    """The body of POST /api/tasks/<id>/units: the units to send (ids of the fleet)."""

    model_config = ConfigDict(extra="forbid")
    units: list[StrictStr] = Field(min_length=1, max_length=50)


class UnitBody(BaseModel):
    """The body of POST /api/units: a unit added to the fleet or changed (department, kind, names, base)."""

    model_config = ConfigDict(extra="forbid")
    unit: StrictStr = Field(pattern=UNIT_ID)
    department: StrictStr = Field(max_length=64)
    kind: StrictStr = Field(pattern=r"^[a-z0-9_]{1,64}$")
    name: StrictStr | None = Field(None, max_length=128)
    name_en: StrictStr | None = Field(None, max_length=128)
    lat: StrictFloat | StrictInt | None = Field(None, ge=-90, le=90)
    lon: StrictFloat | StrictInt | None = Field(None, ge=-180, le=180)


@bp.get("/units")
@require("view")
def get_units():
    """The units' latest state, filtered by department and status; a liaison sees only their department's."""
    svc = services()
    department, status = request.args.get("department") or None, request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "bad_status", f"status must be one of {', '.join(STATUSES)}")
    own = scope(current_user())
    if own is not None:
        # as GET /api/tasks: another department asked for is refused, not quietly answered with their own
        if department not in (None, own):
            raise ApiError(403, "forbidden", "a liaison sees only their own department's units")
        department = own
    tz = svc.config["PANORAMA_TZ"]
    with svc.engine.connect() as conn:
        # a district centre's user: the units of their district (their home district, units.yaml)
        rows = store.list_units(conn, department=department, status=status, district=reader(current_user()).district)
    return jsonify([messages.unit_view(r, tz) for r in rows])


@bp.post("/tasks/<id:task_id>/units")
@require("dispatch")
def post_task_units(task_id: int):
    """Send units to a task (they go en route): 403 another department's task for a liaison, 404 no such task,
    409 a unit on another live task, 422 a unit of another department, off duty, or the task no longer live."""
    body = read_body(AssignBody, required=True)
    changed = do_assign(services(), current_user(), task_id, body.units)
    return jsonify({"task_id": task_id, "units": changed})


@bp.post("/units")
@require("admin")
def post_unit():
    """Add a unit to the fleet or change one (the admin's form): 400 for a department the city does not have."""
    svc = services()
    body = read_body(UnitBody, required=True)
    try:
        unit = check_unit(body.model_dump(), [d["code"] for d in svc.city.departments], "unit")
    except ValueError as err:
        raise ApiError(400, "bad_request", str(err)) from None
    with svc.engine.begin() as conn:
        row = store.upsert(conn, unit, svc.clock())
    view = messages.unit_view(row, svc.config["PANORAMA_TZ"])
    publish(svc, [], [], units=[view])
    return jsonify(view)


def init_app(server) -> None:
    """Register the units API (after the main API blueprint)."""
    server.register_blueprint(bp)
