"""Serve the open data under /api/open (SPEC section 14): counts and districts for outside developers, by API key.

Every answer is read from the hour rollups (``dashboard.panorama.open_data``), never from the events, over a
bounded range of hours. A key is sent as the ``X-API-Key`` header; each key may make PANORAMA_OPEN_RATE requests
per window (``ratelimit``), and a 429 says in ``Retry-After`` when to come back. With Redis down the limit cannot
be counted and the API answers 503 (fail closed): the open data is not urgent to anyone, and the database it
reads is the one the operations centre works on, so it must not be left open to unmetered traffic. The
OpenAPI document needs no key: it describes the API, it holds no data.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime

from flask import Blueprint, Response, current_app, g, jsonify, request

from dashboard.core.bus import BUS_DOWN, BUS_ERRORS
from dashboard.core.channels import DOMAINS
from dashboard.core.clock import DAY_MS, iso
from dashboard.panorama import open_data
from dashboard.storage import apikeys
from dashboard.web import openapi_doc, ratelimit
from dashboard.web.api import ApiError, json_errors, services

log = logging.getLogger(__name__)
bp = Blueprint("open_api", __name__, url_prefix="/api/open")
json_errors(bp)
KEY_HEADER = "X-API-Key"
DEFAULT_HOURS = 24  # no ``from``: the 24 hours before ``to``; no ``to``: up to the start of this hour
MAX_PARAM_CHARS = 64
UNAVAILABLE_RETRY_S = 30


@bp.before_request
def _check_key():
    """Refuse a request without a live key (401), over its rate (429), or when Redis cannot count (503)."""
    if request.endpoint == "open_api.get_openapi":
        return None
    svc = services()
    key = apikeys.live_key(svc.engine, request.headers.get(KEY_HEADER))
    if key is None:
        if not request.headers.get(KEY_HEADER):
            raise ApiError(401, "api_key_required", f"send your API key as the {KEY_HEADER} header (see /open)")
        raise ApiError(401, "bad_api_key", "this API key is unknown or revoked")
    rate: ratelimit.Rate = current_app.extensions["panorama_open_rate"]
    try:
        verdict = ratelimit.hit(svc.redis, key.id, rate, svc.clock())
    except (*BUS_DOWN, *BUS_ERRORS):
        log.warning("open data refused: the rate limit cannot be counted (Redis down)", exc_info=True)
        raise ApiError(503, "rate_limit_unavailable", "the rate limit cannot be counted just now; try again later",
                       headers={"Retry-After": str(UNAVAILABLE_RETRY_S)}) from None
    g.open_rate_headers = {"RateLimit-Limit": str(rate.limit), "RateLimit-Remaining": str(verdict.remaining),
                           "RateLimit-Reset": str(verdict.reset_s)}
    if not verdict.allowed:
        raise ApiError(429, "rate_limited", f"this key may make {rate} requests; try again in {verdict.reset_s} s",
                       headers={"Retry-After": str(verdict.reset_s), **g.open_rate_headers})
    return None


@bp.after_request
def _rate_headers(response):
    response.headers.update(getattr(g, "open_rate_headers", {}))
    return response


def _instant(name: str) -> int | None:
    """Read an RFC 3339 time with its offset as epoch ms; None when absent; 400 naming the parameter."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    if len(raw) > MAX_PARAM_CHARS:
        raise ApiError(400, f"bad_{name}", f"{name} is an RFC 3339 time such as 2026-12-06T08:00:00+08:00")
    try:
        when = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise ApiError(400, f"bad_{name}", f"{name} is an RFC 3339 time such as 2026-12-06T08:00:00+08:00, "
                                           f"not {raw!r}") from None
    if when.tzinfo is None:
        raise ApiError(400, f"bad_{name}", f"{name} needs its UTC offset (+08:00 or Z)")
    return int(when.timestamp() * 1000)


def _query(with_filters: bool = True) -> open_data.CountQuery:
    """Read and check the range (and the district and domain) of a request: 400 with the parameter's name."""
    svc = services()
    max_days = current_app.config["PANORAMA_OPEN_MAX_DAYS"]
    end = _instant("to")
    start = _instant("from")
    if end is None:
        end = open_data.whole_hours(svc.clock()) if start is None else start + DEFAULT_HOURS * 3_600_000
    if start is None:
        start = end - DEFAULT_HOURS * 3_600_000
    if start >= end:
        raise ApiError(400, "bad_range", "from must be before to")
    if end - start > max_days * DAY_MS:
        raise ApiError(400, "range_too_wide", f"from and to are at most {max_days} days apart; ask in pieces")
    codes = tuple(d.code for d in svc.city.districts)
    domain = None
    if with_filters:
        wanted = request.args.get("district") or None
        if wanted is not None:
            district = svc.city.resolve(wanted[:MAX_PARAM_CHARS])
            if district is None:
                raise ApiError(400, "unknown_district", f"district is one of {', '.join(codes)}")
            codes = (district.code,)
        domain = request.args.get("domain") or None
        if domain is not None and domain not in DOMAINS:
            raise ApiError(400, "unknown_domain", f"domain must be one of {', '.join(DOMAINS)}")
    return open_data.CountQuery(start, end, codes, domain)


@bp.get("/counts")
def get_counts():
    """The published counts per district, hour, domain and kind, as JSON or CSV."""
    fmt = request.args.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise ApiError(400, "bad_format", "format is json or csv")
    svc = services()
    query = _query()
    tz = svc.config["PANORAMA_TZ"]
    with svc.read() as conn:
        rows = open_data.count_rows(conn, query, tz)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=open_data.FIELDS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="panorama-counts.csv"'})
    return jsonify({"from": iso(query.start, tz), "to": iso(query.end, tz), "min_count": open_data.MIN_COUNT,
                    "rows": rows})


@bp.get("/districts.geojson")
def get_districts():
    """The district polygons, each with its published counts per domain over the range."""
    svc = services()
    query = _query(with_filters=False)
    with svc.read() as conn:
        doc = open_data.districts_geojson(conn, svc.city, query)
    return Response(current_app.json.dumps(doc), mimetype="application/geo+json")


@bp.get("/openapi.json")
def get_openapi():
    """The OpenAPI 3.1 description of this API (public: it describes, it holds no data)."""
    svc = services()
    return jsonify(openapi_doc.document(svc.city, current_app.config["PANORAMA_OPEN_MAX_DAYS"],
                                        str(current_app.extensions["panorama_open_rate"])))


def init_app(server) -> None:
    """Register the open-data API; its rate is read here, when the app is created (a bad one fails the start)."""
    server.extensions["panorama_open_rate"] = ratelimit.parse_rate(server.config["PANORAMA_OPEN_RATE"])
    server.register_blueprint(bp)
