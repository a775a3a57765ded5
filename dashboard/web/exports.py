"""Serve the officers' tables as files: a district's events (with the table's filters and sort), the dispatch
queue's incidents, the task board's tasks and /alerts' trail, as CSV or Excel. Each in the scope and role of its
REST read: what a role may not read it may not export.

GET /api/districts/<code>/events.csv and .xlsx take what GET /api/districts/<code>/events takes (window, q,
domain, kind, street, severity_min, sort), and what the drill-down's table holds besides (``filter``: its
filter row, as DataTable writes it; ``sort_by``: its sorted column as ``column:direction``, falling back as the
table does), and ``lang`` for the headings and words. No limit and no cursor: the whole result, streamed. The
same role as the JSON route ("view"). How many rows there are is known before a byte is sent (from the rollups,
or a bounded count), so an export over PANORAMA_EXPORT_MAX_ROWS is a 400, never a cut-off file.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pandas as pd
from flask import Blueprint, Response, request, stream_with_context
from sqlalchemy import case, func, select

from dashboard.core.alerts import LEVELS
from dashboard.dispatch import desk
from dashboard.dispatch.export_rows import INCIDENT_COLUMNS, TASK_COLUMNS, incident_cells, task_cells
from dashboard.panorama import district as district_data
from dashboard.panorama import export
from dashboard.storage import alerts as alert_store
from dashboard.storage import queries
from dashboard.storage.models import incidents, tasks
from dashboard.web import auth
from dashboard.web.api import ApiError, _event_filters, _window_arg, json_errors, own_district, services
from dashboard.web.api_alerts import _listed
from dashboard.web.api_dispatch import _statuses
from dashboard.web.first_paint import lang_of

bp = Blueprint("exports", __name__, url_prefix="/api")
json_errors(bp)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SORT_BY_CHARS = 64


def _lang() -> str:
    lang = request.args.get("lang") or lang_of(request.cookies)
    if lang not in ("zh", "en"):
        raise ApiError(400, "bad_lang", "lang is zh or en")
    return lang


def _table_state(start: int, end: int, api_sort: str) -> tuple[list, str]:
    """Read the table's filter row and sorted column, when sent: its filters and the sort it serves."""
    raw = request.args.get("filter") or ""
    if len(raw) > district_data.MAX_FILTER_CHARS:
        raise ApiError(400, "bad_filter", f"filter is at most {district_data.MAX_FILTER_CHARS} characters")
    try:
        filters = district_data.parse_filter(raw)
    except ValueError as err:
        raise ApiError(400, "bad_filter", str(err)) from None
    sort_by = request.args.get("sort_by") or ""
    if not sort_by:
        return filters, api_sort
    column, _, direction = sort_by[:MAX_SORT_BY_CHARS].partition(":")
    if column not in district_data.SORTABLE or direction not in ("asc", "desc"):
        raise ApiError(400, "bad_sort_by", f"sort_by is column:asc or column:desc, a column one of "
                                           f"{', '.join(district_data.SORTABLE)}")
    sort, _why = district_data.table_sort([{"column_id": column, "direction": direction}], start, end)
    return filters, sort


def _file_name(what: str, now_ms: int, tz: str, ext: str) -> str:
    stamp = datetime.fromtimestamp(now_ms / 1000, timezone.utc).astimezone(ZoneInfo(tz)).strftime("%Y%m%d-%H%M")
    return f"panorama-{what}-{stamp}.{ext}"


