"""Read the open data (SPEC section 14): counts per district, hour, domain and kind from the hour rollups only.

What may leave: the five fields of ``FIELDS`` and nothing else of an event (never a title, detail, source,
coordinates or street). A cell (district, hour, domain, kind) with fewer than ``MIN_COUNT`` events is withheld:
its row is left out, never sent with a null, so that not even "something happened here" is told about it; a
missing row reads "0 to 4". Districts' totals (the GeoJSON) add up the published cells only, so subtracting
published figures from a total can never recover a withheld one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from dashboard.core.channels import DOMAINS
from dashboard.core.clock import iso
from dashboard.storage.models import rollup_hours
from dashboard.storage.queries import HOUR_MS

MIN_COUNT = 5  # SPEC section 14: counts below 5 are withheld
FIELDS = ("district", "hour", "domain", "kind", "count")  # everything a row of the open data holds
PROPERTIES = ("code", "name", "name_en", "counts", "total")  # everything a GeoJSON feature's properties hold


@dataclass(frozen=True)
class CountQuery:
    """The hours whose start lies in [start, end) (epoch ms), of ``districts`` (codes), of one domain or all."""

    start: int
    end: int
    districts: tuple[str, ...]
    domain: str | None = None


def _cells(query: CountQuery):
    """Return the statement of the published cells: the hour rollups summed over streets, 5 and more only."""
    h = rollup_hours.c
    n = func.sum(h.n)
    stmt = (select(h.district, h.hour_ms, h.domain, h.kind, n.label("n"))
            .where(h.hour_ms >= query.start, h.hour_ms < query.end, h.district.in_(query.districts))
            .group_by(h.district, h.hour_ms, h.domain, h.kind).having(n >= MIN_COUNT))
    return stmt.where(h.domain == query.domain) if query.domain else stmt


def count_rows(conn: Connection, query: CountQuery, tz: str) -> list[dict]:
    """Return the published cells as rows of ``FIELDS``, by hour, district, domain and kind; hours in ``tz``."""
    cells = _cells(query).subquery()
    stmt = select(cells).order_by(cells.c.hour_ms, cells.c.district, cells.c.domain, cells.c.kind)
    return [{"district": r.district, "hour": iso(r.hour_ms, tz), "domain": r.domain, "kind": r.kind,
             "count": int(r.n)} for r in conn.execute(stmt)]


def district_totals(conn: Connection, query: CountQuery) -> dict[str, dict[str, int]]:
    """Return each district's published cells added up per domain (every domain present, 0 when none)."""
    cells = _cells(query).subquery()
    rows = conn.execute(select(cells.c.district, cells.c.domain, func.sum(cells.c.n))
                        .group_by(cells.c.district, cells.c.domain)).all()
    out = {code: {d: 0 for d in DOMAINS} for code in query.districts}
    for code, domain, n in rows:
        if domain in out[code]:
            out[code][domain] = int(n)
    return out


def districts_geojson(conn: Connection, city, query: CountQuery) -> dict:
    """Return the city's district polygons with their published counts over the query's hours."""
    totals = district_totals(conn, query)
    features = []
    for feature in city.geojson["features"]:
        code = str(feature["properties"]["code"])
        if code not in totals:
            continue
        district = city.by_code[code]
        counts = totals[code]
        features.append({"type": "Feature", "id": code, "geometry": feature["geometry"],
                         "properties": {"code": code, "name": district.name, "name_en": district.name_en,
                                        "counts": counts, "total": sum(counts.values())}})
    return {"type": "FeatureCollection", "features": features}


def whole_hours(ms: int) -> int:
    """Return the start of the hour ``ms`` falls in."""
    return ms // HOUR_MS * HOUR_MS
