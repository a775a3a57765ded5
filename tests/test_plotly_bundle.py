"""The pages' partial Plotly bundle: built from the plotly.js Dash would serve, the only Plotly any page loads,
and the maps drawn with nothing fetched from another origin (real Chromium)."""

from __future__ import annotations

import json
import re

import requests
from plotly.offline import get_plotlyjs_version

from dashboard.core.config import ROOT
from dashboard.web import plotly_bundle
from dashboard.web.caching import IMMUTABLE
from tests.helpers import sign_in, wait_for
from tests.serve import serving

# Every URL the page asked for by XHR or fetch (Plotly's topojson and GeoJSON come by XHR, through d3.json),
# recorded from before the page's first script: injected through DevTools.
RECORD_REQUESTS = """
window.__asked = [];
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url) { window.__asked.push(String(url)); return open.apply(this, arguments); };
const fetched = window.fetch;
window.fetch = function (input) { window.__asked.push(String(input && input.url || input)); return fetched.apply(this, arguments); };
"""
# Every resource the page fetched (scripts, styles, fonts, XHR), by URL.
RESOURCES = "return performance.getEntriesByType('resource').map((e) => e.name);"
PATHS = "return document.querySelectorAll(arguments[0] + ' .js-plotly-plot .choroplethlayer path').length;"


def test_the_bundle_is_the_plotly_js_that_dash_would_serve():
    name = plotly_bundle.bundle_name(str(ROOT / "assets"))
    assert re.fullmatch(r"vendor/plotly-panorama\.[0-9a-f]{16}\.js", name), name
    head = (ROOT / "assets" / name).read_bytes()[:200].decode()
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["plotly.js"]
    assert pinned == get_plotlyjs_version(), "package.json's plotly.js is not the Python plotly package's"
    assert head.startswith(f"/*! plotly.js {pinned} "), head


def test_the_pages_that_draw_graphs_as_they_open():
    assert all(plotly_bundle.draws_graphs(p) for p in ("/", "/wall", "/wall/", "/dispatch", "/district/440304"))
    assert not any(plotly_bundle.draws_graphs(p) for p in ("/m", "/briefings", "/briefings/3", "/login", "/x"))


def test_a_second_bundle_is_refused(tmp_path):
    (tmp_path / "vendor").mkdir()
    assert plotly_bundle.bundle_name(str(tmp_path)) is None  # none built: the pages keep Dash's plotly.min.js
    for h in ("0123456789abcdef", "fedcba9876543210"):
        (tmp_path / "vendor" / f"plotly-panorama.{h}.js").write_text("")
    try:
        plotly_bundle.bundle_name(str(tmp_path))
    except RuntimeError as err:
        assert "npm run build:plotly" in str(err)
    else:
        raise AssertionError("two bundles accepted")


def test_the_bundle_travels_compressed_and_is_cached_for_a_year(make_app, redis_client):
    app = make_app(BROWSER_PATH="none")
    url = app.get_asset_url(plotly_bundle.bundle_name(app.config.assets_folder))
    with serving(app) as base:
        res = requests.get(base + url, headers={"Accept-Encoding": "br"}, stream=True, timeout=60)
        sent = res.raw.read(decode_content=False)
        assert res.status_code == 200 and res.headers["Cache-Control"] == IMMUTABLE
        assert res.headers["Content-Encoding"] == "br" and len(sent) < 600_000  # of 1.4 MB
        # the sign-in page names it for later graphs but loads no Plotly
        html = requests.get(base + "/login", timeout=30).text
        assert f'<meta name="panorama-plotly" content="{url}">' in html and f'src="{url}"' not in html


def _open(dash_duo, base: str, path: str, ready: str) -> list[str]:
    dash_duo.driver.get(base + path)
    wait_for(lambda: dash_duo.driver.execute_script(PATHS, ready) > 0, timeout=20, message=f"{path}'s map drawn")
    return dash_duo.driver.execute_script(RESOURCES)


def test_map_pages_load_only_the_bundle_and_ask_no_other_origin(make_app, redis_client, dash_duo):
    app = make_app()
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/login", role="admin")
    base = dash_duo.server_url.rstrip("/")
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_REQUESTS})
    for path, ready in (("/", "#city-map"), ("/wall", "#city-map"), ("/dispatch", "#dispatch-map")):
        names = _open(dash_duo, base, path, ready)
        plotly = [n for n in names if "plotly" in n]
        assert len(plotly) == 1 and "/assets/vendor/plotly-panorama." in plotly[0], (path, plotly)
        assert not [n for n in names if not n.startswith(base + "/") and not n.startswith("data:")], (path, names)
        asked = dash_duo.driver.execute_script("return window.__asked")
        assert asked and all(u.startswith("/") or u.startswith(base + "/") for u in asked), (path, asked)
        assert dash_duo.driver.execute_script("return !!window.Plotly && !document.querySelector('.maplibregl-map')")
        assert dash_duo.get_logs() == [], path


def test_a_graph_opened_in_the_app_from_a_page_without_one_loads_the_bundle(make_app, redis_client, dash_duo):
    app = make_app()
    dash_duo.driver.set_window_size(1280, 720)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/briefings", role="officer")
    dash_duo.wait_for_element("#briefing-list", timeout=10)
    assert dash_duo.driver.execute_script("return typeof window.Plotly") == "undefined"
    dash_duo.driver.execute_script("window.__same_page = true;"
                                   "document.querySelector('#shell-nav a[href=\"/\"]').click()")
    wait_for(lambda: dash_duo.driver.execute_script(PATHS, "#city-map") > 0, timeout=20, message="the map drawn")
    assert dash_duo.driver.execute_script("return window.__same_page === true")  # in the app, no reload
    plotly = [n for n in dash_duo.driver.execute_script(RESOURCES) if "plotly" in n]
    assert len(plotly) == 1 and "/assets/vendor/plotly-panorama." in plotly[0], plotly
    assert dash_duo.get_logs() == []
