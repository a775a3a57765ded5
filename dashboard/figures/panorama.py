"""Build the dashboard's Plotly figures from live state: pure functions, no I/O, testable without a browser.

The browser keeps these figures current by patching the arrays named here (``assets/live_figures.js``
mirrors ``fit_view`` and ``project``), so trace order and structure are part of the contract:
city map ``data[0]`` = districts coloured by the measure (its border arrays mark the spotlight); its labels are
``layout.annotations[i]`` for ``city.districts[i]`` where the figure carries them (a briefing's), else HTML over the
live pages' map (``map_labels``, layouts/common.py ``map_label_layer``); trend ``data[i]`` = ``DOMAINS[i]``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.core.i18n import district_name, t
from dashboard.core.channels import DOMAINS

MEASURES = ("all", "risk", *DOMAINS)
DOMAIN_COLORS = {"security": "#3b82f6", "traffic": "#f59e0b", "environment": "#10b981", "incident": "#ef4444"}
# The faces of the page's own text (assets/style.css), for Plotly's SVG text beside it: the system's CJK fonts where
# it has one, else the product's own web font (assets/fonts.css); in English a Latin face first (the CJK faces'
# Latin has em-wide quotes), Chinese in it falling through to the CJK faces.
CJK_FACES = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "Panorama Sans SC"'
LATIN_FACES = '"Noto Sans", "DejaVu Sans", "Segoe UI", "Helvetica Neue", Arial'


def font_family(lang: str) -> str:
    """Return the font stack of text in ``lang``, as the page sets its own."""
    return f"{LATIN_FACES}, {CJK_FACES}, sans-serif" if lang == "en" else f"{CJK_FACES}, system-ui, sans-serif"

TILE_PX = 512  # the world's width in px at zoom 0 (Web Mercator's tiles: the zoom means what it meant on MapLibre)
MAP_PAD = 0.04  # share of the map's width/height kept free around the city
LINE_WIDTH, HIGHLIGHT_WIDTH = 1.5, 5.0
# The wall's map at 1920x1080 in CSS px, and its labels' type: at 3840x2160 both are twice as large (wall.css sizes
# the page from the viewport, live_figures.js the labels), so labels placed here hold on every wall.
WALL_MAP_SIZE, WALL_LABEL_PX = (880, 450), 15
LABEL_PX = 12  # the desktop's
LABEL_PAD = 3  # px of an annotation's box around its text: borderpad 2 and its border
LABEL_LINE = 1.3  # Plotly's line height, in em
LABEL_GAP = 4  # px kept between two labels
# Where a label may go, tried in order, in its own width and height from the district's centre: on it, then
# above, below, beside it, on a diagonal, then further out.
LABEL_MOVES = ((0, 0), (0, -0.55), (0, 0.55), (-0.55, 0), (0.55, 0), (-0.55, -0.55), (0.55, -0.55),
               (-0.55, 0.55), (0.55, 0.55), (0, -1.1), (0, 1.1), (-1.1, 0), (1.1, 0), (-1.1, -1.1), (1.1, -1.1),
               (-1.1, 1.1), (1.1, 1.1))
STREET_BARS = 10  # the busiest streets drawn one bar each; the others (and streets the pack lacks) share one

THEMES = {
    "light": {"ink": "#1b2430", "muted": "#5b6776", "grid": "#e6ebf1", "line": "#ffffff",
              "label_bg": "rgba(255,255,255,0.78)", "accent": "#f5b700", "map_bg": "#ffffff",
              "counts": [[0, "#eef4fb"], [0.5, "#6aaed6"], [1, "#08306b"]],
              "risk": [[0, "#fff5eb"], [0.4, "#fdae6b"], [0.75, "#e6550d"], [1, "#8c1d04"]]},
    "dark": {"ink": "#dce6f2", "muted": "#8aa0b8", "grid": "#1c2a40", "line": "#0a1220",
             "label_bg": "rgba(8,15,28,0.72)", "accent": "#ffd400", "map_bg": "#0a1220",
             "counts": [[0, "#15304d"], [0.5, "#2b7bba"], [1, "#7fd3ff"]],
             "risk": [[0, "#143049"], [0.45, "#c98a1a"], [0.75, "#e8590c"], [1, "#ff2d2d"]]},
}


def plain(text) -> str:
    """Return text escaped for Plotly, whose labels render a subset of HTML (<b>, <a href>, <br>): shown as sent.

    Every text that came from outside (an event's street, title or kind) goes through here on its way
    into a figure: axis categories, trace text and hover text, names, annotations.
    """
    return "" if text is None else escape(str(text), quote=False)


def measure_label(measure: str, lang: str = "zh") -> str:
    """Return the name of a map measure."""
    return t(f"m_{measure}", lang) if measure in ("all", "risk") else t(measure, lang)


def district_values(window: dict | None, city, measure: str = "all") -> list[float]:
    """Return the measure of each district of ``city.districts``, in order (zeros without state)."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}")
    out = []
    for d in city.districts:
        entry = ((window or {}).get("districts") or {}).get(d.code) or {}
        counts = entry.get("counts") or {}
        if measure == "risk":
            out.append(float(entry.get("risk") or 0.0))
        elif measure == "all":
            out.append(float(sum(counts.get(dom, 0) for dom in DOMAINS)))
        else:
            out.append(float(counts.get(measure, 0)))
    return out


