"""The figure builders and the pages' other pure helpers, without a browser."""

from __future__ import annotations

import json

import plotly.io as pio
import pytest

from dashboard.panorama.district import Filter, parse_filter
from dashboard.figures import panorama as figures
from dashboard.core.city import load_city
from dashboard.core.channels import DOMAINS


@pytest.fixture(scope="module")
def city():
    return load_city("shenzhen")


def window(city, **counts_by_code):
    """Return a live-state window with the given {code: (counts dict, risk)} and zeros elsewhere."""
    districts = {}
    for d in city.districts:
        counts, risk = counts_by_code.get(d.slug, ({}, 0.0))
        districts[d.code] = {"counts": {dom: counts.get(dom, 0) for dom in DOMAINS}, "risk": risk}
    return {"start": 0, "end": 60_000, "minutes": 60, "totals": {}, "previous": {}, "districts": districts}


def test_district_values_follow_the_measure(city):
    w = window(city, futian=({"traffic": 5, "incident": 2}, 40.5), nanshan=({"security": 1}, 3.0))
    order = [d.slug for d in city.districts]
    futian, nanshan = order.index("futian"), order.index("nanshan")
    assert figures.district_values(w, city, "all")[futian] == 7
    assert figures.district_values(w, city, "traffic")[futian] == 5
    assert figures.district_values(w, city, "risk")[nanshan] == 3.0
    assert figures.district_values(None, city, "all") == [0.0] * len(city.districts)
    with pytest.raises(ValueError):
        figures.district_values(w, city, "weather")


def test_risk_keeps_a_fixed_colour_range_counts_follow_the_data():
    assert figures.color_range([3.0, 97.0], "risk") == (0.0, 100.0)
    assert figures.color_range([3.0, 97.0], "all") == (0.0, 97.0)
    assert figures.color_range([0.0, 0.0], "traffic") == (0.0, 1.0)  # never an empty scale


def test_fit_view_frames_the_city_and_project_inverts_it(city):
    box = figures.bounds(city.geojson)
    west, south, east, north = box
    assert 113.6 < west < east < 114.8 and 22.3 < south < north < 23.0
    for width, height in ((960, 600), (1200, 500), (3000, 1600)):
        view = figures.fit_view(box, width, height)
        corners = [figures.project(lon, lat, view, width, height) for lon, lat in ((west, south), (east, north))]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        pad = figures.MAP_PAD
        assert all(pad - 0.002 <= v <= 1 - pad + 0.002 for v in xs + ys)
        # tight in at least one direction
        assert min(xs) == pytest.approx(pad, abs=0.002) or min(ys) == pytest.approx(pad, abs=0.002)
        assert figures.project(view["center"]["lon"], view["center"]["lat"], view, width, height) == (0.5, 0.5)
    # the geo subplot's ranges are the map's edges at that view: the box's corners fall where project says
    view = figures.fit_view(box, 960, 600)
    geo = figures.geo_view(view, 960, 600)
    (w_, e_), (s_, n_) = geo["lonaxis"]["range"], geo["lataxis"]["range"]
    assert figures.project(w_, n_, view, 960, 600) == pytest.approx((0.0, 1.0), abs=1e-4)
    assert figures.project(e_, s_, view, 960, 600) == pytest.approx((1.0, 0.0), abs=1e-4)
    assert geo["center"] == view["center"] and geo["visible"] is False
    # a bigger screen zooms in
    assert figures.fit_view(box, 3840, 2000)["zoom"] > figures.fit_view(box, 1920, 1000)["zoom"]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_city_map_is_an_offline_svg_choropleth(city, theme):
    w = window(city, futian=({"traffic": 5}, 40.5))
    fig = figures.make_city_map(w, city, "risk", "zh", highlight="440304", theme=theme)
    assert [tr.type for tr in fig.data] == ["choropleth"]  # SVG on a geo subplot: no WebGL, no MapLibre
    trace = fig.data[0]
    assert trace.featureidkey == "id" and list(trace.locations) == [d.code for d in city.districts]
    assert trace.geojson["features"][0]["id"] in trace.locations
    assert (trace.zmin, trace.zmax) == (0.0, 100.0)
    # the spotlit district has the thick accent border, the others the thin one
    i = list(trace.locations).index("440304")
    assert trace.marker.line.width[i] == figures.HIGHLIGHT_WIDTH
    assert set(trace.marker.line.width[:i] + trace.marker.line.width[i + 1:]) == {figures.LINE_WIDTH}
    # labels: one per district, in registry order, with its name and value
    assert len(fig.layout.annotations) == len(city.districts)
    assert fig.layout.annotations[i].text == "<b>福田</b><br>40"
    # nothing in it points at the network (no tiles, sprites, glyphs, topojson)
    doc = pio.to_json(fig)
    assert "http" not in doc
    geo = fig.layout.geo
    assert geo.visible is False and geo.projection.type == "mercator"  # no base layer: no topojson is drawn
    assert geo.bgcolor == figures.THEMES[theme]["map_bg"]
    assert fig.layout.meta["bounds"] == list(figures.bounds(city.geojson))


