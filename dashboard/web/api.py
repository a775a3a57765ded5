"""Serve the JSON API of SPEC section 6 under /api."""

from __future__ import annotations

import hmac
from typing import Any

import redis
from redis.exceptions import ClusterDownError, RedisClusterException
from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from dashboard.core import errors
from dashboard.web import auth
from dashboard.web import health
from dashboard.panorama import district as district_events
from dashboard.panorama import replay
from dashboard.panorama import state as live
from dashboard.storage import queries
from dashboard.storage.services import Services
from dashboard.core.channels import DOMAINS, feed_name
from dashboard.core.rules import KIND
from feeds.pipeline import Batch
from feeds.publish import encode_messages
from feeds.schema import MAX_MESSAGE_BYTES
from feeds.pipeline import make_pipeline

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_STREET_CHARS = 128  # SPEC section 3


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}


class IdConverter(IntegerConverter):
    """``<id:...>``: a row id, a positive integer that fits BIGINT; anything larger is a 404, not a SQL error."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=2**63 - 1)


# What the domain refuses (dashboard.core.errors), as HTTP statuses: the first class that matches answers.
DOMAIN_STATUS: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.NotFound, 404), (errors.Forbidden, 403), (errors.Conflict, 409), (errors.Unprocessable, 422),
    (errors.DomainError, 400),
)


def domain_status(err: errors.DomainError) -> int:
    """Return the HTTP status of a domain error."""
    return next(status for kind, status in DOMAIN_STATUS if isinstance(err, kind))


def read_body(model: type[BaseModel], required: bool) -> Any:
    """Return the request's JSON body validated by ``model``: 400 ``bad_request`` naming the first problem (and
    listing all), or an empty body when none is sent and none is ``required``."""
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


def services() -> Services:
    """Return the services of the current app."""
    return current_app.extensions["panorama"]


def json_errors(blueprint: Blueprint) -> Blueprint:
    """Answer the errors of ``blueprint`` in the SPEC section 6 shape: its own, HTTP, bus down.

    A database outage is answered app-wide (``_database_down``), for the API and the pages alike.
    """

    @blueprint.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return jsonify({"error": {"code": err.code, "message": err.message, **err.extra}}), err.status, err.headers

    @blueprint.errorhandler(errors.DomainError)
    def _domain_error(err: errors.DomainError):
        return jsonify({"error": {"code": err.code, "message": str(err)}}), domain_status(err)

    @blueprint.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return auth.error(err.code, (err.name or "error").lower().replace(" ", "_"), err.description)

    @blueprint.errorhandler(redis.ConnectionError)
    @blueprint.errorhandler(redis.TimeoutError)
    @blueprint.errorhandler(RedisClusterException)  # a cluster with no node reachable, a slot nobody serves
    @blueprint.errorhandler(ClusterDownError)  # CLUSTERDOWN / MASTERDOWN while a master is down
    def _bus_down(err):
        return auth.error(503, "bus_unavailable", f"Redis is unavailable: {err}")

    return blueprint


json_errors(bp)


@bp.get("/health")
def get_health():
    svc = services()
    doc = current_app.extensions["panorama_health"].check(svc.clock())
    return jsonify(doc), 200 if doc["status"] == "ok" else 503


@bp.get("/summary")
def get_summary():
    """The city now, or as it stood at ``?at=`` (SPEC section 12); ``?live=1`` adds the gateway's live state
    (the pages' fallback when websockets fail), or with ``at`` the replayed page's state at that minute."""
    svc = services()
    minutes = _window_arg()
    at = _at_arg(svc, minutes)
    now = svc.clock() if at is None else at
    want_live = request.args.get("live") in ("1", "true")
    # The counts are public like /api/health; the live part carries event titles, so it needs a viewer.
    if want_live and not auth.may_watch(request.args.get("token")):
        raise ApiError(401, "not_signed_in", "live events need a signed-in viewer or a wall's kiosk token")
    scope = auth.reader_scope(request.args.get("token"))
    with svc.read() as conn:  # the replica when there is one: these reads may lag by its replay delay
        doc = queries.summary(conn, svc.city, minutes, now, svc.config["PANORAMA_TZ"], svc.risk)
        if want_live and at is not None:  # with the alerts and units of then, as the reader's snapshot had them
            doc["live"] = replay.scoped(replay.replay_state(conn, svc.city, at, svc.config["PANORAMA_STALE_AFTER"],
                                                            svc.config["PANORAMA_TZ"]),
                                        scope, lambda code: live.trend(conn, now, district=code))
        elif want_live:
            doc["live"] = live.build_state(conn, svc.city, now, svc.config["PANORAMA_STALE_AFTER"], svc.risk)
            if scope.district is not None:
                # a district centre's (or a district's wall's) fallback: as its socket frames (gateway/fanout.py)
                doc["live"] = live.district_state(doc["live"], scope.district,
                                                  live.trend(conn, now, district=scope.district))
    return jsonify(district_summary_of(doc, scope.district) if scope.district is not None else doc)


def district_summary_of(doc: dict, code: str) -> dict:
    """Return GET /api/summary's answer as a district centre of ``code`` reads it (SPEC section 13): its district
    only, whose counts are the totals."""
    mine = [d for d in doc["districts"] if d["code"] == code]
    totals = dict(mine[0]["counts"]) if mine else {k: 0 for k in doc["totals"]}
    return {**doc, "totals": totals, "districts": mine}


def own_district(svc: Services, code: str):
    """Return the district ``code`` names (404 for none of the city's), 403 ``other_district`` when the reader is
    a district centre's and it is another district (SPEC section 13)."""
    district = _district(svc, code)
    scope = auth.reader_scope()
    if not scope.sees(district.code):
        raise ApiError(403, "other_district", f"you read district {scope.district} only, not {district.code}",
                       district=scope.district)
    return district


def _district(svc: Services, code: str):
    """Return the district ``code`` names (code, slug or name); 404 for none of the city's."""
    district = svc.city.resolve(code)
    if district is None:
        raise ApiError(404, "unknown_district", f"no district {code!r} in {svc.city.name_en}")
    return district


@bp.get("/districts/<code>/summary")
def get_district_summary(code: str):
    svc = services()
    district = own_district(svc, code)
    minutes = _window_arg()
    at = _at_arg(svc, minutes)
    with svc.read() as conn:
        return jsonify(queries.district_summary(conn, svc.city, district, minutes, svc.clock() if at is None else at,
                                                svc.config["PANORAMA_TZ"]))


@bp.get("/districts/<code>/events")
@auth.require("view")
def get_district_events(code: str):
    """A page of the district's events in the window: filters, title search, a sort, cursor paging."""
    svc = services()
    district = own_district(svc, code)
    start, end = queries.window_bounds(svc.clock(), _window_arg())
    query = district_events.EventQuery(district.code, start, end, **_event_filters())
    with svc.read() as conn:
        try:
            rows, cursor = district_events.event_rows(conn, query, svc.config["PANORAMA_TZ"], svc.city)
        except ValueError as err:  # a cursor this API did not give (or of another sort)
            raise ApiError(400, "bad_cursor", str(err)) from None
    return jsonify({"events": rows, "next_cursor": cursor})


def _event_filters() -> dict:
    """Read and check the events API's query string (SPEC section 6): 400 with the parameter's name."""
    args = request.args
    out: dict = {}
    q = args.get("q", "").strip()
    if len(q) > district_events.MAX_QUERY_CHARS:
        raise ApiError(400, "bad_q", f"q is at most {district_events.MAX_QUERY_CHARS} characters")
    out["q"] = q or None
    domain = args.get("domain") or None
    if domain is not None and domain not in DOMAINS:
        raise ApiError(400, "unknown_domain", f"domain must be one of {', '.join(DOMAINS)}")
    out["domain"] = domain
    kind = args.get("kind") or None
    if kind is not None and not KIND.fullmatch(kind):
        raise ApiError(400, "bad_kind", "kind is [a-z0-9_]{1,64}")
    out["kind"] = kind
    street = args.get("street") or None
    if street is not None and len(street) > MAX_STREET_CHARS:
        raise ApiError(400, "bad_street", f"street is at most {MAX_STREET_CHARS} characters")
    out["street"] = street
    out["severity_min"] = _int_arg("severity_min", 1, 4, None)
    out["limit"] = _int_arg("limit", 1, district_events.MAX_PAGE_ROWS, 50)
    sort = args.get("sort") or "-ts"
    if sort not in district_events.EVENT_SORTS:
        raise ApiError(400, "bad_sort", f"sort must be one of {', '.join(district_events.EVENT_SORTS)}")
    out["sort"] = sort
    cursor = args.get("cursor") or None
    if cursor is not None and len(cursor) > 512:
        raise ApiError(400, "bad_cursor", "cursor is not one this API gave")
    out["cursor"] = cursor
    return out


def _int_arg(name: str, low: int, high: int, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and low <= int(raw) <= high):
        raise ApiError(400, f"bad_{name}", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.post("/events")
def post_events():
    """Validate events sent over HTTP and put the valid ones on the durable streams for ingest."""
    svc = services()
    _check_ingest_token(svc.config["PANORAMA_INGEST_TOKEN"])
    raw = request.get_data(cache=False)
    domain = request.args.get("domain")
    if domain is not None and domain not in DOMAINS:
        raise ApiError(400, "unknown_domain", f"domain must be one of {', '.join(DOMAINS)}")
    pipeline = make_pipeline(svc)
    batch = Batch()
    channel = feed_name(domain or "http", svc.config["PANORAMA_FEED_PREFIX"])
    now = svc.clock()
    pipeline.add(batch, channel, domain, raw, now, received_ms=now)
    by_domain: dict[str, list] = {}
    for ev in batch.events:
        by_domain.setdefault(ev.domain, []).append(ev.to_message())
    prefix = svc.config["PANORAMA_FEED_PREFIX"]
    # Re-encoded events grow (the domain, the severity, the district's code), so they go in as many
    # entries as the limits need: an entry over them would be dead-lettered after the 202 had promised it.
    entries = {feed_name(dom, prefix): encode_messages(evs) for dom, evs in by_domain.items()}
    _check_room(svc, entries)
    pipe = svc.redis.pipeline(transaction=False)
    for stream, payloads in entries.items():
        # The stream is the durable hand-over: ingest stores and acknowledges it. No MAXLEN: trimming by
        # length would drop entries nobody has read yet, after their 202.
        for payload in payloads:
            pipe.xadd(stream, {"data": payload})
    pipeline.dead_letters(pipe, batch.rejects, now)
    pipe.execute()
    rejected = [{"index": r.index, "reason": r.reason, "message": r.message} for _, r in batch.rejects]
    if not batch.events:
        first = batch.rejects[0][1]
        raise ApiError(400, first.reason, first.message, rejected=rejected)
    return jsonify({"accepted": len(batch.events), "rejected": rejected}), 202


@bp.route("/", defaults={"_rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/<path:_rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(_rest):
    # Without this Dash's catch-all page route would answer unknown API paths with HTML.
    raise ApiError(404, "not_found", f"no API route {request.path}")


_OUTAGE_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5"><title>Panorama · 数据库暂不可用</title></head>
<body style="font-family:sans-serif;background:#0b1320;color:#e5e7eb;padding:3em">
<h1>数据库暂不可用，5 秒后自动重试</h1><p>The database is unavailable; this page retries every 5 seconds.</p>
</body></html>"""


def _is_api_path() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _database_down(err: OperationalError):
    # Whatever hit PostgreSQL while it is away, say so and retry, rather than a bare 500.
    if _is_api_path():
        return auth.error(503, "database_unavailable", "the database is unavailable", **{"Retry-After": "5"})
    return _OUTAGE_PAGE, 503, {"Retry-After": "5", "Content-Type": "text/html; charset=utf-8"}


def _app_not_found(err: HTTPException):
    # Paths no route matches at all (a newline in them, say) never reach the blueprint's handlers.
    if _is_api_path():
        return auth.error(404, "not_found", f"no API route {request.path!r}")
    return err


def _check_room(svc, entries: dict[str, list[bytes]]) -> None:
    """Refuse (503 backlog_full) before accepting anything when a stream would grow past its cap."""
    cap = svc.config["PANORAMA_STREAM_CAP"]
    pipe = svc.redis.pipeline(transaction=False)
    for stream in entries:
        pipe.xlen(stream)
    for (stream, payloads), length in zip(entries.items(), pipe.execute()):
        if length + len(payloads) > cap:
            raise ApiError(503, "backlog_full", f"{stream} holds {length} entries ingest has not stored yet "
                           f"(at most {cap}): try again later", headers={"Retry-After": "5"})


def _check_ingest_token(expected: str | None) -> None:
    if not expected:
        raise ApiError(403, "ingest_disabled", "HTTP ingest is disabled: set PANORAMA_INGEST_TOKEN")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send the ingest token as 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "the ingest token is not valid")


def _window_arg() -> int:
    try:
        return queries.parse_window(request.args.get("window"))
    except ValueError as err:
        raise ApiError(400, "bad_window", str(err)) from None


def _at_arg(svc: Services, minutes: int) -> int | None:
    """Return ``?at=`` (SPEC section 12) as epoch ms, None when absent; 400 ``bad_at`` when it is malformed, in
    the future or older than the rollups keep for this window."""
    raw = request.args.get("at")
    if raw is None:
        return None
    try:
        return replay.parse_at(raw, svc.clock(), int(svc.config["PANORAMA_ROLLUP_RETENTION_DAYS"]), minutes,
                                svc.config["PANORAMA_TZ"])
    except replay.BadReplay as err:
        raise ApiError(400, err.code, str(err)) from None


def init_app(server) -> None:
    """Register the API blueprint and cap request bodies at the feed message limit."""
    # A little headroom over 64 KiB so an oversized message gets the schema's own reason.
    server.config.setdefault("MAX_CONTENT_LENGTH", MAX_MESSAGE_BYTES * 16)
    server.url_map.converters["id"] = IdConverter
    server.register_blueprint(bp)
    probe = health.HealthProbe(server.extensions["panorama"])
    server.extensions["panorama_health"] = probe
    server.extensions["panorama"].on_close(probe.close)
    server.register_error_handler(404, _app_not_found)
    server.register_error_handler(OperationalError, _database_down)