def color_range(values: list[float], measure: str) -> tuple[float, float]:
    """Return the colour scale's range: risk is always 0–100 so colours mean the same thing all day."""
    if measure == "risk":
        return 0.0, 100.0
    return 0.0, max(1.0, max(values, default=0.0))


def bounds(geojson: dict) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) of every coordinate in a FeatureCollection."""
    xs, ys = [], []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for part in c:
                walk(part)

    for feature in geojson["features"]:
        walk(feature["geometry"]["coordinates"])
    return min(xs), min(ys), max(xs), max(ys)


def _mx(lon: float) -> float:
    return (lon + 180.0) / 360.0


def _my(lat: float) -> float:
    s = math.sin(math.radians(lat))
    return 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


def fit_view(box: tuple[float, float, float, float], width: float, height: float, pad: float = MAP_PAD) -> dict:
    """Return the map ``center`` and ``zoom`` that fit ``box`` into a width×height px map (Web Mercator)."""
    west, south, east, north = box
    dx, dy = _mx(east) - _mx(west), _my(south) - _my(north)
    zoom = math.log2(min(width * (1 - 2 * pad) / (TILE_PX * dx), height * (1 - 2 * pad) / (TILE_PX * dy)))
    cx, cy = (_mx(west) + _mx(east)) / 2, (_my(north) + _my(south)) / 2
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * cy))))
    return {"center": {"lon": round(cx * 360 - 180, 6), "lat": round(lat, 6)}, "zoom": round(zoom, 4)}


def _lon(mx: float) -> float:
    return mx * 360.0 - 180.0


def _lat(my: float) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * my))))


def geo_view(view: dict, width: float, height: float, bgcolor: str = "rgba(0,0,0,0)") -> dict:
    """Return the ``layout.geo`` that draws ``view`` (``fit_view``'s centre and zoom) on a width×height px map.

    The maps are SVG (``go.Choropleth`` on a geo subplot, Mercator): no WebGL, no MapLibre. Plotly fits the
    lon/lat ranges into the subplot, so the ranges are the map's own edges at that zoom and the centre is the
    view's: every point falls where ``project`` says (the labels are placed by it), and nothing is clipped.
    No base layer (coast, land, countries...) is shown: there is no topojson to fetch (assets/geo_offline.js).
    """
    k = TILE_PX * 2 ** view["zoom"]
    cx, cy = _mx(view["center"]["lon"]), _my(view["center"]["lat"])
    west, east = _lon(cx - width / 2 / k), _lon(cx + width / 2 / k)
    north, south = _lat(cy - height / 2 / k), _lat(cy + height / 2 / k)
    return {"visible": False, "projection": {"type": "mercator"}, "center": view["center"],
            "lonaxis": {"range": [round(west, 6), round(east, 6)]},
            "lataxis": {"range": [round(south, 6), round(north, 6)]},
            "domain": {"x": [0, 1], "y": [0, 1]}, "bgcolor": bgcolor}


def project(lon: float, lat: float, view: dict, width: float, height: float) -> tuple[float, float]:
    """Return where a point falls on the map as paper fractions (x from the left, y from the bottom)."""
    scale = TILE_PX * 2 ** view["zoom"]
    px = (_mx(lon) - _mx(view["center"]["lon"])) * scale + width / 2
    py = (_my(lat) - _my(view["center"]["lat"])) * scale + height / 2
    return round(px / width, 4), round(1 - py / height, 4)


def label_name(d, lang: str) -> str:
    """Return a district's name as its map label shows it (Chinese without 区)."""
    name = district_name(d, lang)
    return name if lang == "en" else name.removesuffix("区")


def text_em(text: str) -> float:
    """Return an upper estimate of a bold text's width in em (CJK a full em; Latin letters by case)."""
    def em(ch: str) -> float:
        if ord(ch) >= 0x2E80:
            return 1.0
        if ch.isupper() or ch in "mwMW":
            return 0.78
        return 0.36 if ch in "'.,:;il|!" else 0.66
    return sum(em(ch) for ch in text)


def label_size(name: str, digits: int, font_px: float) -> tuple[float, float]:
    """Return the px width and height of a map label: the name in bold over a number of ``digits`` digits."""
    return (max(text_em(name), 0.66 * digits) * font_px + 2 * LABEL_PAD,
            2 * LABEL_LINE * font_px + 2 * LABEL_PAD)


def _overlap(a: tuple, b: tuple) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(city, lang: str, size: tuple[int, int], font_px: float, digits: int = 4) -> list[list[float]]:
    """Return where each district's label goes, ``[dx, dy]`` in em from its centre (y down), so no two collide.

    Deterministic: districts in the pack's order, each at the first of ``LABEL_MOVES`` where its box (estimated
    by ``label_size``) stays on the map, clear of the colour bar and of the labels already placed, else where
    it overlaps least. In em, the offsets hold wherever the map and its type grow together (the wall).
    """
    width, height = size
    view = fit_view(bounds(city.geojson), width, height)
    # the colour bar, top right (make_city_map's colorbar: x 0.98 right, y 0.97 top, 0.32 long)
    taken = [((0.98 - 0.32) * width, 0.03 * height, 0.98 * width, 0.03 * height + 3.2 * font_px)]
    out = []
    for d in city.districts:
        w, h = label_size(label_name(d, lang), digits, font_px)
        x, y = project(d.lon, d.lat, view, width, height)
        cx, cy = x * width, (1 - y) * height
        best = None
        for mx_, my_ in LABEL_MOVES:
            dx, dy = mx_ * w, my_ * h
            box = (cx + dx - w / 2, cy + dy - h / 2, cx + dx + w / 2, cy + dy + h / 2)
            off = max(0.0, -box[0], -box[1], box[2] - width, box[3] - height)
            grown = (box[0] - LABEL_GAP, box[1] - LABEL_GAP, box[2] + LABEL_GAP, box[3] + LABEL_GAP)
            cost = sum(_overlap(grown, other) for other in taken) + off * h
            if best is None or cost < best[0]:
                best = (cost, box, dx, dy)
            if cost == 0:
                break
        taken.append(best[1])
        out.append([round(best[2] / font_px, 3), round(best[3] / font_px, 3)])
    return out


def _number(value: float, measure: str) -> str:
    return f"{value:.0f}" if measure == "risk" else f"{int(value)}"


def _label(d, value: float, measure: str, lang: str) -> str:
    return f"<b>{plain(label_name(d, lang))}</b><br>{_number(value, measure)}"


def map_labels(window: dict | None, city, measure: str = "all", lang: str = "zh", size: tuple[int, int] = (960, 600),
               label_px: float = LABEL_PX) -> list[dict]:
    """Return each district's map label: its code, name and number, where its district's centre falls on a
    width×height map (``x``, ``y``: paper fractions, y from the bottom) and its offset from there in em (``dx``,
    ``dy``: ``place_labels``, y down)."""
    values = district_values(window, city, measure)
    view = fit_view(bounds(city.geojson), *size)
    offsets = place_labels(city, lang, size, label_px, 3 if measure == "risk" else 4)
    out = []
    for d, v, (dx, dy) in zip(city.districts, values, offsets):
        x, y = project(d.lon, d.lat, view, *size)
        out.append({"code": d.code, "name": label_name(d, lang), "number": _number(v, measure),
                    "x": x, "y": y, "dx": dx, "dy": dy})
    return out


def outline(codes: list[str], highlight: str | None, theme: str = "light") -> tuple[list[str], list[float]]:
    """Return each district's border colour and width: the spotlit one drawn thick in the accent colour."""
    th = THEMES[theme]
    return ([th["accent"] if c == highlight else th["line"] for c in codes],
            [HIGHLIGHT_WIDTH if c == highlight else LINE_WIDTH for c in codes])


def make_city_map(window: dict | None, city, measure: str = "all", lang: str = "zh", highlight: str | None = None,
                  theme: str = "light", size: tuple[int, int] = (960, 600), label_px: float = LABEL_PX,
                  labels: bool = True) -> go.Figure:
    """Return the district choropleth (offline, SVG: ``Choropleth`` on a geo subplot, ``geo_view``) for one window.

    ``size`` is the expected px size of the map and ``label_px`` its labels' type; the browser refits centre,
    zoom and labels to the real one, keeping each label's offset (``layout.meta.labels``, in em). ``labels``:
    the districts' labels drawn as the figure's annotations (a briefing's map); the live pages draw them as HTML
    over the map instead (``map_labels``), so a live update redraws the colours alone: Plotly lays out every
    annotation's text again on each redraw, and that was most of the live map's main-thread time.
    """
    th = THEMES[theme]
    values = district_values(window, city, measure)
    lo, hi = color_range(values, measure)
    codes = [d.code for d in city.districts]
    names = [plain(district_name(d, lang)) for d in city.districts]
    # no baseline yet (state.py's risk_basis): the risk is the population pressure, and its title says so
    basis = "population" if measure == "risk" and (window or {}).get("risk_basis") == "population" else "baseline"
    label = t("m_risk_population", lang) if basis == "population" else measure_label(measure, lang)
    box = bounds(city.geojson)
    view = fit_view(box, *size)
    line_colors, line_widths = outline(codes, highlight, theme)
    fig = go.Figure(go.Choropleth(
        geojson=city.geojson, featureidkey="id", locations=codes, z=values, zmin=lo, zmax=hi,
        colorscale=th["risk"] if measure == "risk" else th["counts"], customdata=names,
        marker={"line": {"color": line_colors, "width": line_widths}, "opacity": 0.92},
        hovertemplate=f"%{{customdata}}<br>{label}: %{{z}}<extra></extra>", showlegend=False,
        colorbar={"orientation": "h", "x": 0.98, "xanchor": "right", "y": 0.97, "yanchor": "top",
                  "len": 0.32, "thickness": 10, "title": {"text": label, "side": "top"},
                  "tickfont": {"color": th["muted"]}, "outlinewidth": 0},
    ))
    annotations = []
    placed = map_labels(window, city, measure, lang, size, label_px)
    for d, v, spot in zip(city.districts, values, placed) if labels else ():
        # centred on the point: Plotly's "auto" anchors labels left of a third of the width and right past two
        annotations.append({"x": spot["x"], "y": spot["y"], "xref": "paper", "yref": "paper", "showarrow": False,
                            "xanchor": "center", "yanchor": "middle",
                            "xshift": round(spot["dx"] * label_px, 1), "yshift": round(-spot["dy"] * label_px, 1),
                            "text": _label(d, v, measure, lang), "font": {"size": label_px, "color": th["ink"]},
                            "bgcolor": th["label_bg"], "borderpad": 2})
    offsets = [[spot["dx"], spot["dy"]] for spot in placed]
    fig.update_layout(
        geo=geo_view(view, *size, bgcolor=th["map_bg"]),
        margin={"l": 0, "r": 0, "t": 0, "b": 0, "autoexpand": False}, paper_bgcolor="rgba(0,0,0,0)", dragmode=False,
        font={"family": font_family(lang), "color": th["ink"], "size": 12}, annotations=annotations,
        uirevision="city", meta={"measure": measure, "highlight": highlight, "bounds": list(box), "labels": offsets,
              "basis": basis},
    )
    return fig


def minute_labels(start_ms: int, n: int, step_ms: int, tz: str) -> list[str]:
    """Return ``n`` local 'YYYY-MM-DD HH:MM' labels from ``start_ms`` (what Plotly reads as local time)."""
    zone = ZoneInfo(tz)
    return [datetime.fromtimestamp((start_ms + i * step_ms) / 1000, tz=UTC).astimezone(zone)
            .strftime("%Y-%m-%d %H:%M") for i in range(n)]


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _base_layout(th: dict, lang: str) -> dict:
    return {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"family": font_family(lang), "color": th["ink"], "size": 12}, "showlegend": False}


