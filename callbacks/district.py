"""Keep a district's drill-down current and serve its events table page by page from SQL."""

from __future__ import annotations

from typing import Annotated, Literal

from dash import Input, Output, Patch, State, ctx, no_update
from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from werkzeug.exceptions import BadRequest

from dashboard.panorama import district as district_data
from dashboard.storage import queries
from dashboard.web.auth import current_user
from dashboard.dispatch.desk import scope
from dashboard.web.callback_guard import Count, Lang, allow, validated
from dashboard.figures.panorama import make_street_bars, minute_labels
from dashboard.core.i18n import kind_label, t
from dashboard.core.channels import DOMAINS
from layouts.common import clock_text, ticker_items
from layouts.district import PAGE_SIZE, delta_text, incident_items
import logging
from sqlalchemy.exc import SQLAlchemyError
from layouts.common import not_found_layout, unavailable_layout
from layouts.district import district_layout

log = logging.getLogger(__name__)


def table_rows(rows: list[dict], lang: str, tz: str) -> list[dict]:
    """Return the table's rows for stored events (text cells: DataTable never renders them as HTML)."""
    out = []
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:g}{(' ' + r['unit']) if r['unit'] else ''}"
        out.append({"id": f"{r['domain']}:{r['id']}", "time": clock_text(r["ts"], tz, with_date=True),
                    "domain": t(r["domain"], lang), "kind": kind_label(r["kind"], lang), "street": r["street"] or "",
                    "severity": r["severity"], "title": r["title"] or "", "value": value})
    return out


# What the drill-down's callbacks take (checked by ``validated``: anything else is a 400).
Window = Literal[tuple(queries.WINDOWS)]
Code = Annotated[StrictStr, Field(max_length=64)]
Page = Annotated[StrictInt, Field(ge=0, le=district_data.MAX_PAGE)]
PageSize = Annotated[StrictInt, Field(ge=1, le=district_data.MAX_PAGE_ROWS)]  # as the events API's ``limit``
FilterQuery = Annotated[StrictStr, Field(max_length=district_data.MAX_FILTER_CHARS)]


class SortKey(BaseModel):
    """One column of the table's ``sort_by``."""

    model_config = ConfigDict(strict=True, extra="ignore")
    column_id: Literal[tuple(district_data.SORTABLE)]
    direction: Literal["asc", "desc"]


SortBy = Annotated[list[SortKey], Field(max_length=len(district_data.SORTABLE))]


def district_of(city, code: str):
    """Return the district a callback names by code or slug, or raise BadRequest."""
    district = city.resolve(code)
    if district is None:
        raise BadRequest("no such district")
    return district


def _trend_patch(trend: dict, tz: str) -> Patch:
    patch = Patch()
    x = minute_labels(trend["start"], len(trend["series"][DOMAINS[0]]), trend["step_ms"], tz)
    for i, dom in enumerate(DOMAINS):
        patch["data"][i]["x"] = x
        patch["data"][i]["y"] = trend["series"][dom]
    return patch


