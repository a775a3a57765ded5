"""Give each district's streets (街道) an area on the map: the pack's own boundaries (streets.geojson), else cells
derived from the streets' centres (city.yaml ``center``), marked approximate.

A pack's streets.geojson is a FeatureCollection of Polygons or MultiPolygons in [lon, lat], one feature per street
it draws, its ``properties`` naming the ``district`` (code, slug or name) and the ``street`` (name, name without
街道, code or English name): refused by line like the rest of the pack (GeoJSON is YAML, so its lines are kept).
Without it, a district whose streets all carry a centre gets the Voronoi cells of those centres clipped to its
outline (shapely): they cover the district without overlapping, one per street, but follow no real boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field
from shapely import MultiPoint, Point, make_valid, voronoi_polygons
from shapely.geometry import mapping, shape
from shapely.errors import ShapelyError
from shapely.geometry.base import BaseGeometry

from dashboard.core.rules import RulesError, _line, validated_file

FILENAME = "streets.geojson"
DIGITS = 5  # coordinates kept (about a metre): the figure carries every vertex to the browser
SIMPLIFY_DEG = 0.0003  # about 30 m: a street cell is a schematic, its edges need no more


@dataclass(frozen=True)
class StreetAreas:
    """One district's street areas: a FeatureCollection, one feature per street with ``id`` its Chinese name (as
    the district summary's rows name it), and whether they are derived (approximate) rather than the pack's own."""

    geojson: dict
    approximate: bool

    @property
    def names(self) -> list[str]:
        """Return the streets drawn, in the features' order."""
        return [f["id"] for f in self.geojson["features"]]


def outline_geometry(geojson: dict, code: str) -> BaseGeometry | None:
    """Return district ``code``'s outline from the pack's boundaries as a valid shapely geometry, or None."""
    for feature in geojson.get("features", []):
        if feature.get("id") == code:
            return make_valid(shape(feature["geometry"]))
    return None


def voronoi_cells(outline: BaseGeometry, centres: list[tuple[float, float]]) -> list[BaseGeometry]:
    """Return one cell per centre ((lon, lat), in their order): the Voronoi cells of the centres clipped to
    ``outline``. Pure; the centres must be distinct (ValueError otherwise)."""
    if len(set(centres)) != len(centres):
        raise ValueError("two streets share a centre")
    if len(centres) == 1:
        return [outline]
    cells = voronoi_polygons(MultiPoint(centres), extend_to=outline, ordered=True)
    return [cell.intersection(outline) for cell in cells.geoms]


def _polygons(geom: BaseGeometry) -> list[BaseGeometry]:
    """Return the polygons of a geometry, dropping the lines and points a clip may leave."""
    if geom.geom_type == "Polygon":
        return [geom]
    return [p for g in getattr(geom, "geoms", []) for p in _polygons(g)]


def _rounded(geom: BaseGeometry) -> dict:
    """Return ``geom`` as a GeoJSON MultiPolygon, simplified, its coordinates rounded to ``DIGITS``."""
    def walk(c):
        return [round(c[0], DIGITS), round(c[1], DIGITS)] if isinstance(c[0], float) else [walk(x) for x in c]
    polys = _polygons(geom.simplify(SIMPLIFY_DEG, preserve_topology=True))
    return {"type": "MultiPolygon", "coordinates": [walk(mapping(p)["coordinates"]) for p in polys]}


def derived_areas(outline: BaseGeometry, streets) -> StreetAreas | None:
    """Return the approximate areas of ``streets`` (city.Street with ``lon``/``lat``) in ``outline``, or None when
    a street has no centre (a district drawn without streets rather than with some of them)."""
    if not streets or any(s.lon is None or s.lat is None for s in streets):
        return None
    cells = voronoi_cells(outline, [(s.lon, s.lat) for s in streets])
    return StreetAreas({"type": "FeatureCollection",
                        "features": [{"type": "Feature", "id": s.name, "properties": {"name_en": s.name_en},
                                      "geometry": _rounded(cell)} for s, cell in zip(streets, cells)]},
                       approximate=True)


