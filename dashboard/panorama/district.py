"""Read one district for its drill-down: counts, open incidents and pages of its events (the page and the API).

The page's table and the events API read ``events`` by key (a cursor, never OFFSET) through its (district, ts_ms)
index; a filtered page reads only the minutes that the rollups say hold matches (``pruning``), a title search
reads the trigram index. How many there are comes from the rollups, never from ``count(*)`` over the events.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
from dataclasses import dataclass

import orjson
from sqlalchemy import false, func, select, tuple_
from sqlalchemy.engine import Connection

from dashboard.core.errors import DomainError
from dashboard.panorama import pruning
from dashboard.panorama import state as live
from dashboard.storage import queries
from dashboard.core.city import OTHER
from dashboard.core.i18n import kind_labels, t
from dashboard.core.rules import KIND
from dashboard.storage.incidents import OPEN_STATUSES, held_by
from dashboard.storage.models import events, incidents
from dashboard.core.channels import DOMAINS
from dashboard.core.clock import iso
from dashboard.core.messages import event_view

INCIDENT_ROWS = 20
TICKER_ROWS = 15
MAX_PAGE_ROWS = 200  # rows of one page of the table, as the events API's ``limit`` (SPEC section 6)
MAX_PAGE = 1_000_000  # a page number the table may send; only pages reached by "next" are served
MAX_FILTER_CHARS = 2000
# The table's columns, each of which the table lets a person sort by (TABLE_SORTS: which are served).
SORTABLE = ("time", "domain", "kind", "street", "severity", "title", "value")
# Columns a filter may use; the first four can be counted from rollups as well.
FILTERABLE = ("domain", "kind", "street", "severity", "title")
_FILTER = re.compile(r"^\{(?P<col>[^}]+)\}\s+(?P<op>[a-z]*(?:>=|<=|!=|=|>|<)|[a-z]+)\s+(?P<val>.+)$")
_OPS = {"=": "eq", "eq": "eq", "!=": "ne", "ne": "ne", ">": "gt", "gt": "gt", "<": "lt", "lt": "lt",
        ">=": "ge", "ge": "ge", "<=": "le", "le": "le", "contains": "contains"}


@dataclass(frozen=True)
class Filter:
    """One clause of a DataTable filter query that the server understands."""

    column: str
    op: str  # eq ne gt lt ge le contains
    value: str


def parse_filter(query: str | None) -> list[Filter]:
    """Parse DataTable's ``filter_query`` (``{col} op value && ...``); clauses it cannot serve are dropped.

    A severity that is not a finite number raises ValueError: the caller answers it as bad input.
    """
    out = []
    for part in (query or "").split(" && "):
        m = _FILTER.match(part.strip())
        if not m or m["col"] not in FILTERABLE:
            continue
        op = m["op"]
        op = op[1:] if op[:1] in ("i", "s") and op[1:] in _OPS else op  # case-sensitivity prefixes
        if op not in _OPS:
            continue
        value = m["val"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
            value = value[1:-1].replace("\\" + value[0], value[0])
        if m["col"] == "severity":
            _severity_value(value)
        out.append(Filter(m["col"], _OPS[op], value))
    return out


def _severity_value(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"severity filter {value[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"severity filter {value[:40]!r} is not a finite number")
    return number


def _like(column, value: str):
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def _codes_matching(value: str, names: dict[str, list[str]], contains: bool) -> list[str]:
    needle = value.lower()
    return [code for code, labels in names.items()
            if any((needle in x.lower()) if contains else (needle == x.lower()) for x in labels)]


def _compare(column, op: str, value):
    return {"eq": column == value, "ne": column != value, "gt": column > value, "lt": column < value,
            "ge": column >= value, "le": column <= value}[op]


def _clause(table, f: Filter):
    """Return the SQL condition of one filter on ``events`` or ``rollups`` (both have these columns)."""
    col = table.c[f.column]
    if f.column == "severity":
        return _compare(col, "eq" if f.op == "contains" else f.op, _severity_value(f.value))
    if f.column in ("domain", "kind"):
        # People type what they see (交通, 火情) or the code (traffic, fire): match either.
        names = ({d: [d, t(d, "zh"), t(d, "en")] for d in DOMAINS} if f.column == "domain" else
                 {k: [k, zh, kind_labels("en")[k]] for k, zh in kind_labels("zh").items()})
        codes = _codes_matching(f.value, names, f.op == "contains")
        cond = col.in_(codes) if codes else false()
        if f.column == "kind":
            cond = cond | (_like(col, f.value) if f.op == "contains" else col == f.value)
        return ~cond if f.op == "ne" else cond
    if f.op == "contains":
        return _like(col, f.value)
    return _compare(col, f.op if f.op in ("eq", "ne") else "eq", f.value)


def _rollups_count_exactly(f: Filter, city, code: str) -> bool:
    """Tell whether rollups count what ``f`` matches in district ``code``'s events: not a title, nor a street or
    kind that the rollups may have folded into OTHER (one the pack does not know, or a pattern)."""
    if f.column == "title":
        return False
    if f.column == "street":
        return f.op not in ("ne", "contains") and f.value in city.known_streets.get(code, ())
    if f.column == "kind":
        if f.op != "eq":
            return False
        names = {k: [k, zh, kind_labels("en")[k]] for k, zh in kind_labels("zh").items()}
        matched = {f.value, *_codes_matching(f.value, names, False)}
        return all(k in city.kinds or not KIND.fullmatch(k) for k in matched)
    return True


def count_events(conn: Connection, city, district, start: int, end: int, filters: list[Filter]) -> int | None:
    """Count the district's events in [start, end) from rollups; None when a filter needs the events."""
    if not all(_rollups_count_exactly(f, city, district.code) for f in filters):
        return None
    sev_filters = [f for f in filters if f.column == "severity"]
    sevs = [s for s in range(1, 5) if all(_sev_match(s, f) for f in sev_filters)]
    if not sevs:
        return 0
    total = 0
    for table, when, lo, hi in queries.rollup_parts(start, end):  # whole hours from the hour rollups
        r = table.c
        measure = r.n if len(sevs) == 4 else sum((r[f"sev{s}"] for s in sevs[1:]), r[f"sev{sevs[0]}"])
        stmt = select(func.coalesce(func.sum(measure), 0)).where(r.district == district.code, when >= lo, when < hi)
        for f in filters:
            if f.column != "severity":
                stmt = stmt.where(_clause(table, f))
        total += int(conn.execute(stmt).scalar_one())
    return total


