"""Test the Shenzhen city pack: registry, boundaries, departments."""

from __future__ import annotations

import re

import pytest

from dashboard.core.city import load_city

CODES = {
    "440303": "luohu", "440304": "futian", "440305": "nanshan", "440306": "baoan", "440307": "longgang",
    "440308": "yantian", "440309": "longhua", "440310": "pingshan", "440311": "guangming",
}


@pytest.fixture(scope="module")
def city():
    """Load the Shenzhen pack once for the module."""
    return load_city("shenzhen")


def test_pack_loads_with_nine_districts(city):
    assert (city.slug, city.name, city.timezone) == ("shenzhen", "深圳市", "Asia/Shanghai")
    assert {d.code: d.slug for d in city.districts} == CODES
    assert city.by_code["440306"].name_en == "Bao'an"
    for d in city.districts:
        assert d.name.endswith("区") and d.population > 100_000
        assert 22.4 < d.lat < 22.9 and 113.7 < d.lon < 114.7
        assert d.streets and all(s.name.endswith("街道") and s.name_en for s in d.streets)
    assert [s.name for s in city.by_code["440304"].streets] == [
        "园岭街道", "南园街道", "福田街道", "沙头街道", "香蜜湖街道", "梅林街道", "莲花街道", "华富街道", "福保街道", "华强北街道"]
    assert sum(len(d.streets) for d in city.districts) == 71  # 74 with 大鹏新区's three


def test_aliases_resolve_code_slug_and_chinese_name(city):
    for alias in ("440304", "futian", "福田区", "福田", "Futian", "FUTIAN"):
        assert city.resolve(alias).code == "440304", alias
    assert city.aliases["bao'an"] == city.aliases["宝安"] == "440306"
    assert city.resolve("大鹏") is None


def test_every_district_has_its_boundary_feature(city):
    gj = city.geojson
    assert gj["type"] == "FeatureCollection"
    by_id = {f["id"]: f for f in gj["features"]}
    assert set(by_id) == set(CODES)
    for d in city.districts:
        props = by_id[d.code]["properties"]
        assert props == {"code": d.code, "name": d.name, "name_en": d.name_en}
        assert by_id[d.code]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_geojson_is_small_and_rounded(city):
    path = city.path / "boundaries.geojson"
    assert path.stat().st_size < 200 * 1024
    decimals = re.findall(r"\d\.(\d+)", path.read_text(encoding="utf-8"))
    assert decimals and max(len(d) for d in decimals) <= 5


def test_geometries_are_valid_and_hold_their_centres(city):
    shapely_geometry = pytest.importorskip("shapely.geometry")  # a script-only dependency
    for f in city.geojson["features"]:
        geom = shapely_geometry.shape(f["geometry"])
        assert geom.is_valid and not geom.is_empty, f["id"]
        d = city.by_code[f["id"]]
        assert geom.contains(shapely_geometry.Point(d.lon, d.lat)), f"centre of {d.name} outside it"


def test_departments(city):
    codes = {d["code"] for d in city.departments}
    assert {"police", "fire", "emergency", "transport", "traffic_police", "ecology", "urban_mgmt",
            "water", "health", "meteorology"} <= codes
    assert {f"district_{c}" for c in CODES} <= codes
    assert all({"code", "name", "name_en", "kind"} <= set(d) for d in city.departments)
    assert len(codes) == len(city.departments)
