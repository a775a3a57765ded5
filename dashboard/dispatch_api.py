"""Serve linked dispatch under /api (incidents, tasks, transitions), publish each change live, check deadlines."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import orjson
import redis
from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from sqlalchemy import func, select

from dashboard import dispatch as d
from dashboard.api import ApiError, json_errors, services
from dashboard.auth import check_role, current_user, require
from dashboard.models import events, incident_reports, incidents, tasks
from dashboard.queries import iso
from feeds.channels import UPDATES_CHANNEL

log = logging.getLogger(__name__)
bp = Blueprint("dispatch_api", __name__, url_prefix="/api")
json_errors(bp)

STATUSES = ("open", "dispatched", "in_progress", "resolved", "closed")
# The officer's queue: everything not yet closed (a resolved incident waits for the officer to close it).
ACTIVE = ("open", "dispatched", "in_progress", "resolved")
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


# --- shared by the API and the /dispatch page ------------------------------------------------------------

QUEUE_ROWS = 500  # the most incidents a queue draws; how many more there are is said beside it


def _queued(statuses, department: str | None) -> list:
    where = [incidents.c.status.in_(list(statuses))]
    return where if department is None else [*where, d.held_by(department)]


def queue(conn, statuses=ACTIVE, limit: int = QUEUE_ROWS, department: str | None = None) -> list[dict]:
    """Return incidents in ``statuses``, the most severe first, then the oldest; with ``department``, only
    those it holds a task of."""
    stmt = (select(incidents).where(*_queued(statuses, department))
            .order_by(incidents.c.severity.desc(), incidents.c.opened_ms, incidents.c.id).limit(limit))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def queue_total(conn, shown: list[dict], statuses=ACTIVE, limit: int = QUEUE_ROWS,
                department: str | None = None) -> int:
    """Return how many incidents the queue ``shown`` (read with ``limit``) stands for: counted only when cut."""
    if len(shown) < limit:
        return len(shown)
    return int(conn.execute(select(func.count()).select_from(incidents)
                            .where(*_queued(statuses, department))).scalar_one())


def scope(user) -> str | None:
    """Return the one department ``user`` is limited to (a liaison's), or None when they see every one.

    A liaison without a department is limited to "" and so sees nothing.
    """
    if user is not None and user.role == "liaison":
        return user.department or ""
    return None


def may_see(conn, user, incident_id: int) -> bool:
    """Tell whether ``user`` may read an incident: a liaison only one their department holds a task of."""
    department = scope(user)
    if department is None:
        return True
    return bool(conn.execute(select(tasks.c.id).where(tasks.c.incident_id == incident_id,
                                                      tasks.c.department == department).limit(1)).first())


def incident_doc(row: dict, tz: str) -> dict:
    """Return an incident as published and listed: the SPEC shape plus its domain."""
    return {**d.incident_view(row, tz), "domain": row["domain"]}


def suggestion_doc(svc, row: dict, at_ms: int) -> dict | None:
    """Return what the rules would dispatch ``row`` to now, or None when the city has no rules."""
    rules = svc.city.rules
    if rules is None:
        return None
    s = rules.suggest(row, at_ms)
    tz = svc.config["PANORAMA_TZ"]
    return {"rule": s.rule_name, "lead": s.lead, "supporting": list(s.supporting), "departments": list(s.departments),
            "ack_due": iso(s.ack_due_ms, tz), "resolve_due": iso(s.resolve_due_ms, tz)}


def detail(conn, svc, incident_id: int, at_ms: int) -> dict:
    """Return one incident with its reports, tasks, history and the rules' suggestion; NotFound if none."""
    tz = svc.config["PANORAMA_TZ"]
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
    if row is None:
        raise d.NotFound(f"no incident {incident_id}")
    row = dict(row)
    reports = conn.execute(
        select(events).join(incident_reports, incident_reports.c.event_seq == events.c.seq)
        .where(incident_reports.c.incident_id == incident_id).order_by(events.c.ts_ms.desc()).limit(200)
    ).mappings().all()
    return {
        "incident": {**incident_doc(row, tz), "street": row["street"], "lat": row["lat"], "lon": row["lon"],
                     "last_report_at": iso(row["last_report_ms"], tz), "version": row["version"]},
        "reports": [{"id": r["event_id"], "domain": r["domain"], "kind": r["kind"], "severity": r["severity"],
                     "title": r["title"], "street": r["street"], "ts": iso(r["ts_ms"], tz), "lat": r["lat"],
                     "lon": r["lon"], "source": r["source"]} for r in reports],
        "tasks": [d.task_view(t, tz) for t in sorted(d.list_tasks(conn, incident_id=incident_id),
                                                      key=lambda t: t["id"])],
        "history": [{"at": iso(h["at_ms"], tz), "actor": h["actor"], "action": h["action"], "task_id": h["task_id"],
                     "from": h["from_state"], "to": h["to_state"], "note": h["note"]}
                    for h in d.history(conn, incident_id)],
        "suggestion": suggestion_doc(svc, row, at_ms) if row["status"] not in d.DONE else None,
    }


def task_department(conn, task_id: int) -> str:
    """Return the department of a task; NotFound if none."""
    dep = conn.execute(select(tasks.c.department).where(tasks.c.id == task_id)).scalar()
    if dep is None:
        raise d.NotFound(f"no task {task_id}")
    return dep


def may_move(user, department: str) -> bool:
    """Tell whether ``user`` may move a task of ``department`` (a liaison only their own department's)."""
    if user is not None and user.role == "liaison":
        return user.active and bool(user.department) and user.department == department
    return check_role(user, "dispatch")


def publish(svc, incident_rows: list[dict], task_rows: list[dict], **extra) -> None:
    """Publish committed changes on the updates channel; a bus outage only costs the live push."""
    tz = svc.config["PANORAMA_TZ"]
    at = svc.clock()
    msg = {"type": "delta", "at": at, "events": [], "counts": [], "feeds": {},
           "incidents": [incident_doc(r, tz) for r in incident_rows], "tasks": [d.task_view(t, tz) for t in task_rows],
           **extra}
    try:
        svc.redis.publish(UPDATES_CHANNEL, orjson.dumps(msg))
    except redis.RedisError:
        # The write is committed; the pages' polling picks it up.
        log.warning("could not publish a dispatch change", exc_info=True)


def write(svc, fn: Callable[..., d.Change], *args) -> d.Change:
    """Run one dispatch write in its own transaction, then publish what changed."""
    with svc.engine.begin() as conn:
        change = fn(conn, *args)
    publish(svc, [change.incident], change.tasks)
    return change


def do_transition(svc, user, task_id: int, to: str, version: int, note: str | None) -> d.Change:
    """Move a task for ``user``, refusing (403 as ApiError) a department they may not move."""
    with svc.engine.begin() as conn:
        if not may_move(user, task_department(conn, task_id)):
            raise ApiError(403, "forbidden", f"{user.username} may not move tasks of that department")
        change = d.transition(conn, task_id, to, version, user.username, note, svc.clock())
    publish(svc, [change.incident], change.tasks)
    return change


# --- the HTTP API ----------------------------------------------------------------------------------------

@bp.errorhandler(d.DispatchError)
def _dispatch_error(err: d.DispatchError):
    return jsonify({"error": {"code": err.code, "message": str(err)}}), err.status


def _body(model: type[BaseModel], required: bool) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ApiError(400, "bad_request", "send a JSON body")
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in err.errors()]
        first = problems[0]
        raise ApiError(400, "bad_request", f"{first['field'] or 'body'}: {first['message']}",
                       problems=problems) from None


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
        rows = queue(conn, statuses, department=scope(current_user()))
    return jsonify({"incidents": [incident_doc(r, tz) for r in rows]})