def _sev_match(sev: int, f: Filter) -> bool:
    v = _severity_value(f.value)
    op = "eq" if f.op == "contains" else f.op
    return {"eq": sev == v, "ne": sev != v, "gt": sev > v, "lt": sev < v, "ge": sev >= v, "le": sev <= v}[op]


def previous_counts(conn: Connection, district: str, minutes: int, now_ms: int) -> dict[str, int]:
    """Return the district's counts per domain in the window before the current one."""
    start, _ = queries.window_bounds(now_ms, minutes)
    table, when = queries.district_source(minutes)
    rows = conn.execute(select(table.c.domain, func.sum(table.c.n)).where(
        table.c.district == district, when >= start - minutes * 60_000, when < start)
        .group_by(table.c.domain)).all()
    out = {d: 0 for d in DOMAINS}
    out.update({dom: int(n) for dom, n in rows if dom in out})
    return out


def _open_in(district: str, department: str | None, streets: tuple[str, ...] | None = None) -> list:
    i = incidents.c
    where = [i.district == district, i.status.in_(OPEN_STATUSES)]
    if streets is not None:  # one street's, by any of its spellings (a district wall's spotlight)
        where.append(i.street.in_(streets))
    # A liaison reads only the incidents their department holds a task of, here as over REST and the socket.
    return where if department is None else [*where, held_by(department)]


