"""Serve early warning under /api (SPEC section 9): alerts, their acknowledgement, silences."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator
from sqlalchemy import select

from dashboard.core import messages
from dashboard.core.alerts import LEVELS
from dashboard.core.bus import BUS_ERRORS
from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.clock import iso
from dashboard.core.errors import NotFound
from dashboard.storage import alerts as store
from dashboard.storage.models import alert_silences, alerts
from dashboard.web.api import ApiError, json_errors, read_body, services
from dashboard.web.api_dispatch import NOTE_MAX
from dashboard.web.auth import current_user, reader_scope, require
from dashboard.web.first_paint import lang_of

bp = Blueprint("alerts_api", __name__, url_prefix="/api")
json_errors(bp)
REASON_MAX = 500
# How far ahead a one-off silence may reach: longer is a rule change (a mute window in alerts.yaml).
SILENCE_MAX_MS = 30 * 86_400_000


class AckBody(BaseModel):
    """The body of POST /api/alerts/<id>/ack."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt = Field(ge=1, le=2**31 - 1)
    note: StrictStr | None = Field(None, max_length=NOTE_MAX)


class SilenceBody(BaseModel):
    """The body of POST /api/silences: what it covers (a rule, a district, a zone: at least one), until when, why."""

    model_config = ConfigDict(extra="forbid")
    rule: StrictStr | None = Field(None, max_length=64)
    district: StrictStr | None = Field(None, max_length=64)
    zone: StrictStr | None = Field(None, max_length=64)
    until: StrictStr = Field(max_length=64)
    reason: StrictStr = Field(min_length=1, max_length=REASON_MAX)

    @field_validator("reason")
    @classmethod
    def _said(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("say why the alerts are silenced")
        return v.strip()


def _listed(name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    arg = request.args.get(name)
    if not arg:
        return ()
    wanted = tuple(s.strip() for s in arg.split(",") if s.strip())
    bad = [s for s in wanted if s not in allowed]
    if bad or not wanted:
        raise ApiError(400, f"bad_{name}", f"{name} must be one or more of {', '.join(allowed)} (comma-separated)")
    return wanted


def _lang() -> str:
    lang = request.args.get("lang")
    if lang is not None and lang not in ("zh", "en"):
        raise ApiError(400, "bad_lang", "lang must be zh or en")
    return lang or lang_of(request.cookies)


@bp.get("/alerts")
@require("view")
def get_alerts():
    """Alerts, newest first, of the statuses and levels asked for (default: all)."""
    svc = services()
    statuses, levels, lang = _listed("status", store.STATUSES), _listed("level", LEVELS), _lang()
    tz = svc.config["PANORAMA_TZ"]
    with svc.read(primary=True) as conn:  # a district centre's: its district's (SPEC section 13)
        rows = store.list_alerts(conn, statuses, levels, districts=reader_scope().districts())
    return jsonify({"alerts": [messages.alert_view(r, tz, lang) for r in rows]})


@bp.post("/alerts/<id:alert_id>/ack")
@require("command")
def post_ack(alert_id: int):
    """Acknowledge a firing alert at the version read: 409 when stale, 422 when it is not firing."""
    svc = services()
    body = read_body(AckBody, required=True)
    row = acknowledge(svc, alert_id, body.version, current_user().username, body.note)
    return jsonify({"alert": messages.alert_view(row, svc.config["PANORAMA_TZ"], _lang())})


def acknowledge(svc, alert_id: int, version: int, actor: str, note: str | None) -> dict:
    """Acknowledge a firing alert at ``version`` and tell every screen (the API's and the pages' one way);
    raises NotFound, Conflict (stale) or Unprocessable (not firing). The caller has checked the role."""
    now = svc.clock()
    with svc.engine.begin() as conn:
        _within(conn, alerts, alert_id, "alert")
        row = store.acknowledge(conn, alert_id, version, actor, note, now)
    tz = svc.config["PANORAMA_TZ"]
    try:
        svc.redis.publish(UPDATES_CHANNEL, messages.encode_delta(now, alerts=[messages.alert_view(row, tz, None)]))
    except BUS_ERRORS:
        pass  # committed; the screens' next read shows it
    return row


def _within(conn, table, row_id: int, what: str) -> None:
    """Refuse (NotFound, as its read answers) a district centre's user's write to another district's alert or
    silence: knowing an id is not leave to act on it. A silence of no district (the city's) is theirs to read,
    not to end."""
    own = reader_scope().district
    if own is None:
        return
    district = conn.execute(select(table.c.district).where(table.c.id == row_id)).scalar()
    if district != own:
        raise NotFound(f"no {what} {row_id}")


def _silence_doc(row: dict, tz: str) -> dict:
    return {"id": row["id"], "rule": row["rule"], "district": row["district"], "zone": row["zone"],
            "until": iso(row["until_ms"], tz), "reason": row["reason"], "created_by": row["created_by"],
            "created_at": iso(row["created_ms"], tz),
            "ended_at": iso(row["ended_ms"], tz) if row["ended_ms"] is not None else None,
            "ended_by": row["ended_by"]}


@bp.get("/silences")
@require("command")
def get_silences():
    """The silences in force, newest first (``?all=1``: every silence, ended ones too)."""
    svc = services()
    every = request.args.get("all")
    if every not in (None, "", "0", "1"):
        raise ApiError(400, "bad_all", "all must be 0 or 1")
    with svc.read(primary=True) as conn:
        # a district centre's user: their district's silences and the city's
        rows = store.list_silences(conn, svc.clock(), active_only=every != "1", district=reader_scope().district)
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"silences": [_silence_doc(r, tz) for r in rows]})


