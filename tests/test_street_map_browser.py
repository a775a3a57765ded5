"""In Chromium, a district's map draws its streets as areas (issue 18): the drill-down /district/<code> of a city
officer, and a district centre's user's / (their district's drill-down), one area per street, coloured by its
events, with the note that the areas are approximate."""

from __future__ import annotations

import pytest

from tests.helpers import sign_in, wait_for, wait_for_graphs
from tests.test_district_browser import names_shown
from tests.test_district_wall import seed_streets

# The district map as Chromium draws it: the paths of each choropleth trace (the district's, then its streets'),
# and the streets' trace as Plotly holds it.
MAP_JS = """const gd = document.querySelector('#district-map .js-plotly-plot');
if (!gd || !gd.data || gd.data.length < 2) { return null; }
const traces = [...gd.querySelectorAll('.choroplethlayer .trace')];
return {paths: traces.map((g) => g.querySelectorAll('path.choroplethlocation').length),
        locations: gd.data[1].locations, z: gd.data[1].z, text: gd.data[1].text};"""
NOTE_JS = "const el = document.querySelector('#district-map-note'); return el ? el.textContent : null;"
LUOHU_STREETS = 10


def drawn(dash_duo) -> dict:
    """Wait until the district map has drawn its street areas; return what it drew."""
    return wait_for(lambda: (lambda m: m if m and len(m["paths"]) == 2 and m["paths"][1] else None)(
        dash_duo.driver.execute_script(MAP_JS)), timeout=30, message="the district map's street areas drawn")


@pytest.mark.timeout(300)
def test_the_drill_down_map_draws_one_area_per_street(make_app, redis_client, dash_duo):
    app = make_app(BROWSER_PATH="none")
    seed_streets(app)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/district/luohu")
    dash_duo.wait_for_text_to_equal("#district-title", "罗湖区", timeout=20)
    shown = drawn(dash_duo)
    assert shown["paths"] == [1, LUOHU_STREETS], "the district under one area per street"
    z = dict(zip(shown["locations"], shown["z"]))
    assert len(z) == LUOHU_STREETS and z["黄贝街道"] == 4 and z["东门街道"] == 1 and z["桂园街道"] == 0
    assert "黄贝街道<br>共 4 条" in shown["text"]
    assert dash_duo.driver.execute_script(NOTE_JS) == "街道边界为近似示意"
    wait_for_graphs(dash_duo)
    dash_duo.find_element("#lang-toggle").click()
    wait_for(lambda: dash_duo.driver.execute_script(NOTE_JS) == "Street boundaries are approximate", timeout=20,
             message="the note in English")
    assert "Huangbei<br>4 events" in drawn(dash_duo)["text"]
    wait_for_graphs(dash_duo)
    assert dash_duo.get_logs() == []


@pytest.mark.timeout(300)
def test_a_district_users_home_shows_their_district_by_street_on_a_map(make_app, redis_client, dash_duo):
    app = make_app(BROWSER_PATH="none")
    seed_streets(app)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", district="440303")
    dash_duo.wait_for_text_to_equal("#district-title", "罗湖区", timeout=20)
    shown = drawn(dash_duo)
    assert shown["paths"] == [1, LUOHU_STREETS] and dict(zip(shown["locations"], shown["z"]))["黄贝街道"] == 4
    assert dash_duo.driver.execute_script(NOTE_JS) == "街道边界为近似示意"
    assert names_shown(dash_duo) == [] and not any("华强北" in x for x in shown["text"])
    wait_for_graphs(dash_duo)
    assert dash_duo.get_logs() == []


# How many points of a grid over the map's colour bar (its title, bar and ticks) fall inside one of the map's areas
# (the district's or a street's), as Chromium fills them: 0 when the bar lies clear of the map.
BAR_OVER_MAP_JS = """const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
const bars = gd ? [...gd.querySelectorAll('.colorbar')] : [];
const paths = gd ? [...gd.querySelectorAll('.choroplethlayer path.choroplethlocation')] : [];
if (bars.length !== 1 || !paths.length) { return null; }
const box = bars[0].getBoundingClientRect();
let hits = 0;
for (let i = 0; i <= 40; i++) {
  for (let j = 0; j <= 10; j++) {
    const x = box.left + box.width * i / 40, y = box.top + box.height * j / 10;
    if (paths.some((p) => {
      const m = p.getScreenCTM().inverse();
      return p.isPointInFill(new DOMPoint(x, y).matrixTransform(m));
    })) { hits++; }
  }
}
return hits;"""


@pytest.mark.timeout(300)
def test_the_colour_bar_of_a_district_map_lies_clear_of_its_streets(make_app, redis_client, dash_duo):
    """Luohu reaches the top right corner of its map, where the colour bar was: on the drill-down (1600 px wide)
    and on Luohu's wall (1920x1080) the bar, its title and ticks cover no street."""
    from dashboard.storage import users as accounts
    from tests.test_district_scope import OWN
    from tests.test_pages import viewport

    app = make_app(BROWSER_PATH="none", PANORAMA_WALL_CYCLE_S=3600)
    seed_streets(app)
    svc = app.server.extensions["panorama"]
    _, token = accounts.create_kiosk_token(svc.engine, "罗湖大屏", OWN, [d.code for d in svc.city.districts])
    dash_duo.start_server(app)
    viewport(dash_duo, 1600, 1200)
    sign_in(dash_duo, app, "/district/luohu")
    drawn(dash_duo)
    wait_for_graphs(dash_duo)
    assert dash_duo.driver.execute_script(BAR_OVER_MAP_JS, "#district-map") == 0, "the drill-down's bar on a street"
    dash_duo.driver.delete_all_cookies()
    viewport(dash_duo, 1920, 1080)
    dash_duo.driver.get(f"{dash_duo.server_url.rstrip('/')}/wall?token={token}")
    dash_duo.wait_for_element("#wall-streets .js-plotly-plot", timeout=20)
    over = wait_for(lambda: (lambda n: None if n is None else [n])(
        dash_duo.driver.execute_script(BAR_OVER_MAP_JS, "#city-map")), timeout=20,
        message="the wall's street map and its colour bar")
    assert over == [0], "the wall's bar on a street"
    wait_for_graphs(dash_duo)