def open_incidents(conn: Connection, district: str, limit: int = INCIDENT_ROWS,
                   department: str | None = None, streets: tuple[str, ...] | None = None) -> list[dict]:
    """Return the district's incidents still being handled (those ``department`` holds, when given; on one street,
    spelled ``streets``, when given), most severe and most recent first."""
    i = incidents.c
    stmt = (select(i.id, i.kind, i.severity, i.status, i.reports, i.title, i.opened_ms, i.last_report_ms)
            .where(*_open_in(district, department, streets))
            .order_by(i.severity.desc(), i.last_report_ms.desc()).limit(limit))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def open_incident_count(conn: Connection, district: str, department: str | None = None,
                        streets: tuple[str, ...] | None = None) -> int:
    """Return how many of the district's incidents are still being handled (the list shows the first ones)."""
    return int(conn.execute(select(func.count()).select_from(incidents)
                            .where(*_open_in(district, department, streets))).scalar_one())


def snapshot(conn: Connection, city, district, minutes: int, now_ms: int, tz: str,
             department: str | None = None) -> dict:
    """Return everything the drill-down shows besides the events table (incidents: ``department``'s only)."""
    return {
        "summary": queries.district_summary(conn, city, district, minutes, now_ms, tz),
        "previous": previous_counts(conn, district.code, minutes, now_ms),
        "trend": live.trend(conn, now_ms, live.TREND_MINUTES, district.code),
        "events": live.latest_events(conn, TICKER_ROWS, district.code),
        "incidents": open_incidents(conn, district.code, department=department),
        "incidents_open": open_incident_count(conn, district.code, department),
        "now_ms": now_ms,
    }


# --- the events API: GET /api/districts/<code>/events (SPEC section 6) ---------------------------------

MAX_QUERY_CHARS = 200  # a title search as long as a title


@dataclass(frozen=True)
class EventQuery:
    """One request for a page of a district's events in [start, end): filters, a sort and where to go on."""

    district: str
    start: int
    end: int
    q: str | None = None  # searched in titles
    domain: str | None = None
    kind: str | None = None
    street: str | None = None
    severity_min: int | None = None
    sort: str = "-ts"
    limit: int = 50
    cursor: str | None = None


# sort -> the columns of its key, ending with the unique ``seq``, and whether they run descending. A missing
# title sorts as "" (and its cursor carries ""), so every key column has a value.
SORT_KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "-ts": (("ts_ms", "seq"), True), "ts": (("ts_ms", "seq"), False),
    "-severity": (("severity", "ts_ms", "seq"), True), "title": (("title", "seq"), False),
}
EVENT_SORTS = tuple(SORT_KEYS)


def _key_column(name: str):
    return func.coalesce(events.c.title, "") if name == "title" else events.c[name]


def _key_of(row, sort: str) -> tuple:
    """Return the sort key of a row as its cursor carries it."""
    return tuple((row[n] or "") if n == "title" else row[n] for n in SORT_KEYS[sort][0])