def test_city_map_speaks_the_language_and_names_the_measure(city):
    fig = figures.make_city_map(window(city), city, "traffic", "en")
    assert fig.data[0].colorbar.title.text == "Traffic"
    assert "Futian" in list(fig.data[0].customdata)
    assert fig.layout.annotations[1].text.startswith("<b>Futian</b>")
    assert figures.make_city_map(None, city, "all", "zh").data[0].colorbar.title.text == "全部事件"


def test_trend_has_one_line_per_domain_in_local_minutes():
    start = 1_795_651_200_000  # 2026-11-26 00:00 UTC
    series = {d: list(range(i, i + 60)) for i, d in enumerate(DOMAINS)}
    fig = figures.make_trend({"start": start, "step_ms": 60_000, "series": series}, "en", "Asia/Shanghai")
    assert [tr.name for tr in fig.data] == ["Security", "Traffic", "Environment", "Incidents"]
    assert fig.data[0].x[0] == "2026-11-26 08:00" and fig.data[0].x[-1] == "2026-11-26 08:59"
    assert list(fig.data[3].y) == series["incident"]
    assert [a.text for a in fig.layout.annotations] == ["Security", "Traffic", "Environment", "Incidents"]
    empty = figures.make_trend(None, "zh", "Asia/Shanghai")
    assert len(empty.data) == 4 and all(len(tr.y) == 0 for tr in empty.data)


def test_minute_labels_use_the_city_time_zone():
    assert figures.minute_labels(1_795_651_200_000, 2, 60_000, "Asia/Shanghai") == \
        ["2026-11-26 08:00", "2026-11-26 08:01"]
    assert figures.minute_labels(1_795_651_200_000, 1, 60_000, "UTC") == ["2026-11-26 00:00"]


def test_street_bars_put_the_busiest_street_on_top():
    streets = [{"name": "莲花街道", "name_en": "Lianhua", "counts": {"traffic": 1, "security": 1}},
               {"name": "福田街道", "name_en": "Futian", "counts": {"traffic": 9}},
               {"name": "园岭街道", "name_en": "", "counts": {}}]
    fig = figures.make_street_bars(streets, "zh")
    assert [tr.name for tr in fig.data] == ["公共安全", "交通", "生态环境", "突发事件"]
    assert list(fig.data[0].y) == ["园岭街道", "莲花街道", "福田街道"]  # plotly draws the last on top
    assert list(fig.data[1].x) == [0, 1, 9]
    assert list(figures.make_street_bars(streets, "en").data[0].y) == ["园岭街道", "Lianhua", "Futian"]
    assert fig.layout.barmode == "stack"


def test_figures_serialise_to_plain_json(city):
    for fig in (figures.make_city_map(window(city), city), figures.make_trend(None, "zh", "Asia/Shanghai"), figures.make_street_bars([])):
        json.loads(pio.to_json(fig))


def test_table_filters_parse_what_the_datatable_sends():
    assert parse_filter('{severity} >= 3 && {domain} contains "交通"') == [
        Filter("severity", "ge", "3"), Filter("domain", "contains", "交通")]
    assert parse_filter("{title} icontains 'a \\' b'") == [Filter("title", "contains", "a ' b")]
    assert parse_filter("{severity} s= 4") == [Filter("severity", "eq", "4")]
    # what the server cannot serve is dropped, never passed to SQL
    assert parse_filter('{time} contains "08:" && {nope} = 1 && {title} is blank') == []
    assert parse_filter(None) == [] and parse_filter("") == []


