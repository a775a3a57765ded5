"""Keep a district's drill-down current and serve its events table page by page from SQL."""

from __future__ import annotations

from typing import Annotated, Literal

from dash import Input, Output, Patch, State, ctx, no_update
from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from werkzeug.exceptions import BadRequest, Forbidden

from dashboard.panorama import district as district_data
from dashboard.panorama import export
from dashboard.storage import queries
from dashboard.web.auth import current_user, reader_scope
from dashboard.dispatch.desk import scope
from dashboard.web.callback_guard import Count, Lang, allow, validated
from dashboard.figures.district_map import make_street_map
from dashboard.figures.panorama import make_street_bars, minute_labels
from dashboard.core.i18n import t
from dashboard.core.channels import DOMAINS
from layouts.common import clock_text, ticker_items
from layouts.district import DRAWN, PAGE_SIZE, delta_text, drawn_from, incident_items
import logging
from sqlalchemy.exc import SQLAlchemyError
from layouts.common import not_found_layout, unavailable_layout
from layouts.district import district_layout

log = logging.getLogger(__name__)


def table_rows(rows: list[dict], lang: str, tz: str, city=None) -> list[dict]:
    """Return the table's rows for stored events (text cells: DataTable never renders them as HTML); streets
    in ``lang`` (their pinyin names in English) when the city pack names them."""
    cells = export.event_cells(rows, lang, tz, city, lambda ms, zone: clock_text(ms, zone, with_date=True))
    return [{"id": f"{r['domain']}:{r['id']}", **c} for r, c in zip(rows, cells)]


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
Cursor = Annotated[StrictStr, Field(max_length=1000)] | None
Drawn = dict[Literal[DRAWN], Annotated[StrictStr, Field(max_length=32)]]
MAX_CURSORS = 5_000  # pages reached by "next" that the page keeps (100,000 rows at 20 a page)


class Paging(BaseModel):
    """The table's keyset state kept in the page: what it was for, and the cursor of each page reached."""

    model_config = ConfigDict(strict=True, extra="forbid")
    key: Annotated[list[Annotated[StrictStr, Field(max_length=district_data.MAX_FILTER_CHARS)] | StrictInt],
                   Field(max_length=4)]
    cursors: Annotated[list[Cursor], Field(min_length=1, max_length=MAX_CURSORS)]
    page: Annotated[StrictInt, Field(ge=0, lt=MAX_CURSORS)] | None = None  # the page whose rows the table shows