def encode_cursor(sort: str, key: tuple) -> str:
    """Return the opaque cursor that continues after the row whose sort key is ``key``."""
    return base64.urlsafe_b64encode(orjson.dumps([sort, *key])).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> tuple:
    """Return the sort key a cursor continues after; ValueError when it is not one of ``sort``'s cursors."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise ValueError("cursor is not one this API gave") from None
    kinds = tuple(str if n == "title" else int for n in SORT_KEYS[sort][0])
    if (not isinstance(raw, list) or len(raw) != len(kinds) + 1 or raw[0] != sort
            or not all(type(v) is k for v, k in zip(raw[1:], kinds))):
        raise ValueError(f"cursor is not one of sort {sort!r}")
    return tuple(raw[1:])


def page_statement(district: str, start: int, end: int, sort: str, after: tuple | None, where: list):
    """Return the statement of a page of a district's events in [start, end) in ``sort``'s order after the key
    ``after``, with the conditions ``where`` (the caller sets its LIMIT)."""
    e = events.c
    names, descending = SORT_KEYS[sort]
    keys = [_key_column(n) for n in names]
    stmt = (select(e.seq, e.domain, e.event_id, e.ts_ms, e.kind, e.district, e.street, e.severity, e.title, e.value,
                   e.unit, e.lat, e.lon, e.detail, e.source)
            .where(e.district == district, e.ts_ms >= start, e.ts_ms < end, *where)
            .order_by(*[k.desc() if descending else k.asc() for k in keys]))
    if after is not None:
        stmt = stmt.where(tuple_(*keys) < tuple_(*after) if descending else tuple_(*keys) > tuple_(*after))
    return stmt


def keyset_page(conn: Connection, district: str, start: int, end: int, sort: str, limit: int,
                cursor: str | None, where: list, bound: pruning.Bound | None = None) -> tuple[list, str | None]:
    """Return one page of a district's events in [start, end) in ``sort``'s order after ``cursor``, with the
    conditions ``where``, and the cursor of the next page (None at the end): keyset paging on the sort's key,
    never an OFFSET scan. The API and the drill-down's table both page with it.

    ``bound``: what ``where`` is in the rollups; when given, the time sorts and ``-severity`` read only the
    minutes that hold matches (``pruning``), with the same rows as without it.
    """
    after = decode_cursor(sort, cursor) if cursor is not None else None

    def read(lo: int, hi: int, n: int, extra: tuple = ()) -> list:
        stmt = page_statement(district, lo, hi, sort, after, [*where, *extra]).limit(n)
        return conn.execute(stmt).mappings().all()

    if _whole_window(conn, district, start, end, sort, bound):
        rows = read(start, end, limit + 1)
    elif sort == "-severity":
        rows = _by_severity(conn, district, start, end, limit + 1, bound, read, after)
    else:
        rows = pruning.walk(conn, district, start, end, sort == "-ts", limit + 1, bound, read,
                            after[0] if after else None)
    page = rows[:limit]
    return page, (encode_cursor(sort, _key_of(page[-1], sort)) if len(rows) > limit else None)


# An exact kind's events come from their own index in time order, a page at a time; by -severity every match in
# the window is read and sorted, which is quicker than a walk per severity while the rollups count at most this many
# (a rare kind: ~500 a day in a district at 20 million events a day; a later page's cursor reads the same way).
INDEXED_SORT_ROWS = 2_000


def _whole_window(conn: Connection, district: str, start: int, end: int, sort: str,
                  bound: pruning.Bound | None) -> bool:
    """Tell whether the page's own statement over the whole window reads no more than a walk would: with no bound,
    a title sort, a bound that leaves nothing out, or an exact kind that its own index serves."""
    if bound is None or sort == "title":
        return True
    if bound.indexed:
        return sort != "-severity" or pruning.matches(conn, bound, district, start, end,
                                                      end - start) <= INDEXED_SORT_ROWS
    return sort != "-severity" and not bound.narrows()


def _by_severity(conn: Connection, district: str, start: int, end: int, need: int, bound: pruning.Bound, read,
                 after: tuple | None) -> list:
    """Return ``need`` rows in ``-severity`` order: the newest first of each severity in turn, most severe first,
    each read from the minutes that the rollups' count of that severity says hold some."""
    rows: list = []
    for sev in sorted(bound.severities, reverse=True):
        if after is not None and sev > after[0]:
            continue  # the cursor is past this severity
        level = pruning.Bound(bound.conditions, bound.columns, (sev,))
        rows += pruning.walk(conn, district, start, end, True, need - len(rows), level,
                             lambda lo, hi, n, sev=sev: read(lo, hi, n, (events.c.severity == sev,)),
                             after[1] if after is not None and sev == after[0] else None)
        if len(rows) >= need:
            break
    return rows