@bp.get("/incidents/<id:incident_id>")
@require("view")
def get_incident(incident_id: int):
    svc = services()
    with svc.engine.connect() as conn:
        doc = detail(conn, svc, incident_id, svc.clock())
        if not may_see(conn, current_user(), incident_id):
            raise ApiError(403, "forbidden", "a liaison sees only the incidents of their own department's tasks")
    return jsonify(doc)


@bp.post("/incidents/<id:incident_id>/dispatch")
@require("officer")
def post_dispatch(incident_id: int):
    """Route an incident to the departments named, or to the rules' suggestion."""
    svc = services()
    body = _body(DispatchBody, required=False)
    if svc.city.rules is None:
        raise ApiError(400, "no_rules", f"{svc.city.name_en} has no routing rules")
    change = write(svc, d.dispatch, incident_id, body.departments, current_user().username, body.note, svc.clock(),
                   svc.city.rules, svc.city)
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident": incident_doc(change.incident, tz), "tasks": [d.task_view(t, tz) for t in change.tasks]})


@bp.post("/incidents/<id:incident_id>/close")
@require("officer")
def post_close(incident_id: int):
    """Close a resolved incident."""
    svc = services()
    body = _body(CloseBody, required=False)
    change = write(svc, d.close_incident, incident_id, current_user().username, body.note, svc.clock())
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident": incident_doc(change.incident, tz), "tasks": [d.task_view(t, tz) for t in change.tasks]})


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
        rows = d.list_tasks(conn, department=department, state=state)
    return jsonify({"tasks": [d.task_view(t, tz) for t in rows]})