def district_of(city, code: str):
    """Return the district a callback names by code or slug; BadRequest for none, Forbidden for another district
    than a district centre's user's own (SPEC section 13, as the API's 403 other_district)."""
    district = city.resolve(code)
    if district is None:
        raise BadRequest("no such district")
    if not reader_scope().sees(district.code):
        raise Forbidden("other_district: a district centre's user reads their own district only")
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

    # timer, window -> district KPIs, streets (bars and map), trend, incidents, ticker (each graph and list only
    # when what it is drawn from changed: district-drawn holds their digests)
    @allow(app, "view")
    @app.callback(*kpi_outputs, Output("district-streets", "figure"), Output("district-map", "figure"),
                  Output("district-trend", "figure"),
                  Output("district-incidents", "children"), Output("event-ticker", "children", allow_duplicate=True),
                  Output("district-updated", "children"), Output("district-drawn", "data"),
                  Input("district-refresh", "n_intervals"), Input("district-window", "value"),
                  State("district-code", "data"), State("lang", "data"), State("district-drawn", "data"),
                  prevent_initial_call=True)
    @validated
    def refresh(_n: Count | None, window: Window, code: Code, lang: Lang, before: Drawn | None = None):
        svc = current_app.extensions["panorama"]
        tz, lang = svc.config["PANORAMA_TZ"], lang if lang in ("zh", "en") else "zh"
        district = district_of(svc.city, code)
        department = scope(current_user())
        with svc.read(primary=department is not None) as conn:  # a liaison's scope reads the primary
            data = district_data.snapshot(conn, svc.city, district, queries.WINDOWS[window], svc.clock(), tz,
                                          department)
        totals = data["summary"]["totals"]
        deltas = [delta_text(totals[d], data["previous"][d]) for d in DOMAINS]
        now = drawn_from(data, window)
        fresh = {k: before is None or before.get(k) != now[k] for k in DRAWN}
        # The bars are redrawn (streets may change order); the trend keeps its shape, so it is patched.
        streets = (make_street_bars(data["summary"]["streets"], lang, other=data["summary"]["other_streets"])
                   if fresh["streets"] else no_update)
        street_map = (make_street_map(svc.city, district.code, svc.city.street_areas.get(district.code),
                                      data["summary"]["streets"], lang) if fresh["streets"] else no_update)
        return ([str(totals[d]) for d in DOMAINS] + [d[0] for d in deltas] + [d[1] for d in deltas]
                + [streets, street_map, _trend_patch(data["trend"], tz) if fresh["trend"] else no_update,
                   incident_items(data["incidents"], lang, tz, data["incidents_open"]) if fresh["incidents"]
                   else no_update,
                   ticker_items(data["events"], svc.city, lang, tz) if fresh["ticker"] else no_update,
                   t("updated", lang, t=clock_text(data["now_ms"], tz)), now])

    # page, sort, filter, window, timer -> one page of the district's events by keyset (the cursors of the
    # pages reached so far are kept in the page), whether more follow, and what the table cannot do
    @allow(app, "view")
    @app.callback(Output("district-events", "data"), Output("district-events", "page_count"),
                  Output("district-events", "page_current"), Output("district-events-paging", "data"),
                  Output("district-events-note", "children"),
                  Input("district-events", "page_current"), Input("district-events", "sort_by"),
                  Input("district-events", "filter_query"), Input("district-window", "value"),
                  Input("district-refresh", "n_intervals"),
                  State("district-events", "page_size"), State("district-code", "data"), State("lang", "data"),
                  State("district-events-paging", "data"))
    @validated
    def events_page(page: Page | None, sort_by: SortBy | None, filter_query: FilterQuery | None, window: Window,
                    _n: Count | None, size: PageSize | None, code: Code, lang: Lang, paging: Paging | None):
        size, lang = size or PAGE_SIZE, lang if lang in ("zh", "en") else "zh"
        asked = [s.model_dump() for s in sort_by or []]
        key = [window, ",".join(f"{s['column_id']}:{s['direction']}" for s in asked), filter_query or "", size]
        # Only the newest page follows the clock; an older page stays put -- once it is the page shown. The
        # officer's own call for it may have been superseded by this tick's (Dash drops the older answer), and
        # then this call must serve it.
        if (ctx.triggered_id == "district-refresh" and (page or 0) > 0 and paging is not None
                and paging.key == key and paging.page == page):
            return (no_update,) * 5
        svc = current_app.extensions["panorama"]
        district = district_of(svc.city, code)
        start, end = queries.window_bounds(svc.clock(), queries.WINDOWS[window])
        try:
            filters = district_data.parse_filter(filter_query)
        except ValueError as err:
            raise BadRequest(f"argument filter_query: {err}") from None
        filters = district_data.street_filters(filters, svc.city, district.code)
        sort, why = district_data.table_sort(asked, start, end)
        cursors = paging.cursors if paging is not None and paging.key == key else [None]
        # Keyset paging reaches a page through the one before it: a jump past the pages reached goes to the
        # furthest one reached (a new sort, filter or window starts again at the first).
        page = min(page or 0, len(cursors) - 1) if cursors != [None] else 0
        with svc.read() as conn:
            total = district_data.count_events(conn, svc.city, district, start, end, filters)
            try:
                rows, nxt = district_data.table_page(conn, district.code, start, end, sort, size, cursors[page],
                                                     filters, svc.city)
            except ValueError as err:  # a cursor the page did not get from here
                raise BadRequest(f"state district-events-paging: {err}") from None
        if not (page + 1 < len(cursors) and cursors[page + 1] == nxt):  # the pages after this one moved
            cursors = cursors[:page + 1] + ([nxt] if nxt and page + 1 < MAX_CURSORS else [])
        note = [t(why, lang, minutes=district_data.TITLE_SORT_MINUTES)] if why else []
        if total is not None:
            note.insert(0, t("n_events", lang, n=f"{total:,}"))
        return (table_rows(rows, lang, svc.config["PANORAMA_TZ"], svc.city), None if len(cursors) > page + 1 else page + 1, page,
                {"key": key, "cursors": cursors, "page": page}, " · ".join(note))


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
        department = scope(current_user())
        with svc.read(primary=department is not None) as conn:  # a liaison's scope reads the primary
            data = district_data.snapshot(conn, svc.city, district, queries.WINDOWS[window], req.now,
                                          svc.config["PANORAMA_TZ"], department)
    except SQLAlchemyError:
        log.warning("district %s unavailable", district.code, exc_info=True)
        return unavailable_layout(lang)
    return district_layout(svc.city, district, lang, window, data, svc.config["PANORAMA_TZ"])