def centre_problems(manifest: str, outlines: Mapping[str, BaseGeometry | None], districts) -> list[str]:
    """Return a sentence for each street centre outside its district's outline (a misplaced or swapped
    coordinate), which would give the street a cell in another street's place."""
    out = []
    for d in districts:
        outline = outlines.get(d.code)
        for s in d.streets:
            if outline is not None and s.lon is not None and not outline.covers(Point(s.lon, s.lat)):
                out.append(f"{manifest}: street {s.name} of district {d.code}: its center ({s.lat}, {s.lon}) is "
                           "outside the district's boundary (lat, lon swapped?)")
    return out


# ---- streets.geojson --------------------------------------------------------------------------------------------

Position = Annotated[list[float], Field(min_length=2, max_length=3)]
Ring = Annotated[list[Position], Field(min_length=4)]


class Geometry(BaseModel):
    """A street's boundary: a Polygon or a MultiPolygon."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Ring] | list[Annotated[list[Ring], Field(min_length=1)]]


class Props(BaseModel):
    """What a feature names: its district and its street."""

    model_config = ConfigDict(extra="allow")
    district: str
    street: str


class Feature(BaseModel):
    """One street's boundary."""

    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"]
    properties: Props
    geometry: Geometry


class StreetsFile(BaseModel):
    """A pack's streets.geojson."""

    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"]
    features: Annotated[list[Feature], Field(min_length=1)]


def _message(error: Mapping[str, Any]) -> str:
    loc, kind = error["loc"], error["type"]
    if kind == "missing":
        return f"missing key {loc[-1]!r}"
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "file")
    return f"{field}: {error['msg']}"


def load_street_boundaries(path: str | Path, aliases: Mapping[str, str],
                           street_names: Mapping[str, Mapping[str, tuple[str, str]]],
                           outlines: Mapping[str, BaseGeometry | None]) -> dict[str, StreetAreas]:
    """Load a pack's streets.geojson into each district's street areas (not approximate); raise RulesError naming
    the line of each problem: an unknown district or street, a street drawn twice, a shape that is not a valid
    polygon, or one that lies mostly outside its district."""
    path = Path(path)
    parsed, lines = validated_file(path, StreetsFile, "features", _message)
    problems: list[tuple[int, str]] = []
    out: dict[str, list[dict]] = {}
    seen: dict[tuple[str, str], int] = {}
    for i, f in enumerate(parsed.features):
        at = ("features", i)
        code = aliases.get(f.properties.district) or aliases.get(f.properties.district.lower())
        if code is None:
            problems.append((_line(lines, at + ("properties", "district")),
                             f"unknown district {f.properties.district[:64]!r}"))
            continue
        names = street_names.get(code, {}).get(f.properties.street)
        if names is None:
            problems.append((_line(lines, at + ("properties", "street")),
                             f"district {code} has no street {f.properties.street[:64]!r} in city.yaml"))
            continue
        if (code, names[0]) in seen:
            problems.append((_line(lines, at), f"street {names[0]} of district {code} drawn twice (first at line "
                                               f"{seen[(code, names[0])]})"))
            continue
        seen[(code, names[0])] = _line(lines, at)
        try:
            geom = shape(f.geometry.model_dump())
        except (ValueError, TypeError, AttributeError, ShapelyError):  # a Polygon nested as a MultiPolygon, say
            geom = None
        if geom is None or not geom.is_valid or geom.area == 0:
            problems.append((_line(lines, at + ("geometry",)), f"street {names[0]}: not a valid polygon (a ring "
                                                               "crosses itself or encloses nothing)"))
            continue
        outline = outlines.get(code)
        if outline is not None and geom.intersection(outline).area < 0.5 * geom.area:
            problems.append((_line(lines, at + ("geometry",)), f"street {names[0]}: lies mostly outside district "
                                                               f"{code} (lon, lat swapped?)"))
            continue
        out.setdefault(code, []).append({"type": "Feature", "id": names[0], "properties": {"name_en": names[1]},
                                         "geometry": f.geometry.model_dump()})
    if problems:
        raise RulesError(path.name, problems)
    return {code: StreetAreas({"type": "FeatureCollection", "features": feats}, approximate=False)
            for code, feats in out.items()}