def register_callbacks(app) -> None:
    """Register the drill-down's refresh and its server-side events table."""
    kpi_outputs = ([Output(f"district-kpi-{d}", "children") for d in DOMAINS]
                   + [Output(f"district-kpi-{d}-delta", "children") for d in DOMAINS]
                   + [Output(f"district-kpi-{d}-delta", "className") for d in DOMAINS])

    # timer, window -> district KPIs, streets, trend, incidents, ticker
    @allow(app, "view")
    @app.callback(*kpi_outputs, Output("district-streets", "figure"), Output("district-trend", "figure"),
                  Output("district-incidents", "children"), Output("event-ticker", "children", allow_duplicate=True),
                  Output("district-updated", "children"),
                  Input("district-refresh", "n_intervals"), Input("district-window", "value"),
                  State("district-code", "data"), State("lang", "data"), prevent_initial_call=True)
    @validated
    def refresh(_n: Count | None, window: Window, code: Code, lang: Lang):
        svc = current_app.extensions["panorama"]
        tz, lang = svc.config["PANORAMA_TZ"], lang if lang in ("zh", "en") else "zh"
        district = district_of(svc.city, code)
        with svc.engine.connect() as conn:
            data = district_data.snapshot(conn, svc.city, district, queries.WINDOWS[window], svc.clock(), tz,
                                          scope(current_user()))
        totals = data["summary"]["totals"]
        deltas = [delta_text(totals[d], data["previous"][d]) for d in DOMAINS]
        # The bars are redrawn (streets may change order); the trend keeps its shape, so it is patched.
        streets = make_street_bars(data["summary"]["streets"], lang, other=data["summary"]["other_streets"])
        return ([str(totals[d]) for d in DOMAINS] + [d[0] for d in deltas] + [d[1] for d in deltas]
                + [streets, _trend_patch(data["trend"], tz),
                   incident_items(data["incidents"], lang, tz, data["incidents_open"]),
                   ticker_items(data["events"], svc.city, lang, tz),
                   t("updated", lang, t=clock_text(data["now_ms"], tz))])

    # page, sort, filter, window, timer -> one page of the district's events, and how many pages there are
    @allow(app, "view")
    @app.callback(Output("district-events", "data"), Output("district-events", "page_count"),
                  Input("district-events", "page_current"), Input("district-events", "sort_by"),
                  Input("district-events", "filter_query"), Input("district-window", "value"),
                  Input("district-refresh", "n_intervals"),
                  State("district-events", "page_size"), State("district-code", "data"), State("lang", "data"))
    @validated
    def events_page(page: Page | None, sort_by: SortBy | None, filter_query: FilterQuery | None, window: Window,
                    _n: Count | None, size: PageSize | None, code: Code, lang: Lang):
        if ctx.triggered_id == "district-refresh" and (page or 0) > 0:
            return no_update, no_update  # only the newest page follows the clock; older pages stay put
        svc = current_app.extensions["panorama"]
        district = district_of(svc.city, code)
        start, end = queries.window_bounds(svc.clock(), queries.WINDOWS[window])
        try:
            filters = district_data.parse_filter(filter_query)
        except ValueError as err:
            raise BadRequest(f"argument filter_query: {err}") from None
        page, size, lang = page or 0, size or PAGE_SIZE, lang if lang in ("zh", "en") else "zh"
        order = [s.model_dump() for s in sort_by or []]
        with svc.engine.connect() as conn:
            total = district_data.count_events(conn, svc.city, district, start, end, filters)
            rows = district_data.event_page(conn, district.code, start, end, page, size, order, filters,
                                            extra=1 if total is None else 0)
        if total is None:  # a title filter: rollups cannot count it, so say whether one more page follows
            pages = page + (2 if len(rows) > size else 1)
        else:
            pages = max(1, -(-total // size))
        return table_rows(rows[:size], lang, svc.config["PANORAMA_TZ"]), pages


def render(req):
    """Return /district/<code, slug or name> drawn from the database now; not-found for anything else."""
    svc, lang = req.svc, req.lang
    key = req.path.removeprefix("/district/")
    district = svc.city.resolve(key) if req.path.count("/") == 2 else None
    if district is None:
        return not_found_layout(lang, t("not_found_district", lang, name=key)) if req.path.count("/") == 2 \
            else not_found_layout(lang, t("not_found_route", lang, path=req.path))
    window = "1h"
    try:
        with svc.engine.connect() as conn:
            data = district_data.snapshot(conn, svc.city, district, queries.WINDOWS[window], req.now,
                                          svc.config["PANORAMA_TZ"], scope(current_user()))
    except SQLAlchemyError:
        log.warning("district %s unavailable", district.code, exc_info=True)
        return unavailable_layout(lang)
    return district_layout(svc.city, district, lang, window, data, svc.config["PANORAMA_TZ"])