@bp.post("/tasks/<id:task_id>/transition")
@require("dispatch")
def post_transition(task_id: int):
    """Move a task: 409 on a stale version, 422 when the move is not allowed."""
    svc = services()
    body = _body(TransitionBody, required=True)
    change = do_transition(svc, current_user(), task_id, body.to, body.version, body.note)
    tz = svc.config["PANORAMA_TZ"]
    return jsonify({"incident": incident_doc(change.incident, tz), "task": d.task_view(change.task, tz)})


def init_app(server) -> None:
    """Register the dispatch API (after the main API blueprint)."""
    server.register_blueprint(bp)


# --- the deadline checker --------------------------------------------------------------------------------

class DeadlineChecker:
    """Escalate overdue tasks every ``every_s`` seconds and tell the commanders, until stopped.

    Any number of replicas may run one: ``escalate_overdue`` escalates each task exactly once.
    """

    def __init__(self, svc, stop_event: threading.Event | None = None, every_s: float = 15.0):
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self.svc, self.every_s = svc, every_s
        self.stop_event = stop_event or threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self, at_ms: int | None = None) -> list[dict]:
        """Escalate what is overdue now, publish it, and return the escalated tasks."""
        at = self.svc.clock() if at_ms is None else at_ms
        with self.svc.engine.begin() as conn:
            rows = d.escalate_overdue(conn, at)
            incident_rows = [dict(r) for r in conn.execute(
                select(incidents).where(incidents.c.id.in_({r["incident_id"] for r in rows})))
                .mappings()] if rows else []
        if rows:
            tz = self.svc.config["PANORAMA_TZ"]
            for r in rows:
                log.warning("dispatch SLA breach: task %s (%s) of incident %s not %s by the deadline", r["id"],
                            r["department"], r["incident_id"],
                            "acknowledged" if r["overdue"] == "acknowledge" else "resolved")
            publish(self.svc, incident_rows, rows,
                    escalations=[{**d.task_view(r, tz), "overdue": r["overdue"]} for r in rows])
        return rows

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - a database blip must not end the checker
                log.exception("deadline check failed; retrying in %ss", self.every_s)
            self.stop_event.wait(self.every_s)

    def start(self) -> "DeadlineChecker":
        """Start the checker thread."""
        self._thread = threading.Thread(target=self._run, name="deadline-checker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self.stop_event.set()
        # stop() must not join from inside the worker thread
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> "DeadlineChecker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_deadline_checker(svc, stop_event: threading.Event, every_s: float = 15.0) -> DeadlineChecker:
    """Start a deadline checker on ``svc`` that runs until ``stop_event`` is set."""
    return DeadlineChecker(svc, stop_event, every_s).start()
