"""The map's alert outlines (dashboard/figures/alert_map.py): pure, from alert rows and the city pack."""

from __future__ import annotations

import pytest

from dashboard.core.city import load_city
from dashboard.figures import alert_map
from dashboard.figures.panorama import make_city_map


@pytest.fixture(scope="module")
def city():
    return load_city("shenzhen")


def row(n: int, level: str, district: str | None = "440304", zone: str | None = None, status: str = "firing",
        title: str = "福田区空气质量指数 230") -> dict:
    return {"id": n, "level": level, "status": status, "district": district, "zone": zone, "title": title,
            "title_en": f"EN {title}"}


def by_level(traces) -> dict:
    return {tr.meta["level"]: tr for tr in traces}


def points(trace) -> int:
    return sum(1 for x in trace.lon if x is not None)


def test_five_traces_always_in_order_empty_without_alerts(city):
    traces = alert_map.outline_traces([], city)
    assert [tr.meta["level"] for tr in traces] == ["halo", "blue", "yellow", "orange", "red"]
    assert all(len(tr.lon) == 0 for tr in traces)
    fig = alert_map.with_outlines(make_city_map(None, city, "risk"), None, city)
    assert len(fig.data) == 6 and fig.data[0].type == "choropleth"  # the districts stay data[0]


def test_a_red_district_and_an_orange_zone_are_outlined_each_in_its_level(city):
    zone = next(iter(city.alert_rules.zones.values()))
    traces = by_level(alert_map.outline_traces([row(1, "red"), row(2, "orange", zone.district, zone.code)], city))
    futian = next(f for f in city.geojson["features"] if f["id"] == "440304")
    assert points(traces["red"]) == sum(len(r) for r in alert_map.rings(futian["geometry"]))
    assert points(traces["orange"]) == len(zone.polygon) + 1  # closed
    assert list(traces["orange"].lon[:len(zone.polygon)]) == [p[0] for p in zone.polygon]
    assert points(traces["yellow"]) == points(traces["blue"]) == 0
    # the halo runs under every outline
    assert points(traces["halo"]) == points(traces["red"]) + points(traces["orange"])
    # level by dash as well as colour: never colour alone
    assert len({traces[lv].line.dash for lv in alert_map.LEVEL_DASH}) == 4
    assert traces["red"].line.color != traces["orange"].line.color


def test_hover_says_the_level_place_and_titles_in_words_as_text(city):
    evil = '<img src=x onerror="alert(1)">'
    [_, *levels] = alert_map.outline_traces([row(1, "red", title=evil), row(2, "red", title="第二条")], city, "zh")
    red = levels[-1]
    text = next(x for x in red.text if x)
    assert text.startswith("红色 · 福田区<br>")
    assert "&lt;img src=x" in text and "<img" not in text  # escaped: shown as typed
    assert "第二条" in text
    assert len([x for x in red.text if x]) == points(red)  # every point of the outline says it
    [_, *en] = alert_map.outline_traces([row(1, "red")], city, "en")
    assert next(x for x in en[-1].text if x).startswith("Red · Futian<br>EN ")


def test_only_open_alerts_and_places_are_outlined(city):
    traces = by_level(alert_map.outline_traces(
        [row(1, "red", status="resolved"), row(2, "red", status="pending"), row(3, "yellow", district=None),
         row(4, "blue", status="acknowledged")], city))
    assert points(traces["red"]) == 0  # resolved and pending: not on the map
    assert points(traces["yellow"]) == 0  # city-wide: no outline (the alert-list says it)
    assert points(traces["blue"]) > 0  # acknowledged: still open, still outlined


def test_several_alerts_of_one_place_draw_one_outline_and_count_the_rest(city):
    rows = [row(i, "orange", title=f"预警 {i}") for i in range(5)]
    orange = by_level(alert_map.outline_traces(rows, city))["orange"]
    futian = next(f for f in city.geojson["features"] if f["id"] == "440304")
    assert points(orange) == sum(len(r) for r in alert_map.rings(futian["geometry"]))
    text = next(x for x in orange.text if x)
    assert "预警 0" in text and "预警 3" not in text and "另有 2 条预警" in text


def test_the_dark_theme_halo_is_the_walls_ink(city):
    light = alert_map.outline_traces([row(1, "red")], city, theme="light")[0]
    dark = alert_map.outline_traces([row(1, "red")], city, theme="dark")[0]
    assert light.line.color != dark.line.color and dark.line.width > light.line.width / 2