def make_trend(trend: dict | None, lang: str, tz: str, theme: str = "light") -> go.Figure:
    """Return the per-minute counts of each domain as four stacked sparkline charts sharing one time axis."""
    th = THEMES[theme]
    series = (trend or {}).get("series") or {}
    n = max((len(v) for v in series.values()), default=0)
    x = minute_labels(trend["start"], n, trend["step_ms"], tz) if trend and n else []
    fig = make_subplots(rows=len(DOMAINS), cols=1, shared_xaxes=True, vertical_spacing=0.05)
    for i, dom in enumerate(DOMAINS, start=1):
        color = DOMAIN_COLORS[dom]
        fig.add_trace(go.Scatter(
            x=x, y=list(series.get(dom, [0] * n)), mode="lines", name=t(dom, lang),
            line={"color": color, "width": 2}, fill="tozeroy", fillcolor=_rgba(color, 0.16),
            hovertemplate=f"{t(dom, lang)} %{{x|%H:%M}}: %{{y}}<extra></extra>",
        ), row=i, col=1)
        fig.update_yaxes(rangemode="tozero", nticks=2, gridcolor=th["grid"], zeroline=False, side="right",
                         tickfont={"color": th["muted"]}, fixedrange=True, row=i, col=1)
        # Sizes are left to layout.font so that one patch scales every text of the chart (the wall does).
        fig.add_annotation(text=t(dom, lang), xref="x domain", yref="y domain", x=0.005, y=0.98, xanchor="left",
                           yanchor="top", showarrow=False, font={"color": color}, bgcolor=th["label_bg"],
                           row=i, col=1)
    fig.update_xaxes(showgrid=False, tickformat="%H:%M", tickfont={"color": th["muted"]}, fixedrange=True)
    fig.update_layout(**_base_layout(th, lang), margin={"l": 6, "r": 30, "t": 6, "b": 24}, hovermode="x unified",
                      uirevision="trend")
    return fig


