"""Streets as areas on a district's map (issue 18): the cells derived from the streets' centres cover the district
without overlapping, one per street; a pack's own streets.geojson is validated by line; the map's builder draws
one area per street coloured by its events, its hover text as text."""

from __future__ import annotations

import json
import shutil

import pytest
from shapely import Polygon, union_all
from shapely.geometry import shape

from dashboard.core.city import load_city
from dashboard.core.rules import RulesError
from dashboard.core.street_areas import StreetAreas, outline_geometry, voronoi_cells
from dashboard.figures.district_map import make_street_map

SQUARE = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)])
TOLERANCE = 1e-9


def assert_partition(outline, cells, n: int) -> None:
    """Assert ``cells`` are ``n`` areas that cover ``outline`` and overlap nowhere."""
    assert len(cells) == n and all(c.area > 0 for c in cells)
    assert union_all(cells).symmetric_difference(outline).area < TOLERANCE * max(1.0, outline.area) + 1e-12
    for i, a in enumerate(cells):
        for b in cells[i + 1:]:
            assert a.intersection(b).area < 1e-12


def test_voronoi_cells_cover_the_outline_one_per_centre_in_order():
    centres = [(1, 1), (3, 1), (1, 3), (3, 3), (2, 2.2)]
    cells = voronoi_cells(SQUARE, centres)
    assert_partition(SQUARE, cells, len(centres))
    from shapely import Point
    assert all(cell.covers(Point(c)) for cell, c in zip(cells, centres)), "each cell holds its own centre"
    assert voronoi_cells(SQUARE, [(2, 2)]) == [SQUARE]
    with pytest.raises(ValueError, match="share a centre"):
        voronoi_cells(SQUARE, [(1, 1), (1, 1)])


def test_every_shenzhen_district_is_covered_by_its_streets():
    city = load_city("shenzhen")
    for d in city.districts:
        outline = outline_geometry(city.geojson, d.code)
        cells = voronoi_cells(outline, [(s.lon, s.lat) for s in d.streets])
        assert_partition(outline, cells, len(d.streets))
        areas = city.street_areas[d.code]
        assert areas.approximate and areas.names == [s.name for s in d.streets]
        # what the map draws (simplified, rounded) still covers the district, within a street's width
        drawn = [shape(f["geometry"]) for f in areas.geojson["features"]]
        assert union_all(drawn).symmetric_difference(outline).area < 0.01 * outline.area


def pack(tmp_path, streets: str | None = None, yaml_edit=None):
    """Return a copy of the Shenzhen pack in ``tmp_path`` with ``streets`` as its streets.geojson."""
    dest = tmp_path / "city"
    shutil.copytree(load_city("shenzhen").path, dest)
    if streets is not None:
        (dest / "streets.geojson").write_text(streets, encoding="utf-8")
    if yaml_edit is not None:
        manifest = dest / "city.yaml"
        manifest.write_text(yaml_edit(manifest.read_text(encoding="utf-8")), encoding="utf-8")
    return load_city(str(dest))