def _district_events(fmt: str, code: str):
    svc = services()
    district = own_district(svc, code)
    lang = _lang()
    now = svc.clock()
    start, end = queries.window_bounds(now, _window_arg())
    args = {k: v for k, v in _event_filters().items() if k not in ("limit", "cursor")}
    query = district_data.EventQuery(district.code, start, end, **args)
    filters, sort = _table_state(start, end, query.sort)
    filters = district_data.street_filters(filters, svc.city, district.code)
    try:
        district_data.check_sort(sort, start, end)
    except district_data.SortUnavailable as err:
        raise ApiError(400, err.code, str(err)) from None
    where = district_data.api_where(query) + district_data.table_where(filters)
    bound = district_data.both_bounds(district_data.api_bound(query, svc.city),
                                      district_data.table_bound(filters, svc.city, district.code))
    max_rows = svc.config["PANORAMA_EXPORT_MAX_ROWS"]
    with svc.read() as conn:
        total = district_data.count_events(conn, svc.city, district, start, end, filters + _as_filters(query))
        if total is None:  # filters the rollups cannot count: count the events, stopping past the cap
            total = district_data.count_matching(conn, district.code, start, end, where, max_rows + 1)
    if total > max_rows:
        raise ApiError(400, "too_many_rows", f"this export holds {total:,} rows or more, over the {max_rows:,} "
                                             f"one export may hold: narrow the window or the filters")
    tz = svc.config["PANORAMA_TZ"]

    def read(cursor, n):
        # A connection per page: a slow download holds none between pages.
        with svc.read() as conn:
            page, nxt = district_data.keyset_page(conn, district.code, start, end, sort, n, cursor, where, bound)
        return [_view(r) for r in page], nxt

    def cells(rows):
        return export.event_cells(rows, lang, tz, svc.city)

    frames = export.frames(export.pages(read, max_rows), export.EVENT_COLUMNS, cells)
    name = _file_name(f"{district.code}-events", now, tz, fmt)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
               "X-Export-Rows": str(total)}
    if fmt == "csv":
        body = stream_with_context(export.csv_stream(frames, export.EVENT_COLUMNS, lang, export.FREE_TEXT))
        return Response(body, mimetype="text/csv", headers=headers, direct_passthrough=True)
    try:
        return _send_xlsx(lambda path: export.write_xlsx(frames, export.EVENT_COLUMNS, lang, path), headers)
    except export.TooManyRows as err:
        raise ApiError(400, "too_many_rows", str(err)) from None


def _incidents(fmt: str):
    """The queue of /dispatch (``status`` as GET /api/incidents: default the queue's), in its order and scope:
    a liaison's holds only the incidents their department has tasks of."""
    svc = services()
    lang = _lang()
    statuses = _statuses(request.args.get("status"))
    scope = desk.reader(auth.current_user())  # a district centre's user: their district's incidents
    stmt = desk.queue_statement(statuses, scope.department, scope.district)
    return _streamed(svc, fmt, stmt, INCIDENT_COLUMNS, lambda rows: incident_cells(rows, svc.city, lang, svc_tz(svc)),
                     lang, "incidents", ("title",), "ask for fewer statuses")


def _tasks(fmt: str):
    """/dispatch's task board (``department``, ``incident``: as the board is filtered), in its order: department
    by department in the city pack's order, then by task. In GET /api/tasks' scope: a liaison's holds their own
    department's tasks, and asking for another's is a 403."""
    svc = services()
    lang = _lang()
    department, own = request.args.get("department") or None, desk.scope(auth.current_user())
    if own is not None:
        if department not in (None, own):
            raise ApiError(403, "forbidden", "a liaison sees only their own department's tasks")
        department = own
    if department is not None and len(department) > 64:
        raise ApiError(400, "bad_department", "department is a department's code")
    incident = request.args.get("incident")
    if incident is not None and not (incident.isdigit() and 0 < int(incident) < 2**63):
        raise ApiError(400, "bad_incident", "incident is an incident's id")
    order = {d["code"]: i for i, d in enumerate(svc.city.departments)}
    stmt = (desk.board_statement(department, int(incident) if incident else None,
                                 desk.reader(auth.current_user()).district)
            .add_columns(incidents.c.title.label("incident_title"), incidents.c.kind.label("incident_kind"))
            .order_by(None).order_by(case(order, value=tasks.c.department, else_=len(order)), tasks.c.id))
    return _streamed(svc, fmt, stmt, TASK_COLUMNS, lambda rows: task_cells(rows, svc.city, lang, svc_tz(svc)),
                     lang, "tasks", ("incident",), "choose a department or an incident")


def _alerts(fmt: str):
    """/alerts' trail with its filters (``status``, ``level``: comma-separated, as GET /api/alerts;
    ``district``), newest first; the same role as GET /api/alerts."""
    svc = services()
    lang = _lang()
    statuses, levels = _listed("status", alert_store.STATUSES), _listed("level", LEVELS)
    districts: tuple[str, ...] = auth.reader_scope().districts()  # a district centre's: its own, and no other
    if request.args.get("district"):
        districts = (own_district(svc, request.args["district"]).code,)
    stmt = alert_store.alerts_statement(statuses, levels, districts)
    return _streamed(svc, fmt, stmt, export.ALERT_COLUMNS,
                     lambda rows: export.alert_cells(rows, lang, svc_tz(svc), svc.city), lang, "alerts", ("title",),
                     "narrow the statuses, levels or district")