# pg_trgm finds a pattern by its three-character pieces: a title search this long is the trigram index's to
# serve (migration 0007); a shorter one has none, so the rollups bound it by its other filters.
TRIGRAM_CHARS = 3
# sort=title orders every event of the window, which no index serves: at most an hour of them.
TITLE_SORT_MINUTES = 60


class SortUnavailable(DomainError):
    """A sort that this window is too long for."""

    code = "sort_unavailable"


def check_sort(sort: str, start: int, end: int) -> None:
    """Raise SortUnavailable for sort=title over a window longer than TITLE_SORT_MINUTES."""
    if sort == "title" and end - start > TITLE_SORT_MINUTES * 60_000:
        raise SortUnavailable(f"sort=title is served for windows of at most {TITLE_SORT_MINUTES} minutes "
                              f"(window=15m or 1h); over longer ones sort by -ts, ts or -severity")


def _rollup_values(column: str, value: str, city, code: str) -> list[str]:
    """Return what a rollup row's ``column`` holds for events whose ``column`` is ``value``: the value, and OTHER
    too when the city pack does not know it (or no pack is at hand), as ingest folds those."""
    known = city is not None and value in (city.kinds if column == "kind" else city.known_streets.get(code, ()))
    return [value] if known else [value, OTHER]


def api_bound(query: EventQuery, city=None) -> pruning.Bound | None:
    """Return the API's filters as the rollups see them; None when the title search is the trigram index's."""
    if query.q and len(query.q) >= TRIGRAM_CHARS:
        return None
    conditions = [lambda t, v=query.domain: t.c.domain == v] if query.domain is not None else []
    columns = [c for c in ("kind", "street") if getattr(query, c) is not None]
    for column in columns:
        values = _rollup_values(column, getattr(query, column), city, query.district)
        conditions.append(lambda t, c=column, vs=values: t.c[c].in_(vs))
    sevs = tuple(s for s in pruning.SEVERITIES if query.severity_min is None or s >= query.severity_min)
    indexed = query.kind is not None and query.street is None and query.severity_min is None and not query.q
    return pruning.Bound(tuple(conditions), frozenset(columns), sevs, indexed)


def table_bound(filters: list[Filter], city, code: str) -> pruning.Bound | None:
    """Return the table's filters as the rollups see them (a title is not in them); None when a title filter
    is the trigram index's to serve."""
    if any(f.column == "title" and f.op in ("eq", "contains") and len(f.value) >= TRIGRAM_CHARS for f in filters):
        return None
    conditions, columns = [], set()
    for f in (f for f in filters if f.column in ("domain", "kind", "street")):
        exact = city is not None and _rollups_count_exactly(f, city, code)
        # Folded under OTHER, an unknown street or kind may match: those rows are read as well.
        conditions.append(lambda t, f=f, exact=exact:
                          _clause(t, f) if exact else _clause(t, f) | (t.c[f.column] == OTHER))
        columns |= {f.column} - {"domain"}
    sevs = tuple(s for s in pruning.SEVERITIES if all(_sev_match(s, f) for f in filters if f.column == "severity"))
    return pruning.Bound(tuple(conditions), frozenset(columns), sevs)


def api_where(query: EventQuery) -> list:
    """Return the API's filters as conditions on ``events`` (the events API and its exports read them)."""
    e = events.c
    where = [_like(e.title, query.q)] if query.q else []
    where += [e[column] == value for column, value in (("domain", query.domain), ("kind", query.kind),
                                                          ("street", query.street)) if value is not None]
    if query.severity_min is not None:
        where.append(e.severity >= query.severity_min)
    return where


def table_where(filters: list[Filter]) -> list:
    """Return the table's filters as conditions on ``events``."""
    return [_clause(events, f) for f in filters]


