"""Serve the briefings under /api: list, generate now, one briefing's data, its HTML report and its PDF.

A district centre's user lists, reads and makes their district's briefings only (another's: 404, as another
district's incident); the city centre reads them all, the city's first (SPEC section 13).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from dashboard.web.api import ApiError, json_errors, services
from dashboard.web.auth import current_user, error, require
from dashboard.storage import briefings as store
from dashboard.briefings import after_action
from dashboard.briefings.generate import generate_now
from dashboard.briefings.render import find_browser, print_pdf
from dashboard.dispatch.desk import in_district, may_see, reader
from dashboard.briefings.lock import BriefingBusy
from dashboard.core.clock import iso

bp = Blueprint("briefings_api", __name__, url_prefix="/api")
json_errors(bp)
# The report may show only itself: inline styles and data: images, nothing loaded from anywhere.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def filename(row: dict, ext: str, tz: str) -> str:
    """Return a briefing's download name: panorama-briefing-<id>-<period end, local>.<ext>."""
    return store.download_name(row["id"], row["period_end_ms"], ext, tz)


def summary_doc(row: dict, tz: str) -> dict:
    """Return a briefing as listed: period, headline numbers, what is there and where to get it."""
    bid = row["id"]
    ready = row["status"] == "ready"
    return {
        "id": bid, "slot": row["slot"], "trigger": row["trigger"], "requested_by": row["requested_by"],
        "status": row["status"],
        "period": {"start": iso(row["period_start_ms"], tz), "end": iso(row["period_end_ms"], tz)},
        "created_at": iso(row["created_ms"], tz),
        "finished_at": iso(row["finished_ms"], tz) if row["finished_ms"] else None,
        "lang": row["lang"], "district": row.get("district"), "headline": row["headline"], "images": bool(row["images"]),
        "pdf": ready and bool(row["images"]), "note": row["note"],
        "links": {"page": f"/briefings/{bid}", "data": f"/api/briefings/{bid}",
                  "html": f"/api/briefings/{bid}.html" if ready else None,
                  "pdf": f"/api/briefings/{bid}.pdf" if ready and row["images"] else None},
    }


def _find(briefing_id: int, *columns: str) -> dict:
    """Return a briefing's row the reader may read: 404 for none, and for one not of a district centre's
    user's district (the city's or another district's: as if there were none)."""
    row = store.get(services().engine, briefing_id, *columns)
    if row is None or not reader(current_user()).sees(row["district"]):
        raise ApiError(404, "not_found", f"no briefing {briefing_id}")
    return row


def listed_district(scope, asked: str | None) -> str | None:
    """Return the ``district`` filter of the reader's list: a district centre's own district whatever was
    asked; for the city centre what ``?district=`` asks (``city``: the city's, a code: that district's)."""
    return scope.district if not scope.city else (asked or None)


def _ready(row: dict) -> None:
    if row["status"] != "ready":
        raise ApiError(404, "not_ready", f"briefing {row['id']} is {row['status']}")


def _disposition(name: str) -> str:
    return f'{"attachment" if request.args.get("download") else "inline"}; filename="{name}"'


@bp.get("/briefings")
@require("view")
def list_briefings():
    """The briefings, newest first, with their period and headline numbers."""
    svc = services()
    tz = svc.config["PANORAMA_TZ"]
    scope = reader(current_user())
    asked = request.args.get("district")
    if asked is not None and asked != store.CITY and asked not in svc.city.by_code:
        raise ApiError(400, "bad_district", f"district must be {store.CITY!r} or a district code")
    rows = store.list_briefings(svc.engine, district=listed_district(scope, asked))
    return jsonify({"briefings": [summary_doc(r, tz) for r in rows], "scope": scope.district or "city",
                    "schedule": svc.config["PANORAMA_BRIEFING_CRON"], "tz": tz})


@bp.post("/briefings")
@require("brief")
def post_briefing():
    """Make a briefing now (covering the period since the last slot) and answer it, 201; 429 while another is
    being made anywhere in the deployment. A district centre's user makes their district's."""
    svc = services()
    try:
        row = generate_now(svc, current_user().username, svc.clock(), reader(current_user()).district)
    except BriefingBusy as busy:
        return error(429, "briefing_in_progress", str(busy), **{"Retry-After": str(busy.retry_after)})
    doc = summary_doc(row, svc.config["PANORAMA_TZ"])
    return jsonify(doc), 201, {"Location": doc["links"]["data"]}


