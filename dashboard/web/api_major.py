"""Serve the major-incident mode under /api (SPEC section 10): declare, change the level, stand down, list; and
the ticking of a standard procedure's steps."""

from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from sqlalchemy import select

from dashboard.dispatch import major, procedure
from dashboard.dispatch.desk import do_declare, do_stand_down, do_tick, reader, step_doc
from dashboard.storage.models import incidents
from dashboard.web.api import json_errors, read_body, services
from dashboard.web.api_dispatch import NOTE_MAX
from dashboard.web.auth import current_user, require

bp = Blueprint("major_api", __name__, url_prefix="/api")
json_errors(bp)


class DeclareBody(BaseModel):
    """The body of POST /api/incidents/<id>/major: the level (1 = I, the gravest .. 4 = IV) and a note."""

    model_config = ConfigDict(extra="forbid")
    level: StrictInt = Field(ge=min(major.LEVELS), le=max(major.LEVELS))
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class StandDownBody(BaseModel):
    """The optional body of DELETE /api/incidents/<id>/major."""

    model_config = ConfigDict(extra="forbid")
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


@bp.post("/incidents/<id:incident_id>/major")
@require("command")
def post_major(incident_id: int):
    """Declare a major incident, or change its level: 400 bad level, 404 no incident, 422 resolved or closed."""
    svc = services()
    body = read_body(DeclareBody, required=True)
    majors = do_declare(svc, current_user(), incident_id, body.level, body.note)
    return jsonify(next(m for m in majors if m["incident"]["id"] == incident_id))


@bp.delete("/incidents/<id:incident_id>/major")
@require("command")
def delete_major(incident_id: int):
    """Stand a major incident down: 404 no incident, 422 when it is not a major incident now."""
    svc = services()
    body = read_body(StandDownBody, required=False)
    majors = do_stand_down(svc, current_user(), incident_id, body.note)
    return jsonify({"stood_down": incident_id, "active": majors})


@bp.get("/major")
@require("view")
def get_major():
    """The major incidents now active, gravest level first."""
    svc = services()
    with svc.engine.connect() as conn:  # a district centre's user: those of their district (SPEC section 13)
        return jsonify(reader(current_user()).majors(major.views(conn, svc.config["PANORAMA_TZ"])))


def init_app(server) -> None:
    """Register the major-incident API."""
    server.register_blueprint(bp)


class TickBody(BaseModel):
    """The optional body of POST /api/incidents/<id>/steps/<step>."""

    model_config = ConfigDict(extra="forbid")
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


@bp.post("/incidents/<id:incident_id>/steps/<string(maxlength=64):step>")
@require("officer", "liaison")
def post_step(incident_id: int, step: str):
    """Tick a step of the incident's standard procedure: an officer any, a liaison their department's (403
    otherwise); 404 no such incident or step, 422 done already or the incident closed."""
    svc = services()
    body = read_body(TickBody, required=False)
    do_tick(svc, current_user(), incident_id, step, body.note)
    with svc.engine.connect() as conn:
        inc = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one()
        steps = procedure.checklist(conn, svc.city, dict(inc))
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident_id": incident_id, "procedure": [step_doc(s, tz) for s in steps]})
