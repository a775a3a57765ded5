"""The incident map builder: pure, offline and SVG (a geo subplot), the district highlighted, the reports marked."""

from __future__ import annotations

import plotly.io as pio

from dashboard.core.city import load_city
from dashboard.figures.incident_map import make_incident_map, report_points

CITY = load_city("shenzhen")
INCIDENT = {"id": 7, "district": "440304", "kind": "fire", "title": "火情 莲花路", "lat": None, "lon": None}


def test_the_reports_are_marked_over_the_city_with_the_incidents_district_highlighted():
    reports = [{"lat": 22.55, "lon": 114.06, "title": "<img src=x onerror=alert(1)>"},
               {"lat": 22.54, "lon": 114.05, "title": "火情 莲花路"}, {"lat": None, "lon": None, "title": "no fix"}]
    fig = make_incident_map(INCIDENT, reports, CITY, "zh")
    districts, marks = fig.data
    assert districts.type == "choropleth" and marks.type == "scattergeo"  # SVG: no WebGL, no MapLibre
    assert list(districts.locations) == [d.code for d in CITY.districts]
    assert [z for code, z in zip(districts.locations, districts.z) if z] == [1]
    assert districts.locations[list(districts.z).index(1)] == "440304"
    assert list(marks.lat) == [22.55, 22.54] and list(marks.lon) == [114.06, 114.05]
    # titles are text: Plotly's hover would read tags, so they arrive escaped
    assert marks.hovertext[0] == "&lt;img src=x onerror=alert(1)&gt;"
    assert fig.layout.meta["approximate"] is False
    # nothing to fetch: no base layer (topojson), no tile source, no mapbox token
    assert fig.layout.geo.visible is False
    spec = pio.to_json(fig)
    assert "http" not in spec.replace("http://www.w3.org", "") and "accesstoken" not in spec.lower()
    # the view is around Futian, not the whole city
    whole = make_incident_map(None, [], CITY, "zh")
    span = fig.layout.geo.lonaxis.range[1] - fig.layout.geo.lonaxis.range[0]
    assert span < whole.layout.geo.lonaxis.range[1] - whole.layout.geo.lonaxis.range[0]
    assert 114.0 < fig.layout.geo.center.lon < 114.1 and 22.5 < fig.layout.geo.center.lat < 22.6


def test_without_coordinates_the_incidents_point_or_the_districts_centre_is_marked():
    assert report_points([], {**INCIDENT, "lat": 22.5, "lon": 114.0}) == [{"lat": 22.5, "lon": 114.0,
                                                                           "text": "火情 莲花路"}]
    fig = make_incident_map(INCIDENT, [{"lat": None, "lon": None, "title": "hotline"}], CITY, "en")
    futian = CITY.by_code["440304"]
    assert fig.layout.meta["approximate"] is True
    assert list(fig.data[1].lat) == [futian.lat] and list(fig.data[1].lon) == [futian.lon]
    assert fig.data[1].hovertext == ("Futian",)


def test_no_incident_shows_the_city_and_no_mark():
    fig = make_incident_map(None, [], CITY)
    assert not any(fig.data[0].z) and len(fig.data[1].lat) == 0 and fig.layout.meta["points"] == 0