def make_spot_trend(trend: dict | None, lang: str, tz: str, theme: str = "dark") -> go.Figure:
    """Return one district's per-minute counts as one chart, a line per domain (the wall's spotlight).

    Trace ``i`` is ``DOMAINS[i]``: the browser patches their x and y as the spotlight moves.
    """
    th = THEMES[theme]
    series = (trend or {}).get("series") or {}
    n = max((len(v) for v in series.values()), default=0)
    x = minute_labels(trend["start"], n, trend["step_ms"], tz) if trend and n else []
    fig = go.Figure([go.Scatter(x=x, y=list(series.get(dom, [0] * n)), mode="lines", name=t(dom, lang),
                                line={"color": DOMAIN_COLORS[dom], "width": 2},
                                hovertemplate=f"{t(dom, lang)} %{{x|%H:%M}}: %{{y}}<extra></extra>")
                     for dom in DOMAINS])
    fig.update_xaxes(showgrid=False, tickformat="%H:%M", tickfont={"color": th["muted"]}, fixedrange=True, nticks=4)
    fig.update_yaxes(rangemode="tozero", nticks=3, gridcolor=th["grid"], zeroline=False, side="right",
                     tickfont={"color": th["muted"]}, fixedrange=True)
    fig.update_layout(**_base_layout(th, lang), margin={"l": 4, "r": 30, "t": 4, "b": 22}, hovermode=False,
                      uirevision="spot-trend")
    return fig