@bp.post("/silences")
@require("command")
def post_silence():
    """Silence a rule, a district or a zone (or a combination) until a time, with a reason."""
    svc = services()
    row = add_silence(svc, read_body(SilenceBody, required=True), current_user().username)
    return jsonify({"silence": _silence_doc(row, svc.config["PANORAMA_TZ"])}), 201


def add_silence(svc, body: SilenceBody, actor: str) -> dict:
    """Check a silence and store it (the API's and the /alerts page's one way): what it names must exist (a rule,
    a district by code or slug, a zone: at least one), ``until`` an RFC 3339 time with offset, ahead and within
    30 days; raises ApiError 400 with a code saying what is wrong. The caller has checked the role."""
    now = svc.clock()
    if body.rule is None and body.district is None and body.zone is None:
        raise ApiError(400, "bad_request", "name a rule, a district or a zone to silence")
    rules = svc.city.alert_rules
    if body.rule is not None and body.rule not in rules.by_id:
        raise ApiError(400, "unknown_rule", f"no alert rule {body.rule!r}")
    district = own = reader_scope().district  # a district centre silences its own district only
    if body.district is not None:
        found = svc.city.resolve(body.district)
        if found is None:
            raise ApiError(400, "unknown_district", f"no district {body.district!r}")
        if own is not None and found.code != own:
            raise ApiError(403, "other_district", "a district centre silences alerts of its own district only")
        district = found.code
    if body.zone is not None and body.zone not in rules.zones:
        raise ApiError(400, "unknown_zone", f"no zone {body.zone!r}")
    until_ms = _until(body.until)
    if until_ms <= now:
        raise ApiError(400, "bad_until", "until is in the past")
    if until_ms - now > SILENCE_MAX_MS:
        raise ApiError(400, "bad_until", "a silence lasts at most 30 days; a standing one is a mute window in the "
                                         "city pack's alerts.yaml")
    with svc.engine.begin() as conn:
        return store.create_silence(conn, rule=body.rule, district=district, zone=body.zone, until_ms=until_ms,
                                    reason=body.reason, actor=actor, now_ms=now)


@bp.delete("/silences/<id:silence_id>")
@require("command")
def delete_silence(silence_id: int):
    """End a silence early."""
    svc = services()
    row = end_silence(svc, silence_id, current_user().username)
    return jsonify({"silence": _silence_doc(row, svc.config["PANORAMA_TZ"])})


def end_silence(svc, silence_id: int, actor: str) -> dict:
    """End a silence now (the API's and the page's one way); raises NotFound, or Unprocessable when it has ended."""
    with svc.engine.begin() as conn:
        _within(conn, alert_silences, silence_id, "silence")
        return store.end_silence(conn, silence_id, actor, svc.clock())


def _until(text: str) -> int:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ApiError(400, "bad_until", "until must be an RFC 3339 time with its offset, e.g. "
                                         "2026-12-06T05:00:00+08:00")
    return int(at.timestamp() * 1000)


def init_app(server) -> None:
    """Register the alerts API (after the main API blueprint)."""
    server.register_blueprint(bp)