@bp.get("/briefings/<id:briefing_id>")
@require("view")
def get_briefing(briefing_id: int):
    """One briefing: its summary and the data it was made from (``?download=1``: as a file)."""
    svc = services()
    tz = svc.config["PANORAMA_TZ"]
    row = _find(briefing_id, "data")
    response = jsonify({**summary_doc(row, tz), "data": row.get("data")})
    if request.args.get("download"):
        response.headers["Content-Disposition"] = _disposition(filename(row, "json", tz))
    return response


@bp.get("/briefings/<id:briefing_id>.html")
@require("view")
def get_briefing_html(briefing_id: int):
    """The self-contained HTML report."""
    row = _find(briefing_id, "html")
    _ready(row)
    return Response(row["html"], mimetype="text/html", headers={
        "Content-Disposition": _disposition(filename(row, "html", services().config["PANORAMA_TZ"])),
        "Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"})


@bp.get("/briefings/<id:briefing_id>.pdf")
@require("view")
def get_briefing_pdf(briefing_id: int):
    """The report as PDF (none when it was made without a browser)."""
    row = _find(briefing_id, "pdf")
    _ready(row)
    if not row["pdf"]:
        raise ApiError(404, "no_pdf", f"briefing {briefing_id} has no PDF: {row['note'] or 'no browser'}")
    return Response(bytes(row["pdf"]), mimetype="application/pdf", headers={
        "Content-Disposition": _disposition(filename(row, "pdf", services().config["PANORAMA_TZ"])),
        "X-Content-Type-Options": "nosniff"})


def _report(incident_id: int) -> tuple[str, str]:
    """Return an incident's after-action report as HTML and its download name: the officers' and commanders', and
    a liaison's of an incident their department had a task of (403 otherwise); 422 while it is being handled."""
    svc = services()
    user = current_user()
    lang = request.args.get("lang") or request.cookies.get("panorama_lang") or "zh"
    lang = lang if lang in ("zh", "en") else "zh"
    tz = svc.config["PANORAMA_TZ"]
    with svc.engine.connect() as conn:
        if not in_district(conn, user, incident_id):  # another district's: as if there were none (SPEC section 13)
            raise ApiError(404, "not_found", f"no incident {incident_id}")
        if user.role == "liaison" and not may_see(conn, user, incident_id):
            if after_action.exists(conn, incident_id):
                raise ApiError(403, "forbidden", "a liaison reads the reports of their own department's incidents")
            raise ApiError(404, "not_found", f"no incident {incident_id}")
        data = after_action.collect(conn, svc, incident_id, svc.clock())
    stamp = (data["closed_at"] or data["resolved_at"] or data["generated_at"])[:16]
    name = f"panorama-incident-{incident_id}-{stamp.replace('-', '').replace(':', '').replace('T', '-')}"
    return after_action.build_html(data, svc.city, lang, tz), name


@bp.get("/incidents/<id:incident_id>/report.html")
@require("dispatch")
def get_incident_report_html(incident_id: int):
    """A closed or resolved incident's after-action report, self-contained HTML."""
    html, name = _report(incident_id)
    return Response(html, mimetype="text/html", headers={
        "Content-Disposition": _disposition(name + ".html"), "Content-Security-Policy": REPORT_CSP,
        "X-Content-Type-Options": "nosniff"})


@bp.get("/incidents/<id:incident_id>/report.pdf")
@require("dispatch")
def get_incident_report_pdf(incident_id: int):
    """The after-action report printed to PDF by the briefings' browser; 503 when there is none."""
    html, name = _report(incident_id)
    browser = find_browser(services().config["BROWSER_PATH"])
    if browser is None:
        raise ApiError(503, "no_browser", "no Chromium to print the report with (BROWSER_PATH): the HTML is at "
                       f"/api/incidents/{incident_id}/report.html")
    return Response(print_pdf(html, browser), mimetype="application/pdf", headers={
        "Content-Disposition": _disposition(name + ".pdf"), "X-Content-Type-Options": "nosniff"})


def init_app(server) -> None:
    """Register the briefings API."""
    server.register_blueprint(bp)