def label_boxes(fig, size: tuple[int, int]) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Estimate each map label's box in px (x right, y down) as Plotly draws it, on its own generous measure:
    a CJK glyph a full em, a Latin letter 0.8 em (bold), two lines of 1.3 em, 4 px of padding."""
    width, height = size
    out = []
    for a in fig.layout.annotations:
        assert a.xanchor == "center" and a.yanchor == "middle", "Plotly's auto anchor moves side labels off centre"
        name, number = a.text.removeprefix("<b>").split("</b><br>")
        px = a.font.size
        w = max(sum(1.0 if ord(c) >= 0x2E80 else 0.8 for c in name), 0.8 * len(number)) * px + 8
        h = 2 * 1.3 * px + 8
        cx, cy = a.x * width + (a.xshift or 0), (1 - a.y) * height - (a.yshift or 0)
        out.append((name, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("scale", [1, 2])  # 1920x1080 and 3840x2160: the map and its type twice as large
def test_wall_map_labels_do_not_collide(city, lang, scale):
    size = (figures.WALL_MAP_SIZE[0] * scale, figures.WALL_MAP_SIZE[1] * scale)
    busy = window(city, **{d.slug: ({"traffic": 9999}, 100.0) for d in city.districts})  # the widest numbers
    fig = figures.make_city_map(busy, city, "risk", lang, theme="dark", size=size,
                                label_px=figures.WALL_LABEL_PX * scale)
    boxes = label_boxes(fig, size)
    assert [n for n, _ in boxes][:3] == (["罗湖", "福田", "南山"] if lang == "zh" else ["Luohu", "Futian", "Nanshan"])
    for i, (a, ba) in enumerate(boxes):
        assert 0 <= ba[0] and ba[2] <= size[0] and 0 <= ba[1] and ba[3] <= size[1], f"{a} off the map"
        for b, bb in boxes[i + 1:]:
            apart = ba[2] <= bb[0] or bb[2] <= ba[0] or ba[3] <= bb[1] or bb[3] <= ba[1]
            assert apart, f"{a} and {b} collide: {ba} {bb}"
    assert fig.layout.meta["labels"] == figures.place_labels(city, lang, size, figures.WALL_LABEL_PX * scale, 3)


def test_labels_move_apart_where_the_map_is_small(city):
    # a map too small for every label on its district's centre: the placement moves some, and none collide
    size, px = (420, 240), 12
    offsets = figures.place_labels(city, "en", size, px, 3)
    assert any(o != [0, 0] for o in offsets)
    fig = figures.make_city_map(window(city), city, "risk", "en", size=size, label_px=px)
    boxes = [b for _, b in label_boxes(fig, size)]
    overlaps = sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1:]
                   if not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]))
    centred = figures.make_city_map(window(city), city, "risk", "en", size=size, label_px=px)
    for a in centred.layout.annotations:
        a.xshift = a.yshift = 0
    before = [b for _, b in label_boxes(centred, size)]
    assert overlaps < sum(1 for i, a in enumerate(before) for b in before[i + 1:]
                          if not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_command_views_map_outlines_the_incidents_district_in_the_accent_colour(city, theme):
    from dashboard.figures.major_map import make_major_map

    here = city.districts[2]
    fig = make_major_map({"id": 1, "lat": here.lat, "lon": here.lon, "district": here.code, "title": "x"}, 3000,
                         [], city, "zh", theme)
    districts = fig.data[0]
    colors, widths = districts.marker.line.color, districts.marker.line.width
    mine = list(districts.locations).index(here.code)
    assert colors[mine] == figures.THEMES[theme]["accent"] and widths[mine] == figures.HIGHLIGHT_WIDTH
    others = [i for i in range(len(colors)) if i != mine]
    assert {colors[i] for i in others} == {figures.THEMES[theme]["line"]}
    assert all(widths[i] == figures.LINE_WIDTH < figures.HIGHLIGHT_WIDTH for i in others)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_live_map_has_no_annotations_and_its_html_labels_sit_where_the_annotations_would(city, lang):
    # the live pages draw the labels as HTML over the map (layouts/common.py map_label_layer): a redraw of the
    # colours is then no layout of the labels' text. They sit where the briefing's annotations do, offsets and all.
    live = figures.make_city_map(window(city), city, "risk", lang, theme="dark", size=figures.WALL_MAP_SIZE,
                                 label_px=figures.WALL_LABEL_PX, labels=False)
    drawn = figures.make_city_map(window(city), city, "risk", lang, theme="dark", size=figures.WALL_MAP_SIZE,
                                  label_px=figures.WALL_LABEL_PX)
    assert live.layout.annotations == ()
    labels = figures.map_labels(window(city), city, "risk", lang, figures.WALL_MAP_SIZE, figures.WALL_LABEL_PX)
    assert [lab["code"] for lab in labels] == [d.code for d in city.districts]
    assert live.layout.meta["labels"] == [[lab["dx"], lab["dy"]] for lab in labels]
    for lab, a in zip(labels, drawn.layout.annotations):
        assert (lab["x"], lab["y"]) == (a.x, a.y)
        assert (round(lab["dx"] * figures.WALL_LABEL_PX, 1), round(-lab["dy"] * figures.WALL_LABEL_PX, 1)) == (
            a.xshift, a.yshift)
        assert a.text == f"<b>{lab['name']}</b><br>{lab['number']}"


def test_map_labels_are_text_in_the_layout(city):
    # a district's name is shown as sent (React renders text, never HTML), in its own element beside its number
    from layouts.common import map_label_layer
    layer = map_label_layer(figures.map_labels(None, city, "all", "en"), figures.LABEL_PX)
    assert layer.id == "map-labels" and layer.style == {"fontSize": "12px"}
    first = layer.children[0]
    assert [c.children for c in first.children] == ["Luohu", "0"]
    assert first.style["transform"] == "translate(calc(-50% + 0.0em), calc(-50% + 0.0em))"