def both_bounds(a: pruning.Bound | None, b: pruning.Bound | None) -> pruning.Bound | None:
    """Return the bound of two sets of filters applied together (None when either is the trigram index's)."""
    if a is None or b is None:
        return None
    return pruning.Bound(a.conditions + b.conditions, a.columns | b.columns,
                         tuple(s for s in a.severities if s in b.severities))


def event_rows(conn: Connection, query: EventQuery, tz: str, city=None,
               prune: bool = True) -> tuple[list[dict], str | None]:
    """Return one page of a district's events for the API (SPEC section 3's fields, ``ts`` RFC 3339 in ``tz``)
    and the cursor of the next page (None at the end). ``city`` tells which streets and kinds the rollups keep;
    ``prune=False`` reads without them (the same rows: for comparisons)."""
    check_sort(query.sort, query.start, query.end)
    page, cursor = keyset_page(conn, query.district, query.start, query.end, query.sort, query.limit,
                               query.cursor, api_where(query), api_bound(query, city) if prune else None)
    return [{"id": r["event_id"], "ts": iso(r["ts_ms"], tz), "kind": r["kind"], "district": r["district"],
             "severity": r["severity"], "domain": r["domain"], "street": r["street"], "lat": r["lat"],
             "lon": r["lon"], "value": r["value"], "unit": r["unit"], "title": r["title"], "detail": r["detail"],
             "source": r["source"]} for r in page], cursor


# The drill-down table's sorts that keyset paging serves (column, direction) -> SORT_KEYS entry; any other
# falls back to the newest first, and the page says so rather than make a person wait on a whole-window sort.
TABLE_SORTS = {("time", "desc"): "-ts", ("time", "asc"): "ts", ("severity", "desc"): "-severity",
               ("title", "asc"): "title"}


def table_sort(sort_by: list[dict] | None, start: int, end: int) -> tuple[str, str | None]:
    """Return the keyset sort of the table's ``sort_by`` over [start, end) and, when it is not the one asked
    for, the text key of why: a sort keyset paging cannot serve, or a title sort over too long a window."""
    if not sort_by:
        return "-ts", None
    asked = TABLE_SORTS.get((sort_by[0].get("column_id"), sort_by[0].get("direction")))
    if asked is None:
        return "-ts", "sort_unserved"
    try:
        check_sort(asked, start, end)
    except SortUnavailable:
        return "-ts", "sort_title_window"
    return asked, None


def table_page(conn: Connection, district: str, start: int, end: int, sort: str, size: int,
               cursor: str | None, filters: list[Filter], city=None) -> tuple[list[dict], str | None]:
    """Return one page of the drill-down's table (event views) and the next page's cursor (``city``: see
    ``event_rows``)."""
    check_sort(sort, start, end)
    page, nxt = keyset_page(conn, district, start, end, sort, size, cursor, table_where(filters),
                            table_bound(filters, city, district))
    return [event_view(r["domain"], r["event_id"], r["ts_ms"], r["kind"], r["district"], r["street"],
                       r["severity"], r["title"], r["value"], r["unit"]) for r in page], nxt


def street_filters(filters: list[Filter], city, code: str) -> list[Filter]:
    """Return the table's filters with a street named as the table shows it in English (its pinyin) read as the
    street's stored name, so what a reader types from the column finds its rows (as ``callbacks.district``)."""
    known = city.known_streets.get(code, ())
    return [dataclasses.replace(f, value=city.street_name(code, f.value, "zh"))
            if f.column == "street" and f.op in ("eq", "ne") and f.value not in known else f for f in filters]


def count_matching(conn: Connection, district: str, start: int, end: int, where: list, at_most: int) -> int:
    """Count the district's events in [start, end) that meet ``where``, stopping at ``at_most`` (for the filters
    the rollups cannot count: a title search, a street or kind the pack does not know)."""
    e = events.c
    inner = select(e.seq).where(e.district == district, e.ts_ms >= start, e.ts_ms < end, *where).limit(at_most)
    return int(conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one())