def svc_tz(svc) -> str:
    """Return the city's time zone in effect."""
    return svc.config["PANORAMA_TZ"]


def _streamed(svc, fmt: str, stmt, columns: tuple[str, ...], cells, lang: str, what: str,
              free_text: tuple[str, ...], narrow: str):
    """Send the rows of ``stmt`` as CSV or Excel, read through a server-side cursor a chunk at a time; a 400
    before a byte is sent when they are more than one export may hold (``narrow``: how to ask for fewer)."""
    max_rows = svc.config["PANORAMA_EXPORT_MAX_ROWS"]
    with svc.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one())
    if total > max_rows:
        raise ApiError(400, "too_many_rows", f"this export holds {total:,} rows, over the {max_rows:,} one export "
                                             f"may hold: {narrow}")

    def chunks():
        with svc.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=export.CHUNK_ROWS).execute(stmt)
            for rows in export.batches(result.mappings()):
                yield pd.DataFrame(cells(rows), columns=list(columns))

    tz = svc_tz(svc)
    name = _file_name(what, svc.clock(), tz, fmt)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
               "X-Export-Rows": str(total)}
    if fmt == "csv":
        body = stream_with_context(export.csv_stream(chunks(), columns, lang, free_text))
        return Response(body, mimetype="text/csv", headers=headers, direct_passthrough=True)
    return _send_xlsx(lambda path: export.write_xlsx(chunks(), columns, lang, path, what), headers)


@bp.get("/tasks.csv")
@auth.require("view")
def get_tasks_csv():
    """The task board's tasks as CSV."""
    return _tasks("csv")


@bp.get("/tasks.xlsx")
@auth.require("view")
def get_tasks_xlsx():
    """The task board's tasks as an Excel workbook."""
    return _tasks("xlsx")


@bp.get("/alerts.csv")
@auth.require("view")
def get_alerts_csv():
    """/alerts' trail as CSV."""
    return _alerts("csv")


@bp.get("/alerts.xlsx")
@auth.require("view")
def get_alerts_xlsx():
    """/alerts' trail as an Excel workbook."""
    return _alerts("xlsx")


@bp.get("/incidents.csv")
@auth.require("view")
def get_incidents_csv():
    """The dispatch queue's incidents as CSV."""
    return _incidents("csv")


@bp.get("/incidents.xlsx")
@auth.require("view")
def get_incidents_xlsx():
    """The dispatch queue's incidents as an Excel workbook."""
    return _incidents("xlsx")


def _as_filters(query: district_data.EventQuery) -> list:
    """Return the API's filters as the table's, for counting them from the rollups."""
    F = district_data.Filter
    out = [F(c, "eq", getattr(query, c)) for c in ("domain", "kind", "street") if getattr(query, c) is not None]
    if query.severity_min is not None:
        out.append(F("severity", "ge", str(query.severity_min)))
    if query.q:
        out.append(F("title", "contains", query.q))
    return out


def _view(r) -> dict:
    return {"id": r["event_id"], "domain": r["domain"], "kind": r["kind"], "district": r["district"],
            "street": r["street"], "severity": r["severity"], "title": r["title"], "ts": r["ts_ms"],
            "value": r["value"], "unit": r["unit"]}


def _send_xlsx(write, headers: dict) -> Response:
    """Write the workbook to a temporary file, then stream that file and remove it."""
    fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="panorama-export-")
    os.close(fd)
    try:
        write(path)
        handle = open(path, "rb")
    finally:
        os.unlink(path)  # the open handle keeps the file readable until it is closed

    def chunks():
        with handle:
            while block := handle.read(64 * 1024):
                yield block

    return Response(chunks(), mimetype=XLSX, headers=headers, direct_passthrough=True)


@bp.get("/districts/<code>/events.csv")
@auth.require("view")
def get_district_events_csv(code: str):
    """The district's events as the table shows them, as CSV (UTF-8 with a BOM, for Excel)."""
    return _district_events("csv", code)


@bp.get("/districts/<code>/events.xlsx")
@auth.require("view")
def get_district_events_xlsx(code: str):
    """The district's events as the table shows them, as an Excel workbook."""
    return _district_events("xlsx", code)


def init_app(server) -> None:
    """Register the export routes."""
    server.register_blueprint(bp)