def feature(district: str, street: str, ring: list) -> dict:
    return {"type": "Feature", "properties": {"district": district, "street": street},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


YANTIAN_BOX = [[114.22, 22.55], [114.24, 22.55], [114.24, 22.57], [114.22, 22.57], [114.22, 22.55]]


def test_a_packs_street_boundaries_are_drawn_as_they_are(tmp_path):
    city = pack(tmp_path, json.dumps({"type": "FeatureCollection",
                                      "features": [feature("yantian", "沙头角", YANTIAN_BOX)]}, indent=1))
    areas = city.street_areas
    assert not areas["440308"].approximate and areas["440308"].names == ["沙头角街道"]
    assert areas["440304"].approximate, "a district the file does not draw keeps its derived cells"


def test_a_broken_streets_file_is_refused_by_line(tmp_path):
    bowtie = [[114.22, 22.55], [114.24, 22.57], [114.24, 22.55], [114.22, 22.57], [114.22, 22.55]]
    far = [[c[0] - 1, c[1]] for c in YANTIAN_BOX]
    text = json.dumps({"type": "FeatureCollection", "features": [
        feature("yantian", "沙头角", YANTIAN_BOX), feature("yantian", "Shatoujiao", YANTIAN_BOX),
        feature("atlantis", "海山", YANTIAN_BOX), feature("yantian", "不存在街道", YANTIAN_BOX),
        feature("yantian", "海山", bowtie), feature("yantian", "盐田", far)]}, indent=1, ensure_ascii=False)
    lines = text.split("\n")

    def line_of(needle: str, after: int = 0) -> int:
        return next(i + 1 for i, line in enumerate(lines) if i >= after and needle in line)

    with pytest.raises(RulesError) as err:
        pack(tmp_path, text).street_areas
    message = str(err.value)
    second = [i + 1 for i, line in enumerate(lines) if line.strip() == '"type": "Feature",'][1] - 1
    assert f"streets.geojson line {second}: street 沙头角街道 of district 440308 drawn twice" in message
    assert f"line {line_of('atlantis')}: unknown district 'atlantis'" in message
    assert f"line {line_of('不存在街道')}: district 440308 has no street '不存在街道'" in message
    assert "street 海山街道: not a valid polygon" in message
    assert "street 盐田街道: lies mostly outside district 440308" in message
    nested = {**feature("yantian", "沙头角", YANTIAN_BOX), "geometry": {"type": "Polygon",
                                                                      "coordinates": [[YANTIAN_BOX]]}}
    with pytest.raises(RulesError, match="street 沙头角街道: not a valid polygon"):
        pack(tmp_path / "d", json.dumps({"type": "FeatureCollection", "features": [nested]})).street_areas
    with pytest.raises(RulesError, match=r"streets.geojson line 1: type: Input should be 'FeatureCollection'"):
        pack(tmp_path / "b", '{"type": "Feature", "features": []}').street_areas
    with pytest.raises(RulesError, match=r"streets.geojson line 2: not valid YAML"):
        pack(tmp_path / "c", '{"type": "FeatureCollection",\n "features": [}').street_areas


def test_a_street_centre_outside_its_district_is_refused(tmp_path):
    city = pack(tmp_path, yaml_edit=lambda s: s.replace("center: {lat: 22.555, lon: 114.225}",
                                                        "center: {lat: 114.225, lon: 22.555}"))
    with pytest.raises(ValueError, match="street 沙头角街道 of district 440308: its center .* outside"):
        city.street_areas
    with pytest.raises(ValueError, match="center must be"):
        pack(tmp_path / "b", yaml_edit=lambda s: s.replace("center: {lat: 22.555, lon: 114.225}", "center: here"))


def test_the_street_map_draws_one_area_per_street_coloured_by_its_events():
    city = load_city("shenzhen")
    areas = city.street_areas["440303"]
    rows = [{"name": "黄贝街道", "name_en": "Huangbei", "counts": {"traffic": 3, "incident": 1}},
            {"name": "东门街道", "name_en": "Dongmen", "counts": {"traffic": 1}}]
    fig = make_street_map(city, "440303", areas, rows, "en")
    assert len(fig.data) == 2 and fig.data[0].showscale is False
    streets = fig.data[1]
    assert list(streets.locations) == [s.name for s in city.by_code["440303"].streets]
    z = dict(zip(streets.locations, streets.z))
    assert z["黄贝街道"] == 4 and z["东门街道"] == 1 and z["桂园街道"] == 0 and streets.zmax == 4
    assert "Huangbei<br>4 events" in streets.text
    odd = StreetAreas({"type": "FeatureCollection", "features": [
        {**areas.geojson["features"][0], "id": "<b>桂园</b>街道", "properties": {}}]}, approximate=True)
    text = make_street_map(city, "440303", odd, [], "zh").data[1].text
    assert "<b>" not in text[0] and "&lt;b&gt;" in text[0], "a street's name is shown as text"
    assert make_street_map(city, "440303", None, rows, "zh").data[0].locations == ("440303",)
