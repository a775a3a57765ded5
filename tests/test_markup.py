"""Text that came from outside reaches Plotly escaped: its HTML subset (<b>, <a href>, <br>) shows as typed."""

from __future__ import annotations

import shutil

import plotly.io as pio

from dashboard.figures import panorama as figures
from dashboard.core.city import PACKS_DIR, load_city
from dashboard.figures.incident_map import make_incident_map
from tests.helpers import sign_in, wait_for

BOLD = "<b>华富</b>"
LINK = '<a href="https://evil.example/">福保</a>'


def test_plain_escapes_what_plotly_would_read_as_markup_and_nothing_else():
    assert figures.plain(BOLD) == "&lt;b&gt;华富&lt;/b&gt;"
    assert figures.plain(LINK) == '&lt;a href="https://evil.example/"&gt;福保&lt;/a&gt;'
    # Plotly decodes &amp; &lt; &gt; but not &quot;: quotes stay as they are, & is kept as text
    assert figures.plain("say \"hi\" & 'bye'<br>") == "say \"hi\" &amp; 'bye'&lt;br&gt;"
    assert figures.plain(None) == "" and figures.plain(3) == "3"


def test_street_bars_and_incident_map_carry_no_markup_of_their_own():
    streets = [{"name": BOLD, "name_en": "", "counts": {"traffic": 2}},
               {"name": LINK, "name_en": LINK, "counts": {"incident": 1}}]
    for lang in ("zh", "en"):
        fig = figures.make_street_bars(streets, lang)
        assert list(fig.data[0].y) == [figures.plain(LINK), figures.plain(BOLD)]
        spec = pio.to_json(fig)
        assert "<a " not in spec and "<b>" not in spec
    reports = [{"lat": 22.55, "lon": 114.06, "title": 'say "hi" & <b>bold</b>'},
               {"lat": 22.54, "lon": 114.05, "title": LINK}]
    fig = make_incident_map({"id": 1, "district": "440304", "kind": "fire"}, reports, load_city("shenzhen"))
    assert list(fig.data[1].hovertext) == ['say "hi" &amp; &lt;b&gt;bold&lt;/b&gt;', figures.plain(LINK)]
    assert "<a " not in pio.to_json(fig) and "<b>bold" not in pio.to_json(fig)


def hostile_pack(tmp_path) -> str:
    """Copy the Shenzhen pack with two of Futian's streets named in markup; return its folder."""
    folder = tmp_path / "hostile-city"
    shutil.copytree(PACKS_DIR / "shenzhen", folder)
    manifest = folder / "city.yaml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace("{name: 华富街道, name_en: Huafu,", '{name: "<b>华富</b>", name_en: Huafu,')
    text = text.replace("{name: 福保街道, name_en: Fubao,",
                        '{name: "<a href=\\"https://evil.example/\\">福保</a>", name_en: Fubao,')
    manifest.write_text(text, encoding="utf-8")
    assert {s.name for s in load_city(str(folder)).by_code["440304"].streets} >= {BOLD, LINK}
    return str(folder)


def test_street_names_in_markup_are_drawn_as_text_in_chromium(make_app, redis_client, tmp_path, dash_duo):
    app = make_app(PANORAMA_CITY=hostile_pack(tmp_path), BROWSER_PATH="none")
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/district/futian")
    dash_duo.wait_for_text_to_equal("#district-title", "福田区", timeout=10)
    labels = "return [...document.querySelectorAll('#district-streets .ytick text')].map(e => e.textContent)"
    dash_duo.wait_for_element("#district-streets .ytick text", timeout=10)
    ticks = dash_duo.driver.execute_script(labels)
    assert BOLD in ticks and LINK in ticks, ticks
    svg = "#district-streets svg"
    assert dash_duo.driver.execute_script(
        f"return document.querySelectorAll('{svg} a, {svg} [style*=\"bold\"]').length") == 0
    # the street map's areas: their hover text holds the names escaped (Plotly shows them as sent)
    hover = wait_for(lambda: dash_duo.driver.execute_script(
        "const gd = document.querySelector('#district-map .js-plotly-plot');"
        "return gd && gd.data && gd.data[1] ? gd.data[1].text : null;"), timeout=20, message="the street map")
    assert any(x.startswith(figures.plain(BOLD) + "<br>") for x in hover)
    assert any(x.startswith(figures.plain(LINK) + "<br>") for x in hover)
    assert dash_duo.driver.execute_script("return document.querySelectorAll('#district-map svg a').length") == 0
    assert dash_duo.get_logs() == []