def make_street_bars(streets: list[dict], lang: str = "zh", theme: str = "light", other: dict | None = None,
                     top: int = STREET_BARS) -> go.Figure:
    """Return one horizontal stacked bar per street (街道), busiest on top, split by domain.

    The ``top`` busiest streets get a bar each; the rest, with ``other`` (counts of streets the city
    pack does not know), share one last bar, so the chart's height is bounded whatever was sent.
    """
    th = THEMES[theme]
    rows = sorted(streets, key=lambda s: sum(s["counts"].values()))  # plotly draws the last one on top
    shown, rest = rows[-top:] if top > 0 else [], rows[:-top] if top > 0 else rows
    bars = [((s.get("name_en") or s["name"]) if lang == "en" else s["name"], s["counts"]) for s in shown]
    rest_counts = {dom: sum(s["counts"].get(dom, 0) for s in rest) + (other or {}).get(dom, 0) for dom in DOMAINS}
    if rest or any(rest_counts.values()):
        bars.insert(0, (t("streets_rest", lang), rest_counts))
    names = [plain(name) for name, _ in bars]
    fig = go.Figure()
    for dom in DOMAINS:
        fig.add_trace(go.Bar(
            y=names, x=[counts.get(dom, 0) for _, counts in bars], name=t(dom, lang), orientation="h",
            marker={"color": DOMAIN_COLORS[dom]}, hovertemplate=f"%{{y}} · {t(dom, lang)}: %{{x}}<extra></extra>",
        ))
    fig.update_layout(**_base_layout(th, lang), barmode="stack", height=max(220, 30 * len(bars) + 70),
                      margin={"l": 8, "r": 16, "t": 8, "b": 40}, bargap=0.3, uirevision="streets")
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.12, "x": 0})
    fig.update_xaxes(gridcolor=th["grid"], rangemode="tozero", fixedrange=True)
    fig.update_yaxes(automargin=True, fixedrange=True)
    return fig
