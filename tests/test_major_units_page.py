"""The units sent to a major incident on its command view, in a real Chromium: a unit assigned to one of the
incident's tasks shows in its department's task list (name, status, straight-line distance) and on the command
view's map, and moves and changes status there as it reports on feeds:units, through the ingest consumer and the
gateway; a unit of no task of the incident shows on neither."""

from __future__ import annotations

import time

import orjson
import pytest

from dashboard.core.channels import units_feed
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from feeds.pipeline import now_ms
from tests.helpers import wait_for
from tests.test_dispatch_api import Session, make_user
from tests.test_major import open_incident
from tests.test_major_page import own_channel
from tests.test_units_page import open_kiosk_wall, unit_feed_app

UNIT = "fe-futian-01"
OTHER = "fe-futian-02"  # in the fleet, on no task: not in the command view


def line(dash_duo, unit: str) -> dict | None:
    """Return the unit's line in the command view's task list as shown, or None."""
    return dash_duo.driver.execute_script(
        "const li = document.querySelector('#major-tasks li.major-unit[data-unit=\"' + arguments[0] + '\"]');"
        "if (!li) { return null; }"
        "return {name: li.querySelector('.unit-name').textContent, status: li.querySelector('.unit-status').textContent,"
        " km: li.querySelector('.unit-km').textContent, cls: li.className,"
        " dep: li.closest('.major-dep-row').querySelector('.major-dep').textContent};", unit)


def mark(dash_duo, unit: str) -> dict | None:
    """Return the unit's marker over the command view's map (where on the map's plot, its status), or None."""
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#major-unit-layer [data-unit=\"' + arguments[0] + '\"]');"
        "if (!g || g.getAttribute('display') === 'none') { return null; }"
        "const c = g.querySelector('circle').getBoundingClientRect();"
        "const p = document.querySelector('#major-map .main-svg').getBoundingClientRect();"
        "const f = document.querySelector('#major-map g.geo g.bg rect').getBoundingClientRect();"
        "return {status: g.dataset.status, pos: g.dataset.pos, edge: g.classList.contains('is-edge'),"
        " top: f.top - p.top, left: f.left - p.left, right: f.right - p.left,"
        " x: c.left + c.width / 2 - p.left, y: c.top + c.height / 2 - p.top, w: p.width, h: p.height,"
        " fill: getComputedStyle(g.querySelector('circle')).fill};", unit)


def place_px(dash_duo, lat: float, lon: float) -> list[float]:
    """Return where Plotly's own projection of the command view's map puts a place (px from the plot's top left)."""
    return dash_duo.driver.execute_script(
        "const gd = document.querySelector('#major-map .js-plotly-plot');"
        "return gd._fullLayout.geo._subplot.projection([arguments[1], arguments[0]]);", lat, lon)


def publish(redis_client, prefix: str, **report) -> None:
    redis_client.publish(units_feed(prefix), orjson.dumps({"ts": int(time.time() * 1000), **report}))


@pytest.mark.timeout(300)
def test_in_chromium_the_command_view_shows_the_units_sent_and_moves_them_as_they_report(make_app, redis_client,
                                                                                         dash_duo, monkeypatch):
    with unit_feed_app(make_app, dash_duo, own_channel(monkeypatch)) as (app, prefix):
        svc = app.server.extensions["panorama"]
        inc = open_incident(app, title="福田 大火")  # at 22.54, 114.05
        [task] = desk.write(svc, d.dispatch, inc["id"], ["fire"], "olga", None, now_ms(), svc.city.rules,
                            svc.city).tasks
        make_user(app, "olga", "officer")
        officer = Session(app, "olga")
        open_kiosk_wall(dash_duo, app, timeout=30)  # a kiosk wall: nobody signed in
        r = officer.post(f"/api/incidents/{inc['id']}/major", {"level": 2, "note": None})
        assert r.status_code == 200, r.get_data(as_text=True)
        dash_duo.wait_for_element("#major-view #major-map .main-svg", timeout=20)
        assert line(dash_duo, UNIT) is None  # nobody sent yet
        assert dash_duo.driver.execute_script(
            "return document.querySelectorAll('#major-unit-layer [data-unit]').length") == 0

        r = officer.post(f"/api/tasks/{task['id']}/units", {"units": [UNIT]})
        assert r.status_code == 200, r.get_data(as_text=True)
        # the task list names it under its department (the redraw the task's news brings), en route, how far
        got = wait_for(lambda: line(dash_duo, UNIT), timeout=20, message="the unit in the task list")
        assert got["name"] == "福田区消防车1号" and got["dep"] == "深圳市消防救援支队"
        assert got["status"] == "在途" and "u-en_route" in got["cls"]
        assert got["km"].startswith("距现场直线 ") and got["km"].endswith(" 公里")
        assert line(dash_duo, OTHER) is None

        # it reports from inside the ring, 0.01 degrees north of the scene: drawn there, the distance said anew
        publish(redis_client, prefix, unit=UNIT, lat=22.55, lon=114.05, status="en_route")
        got = wait_for(lambda: (m := mark(dash_duo, UNIT)) and m["pos"] == "22.55000,114.05000" and m,
                       timeout=20, message="the unit on the command view's map")
        x, y = place_px(dash_duo, 22.55, 114.05)
        assert abs(got["x"] - x) < 2 and abs(got["y"] - y) < 2 and not got["edge"]
        assert got["status"] == "en_route" and got["fill"] == "rgb(245, 166, 35)"  # en route: amber
        wait_for(lambda: line(dash_duo, UNIT)["km"] == "距现场直线 1.1 公里", timeout=10,
                 message="the distance from its report")

        # it arrives: moved on the map, on scene in the list, from its report (the view's redraws every 5 s read SQL,
        # which the report changed too: either way the page shows what the unit last said)
        publish(redis_client, prefix, unit=UNIT, lat=22.541, lon=114.05, status="on_scene")
        got = wait_for(lambda: (m := mark(dash_duo, UNIT)) and m["status"] == "on_scene" and m, timeout=20,
                       message="the unit on scene on the map")
        assert got["pos"] == "22.54100,114.05000" and got["fill"] == "rgb(255, 77, 94)"
        x, y = place_px(dash_duo, 22.541, 114.05)
        assert abs(got["x"] - x) < 2 and abs(got["y"] - y) < 2
        got = wait_for(lambda: (g := line(dash_duo, UNIT)) and g["status"] == "到场" and g, timeout=10,
                       message="on scene in the list")
        assert got["km"] == "距现场直线 0.1 公里" and "u-on_scene" in got["cls"]

        # a unit far outside the map waits at its edge, on the side it comes from (north)
        publish(redis_client, prefix, unit=UNIT, lat=22.70, lon=114.05, status="en_route")
        got = wait_for(lambda: (m := mark(dash_duo, UNIT)) and m["edge"] and m, timeout=20,
                       message="the unit at the map's edge")
        # (the drawn map's frame: the geo subplot keeps its aspect inside the graph's box)
        assert got["top"] < got["y"] < got["top"] + 12 and got["left"] < got["x"] < got["right"]
        assert abs(got["x"] - place_px(dash_duo, 22.70, 114.05)[0]) < 2
        # a unit of no task of this incident never shows on its map
        publish(redis_client, prefix, unit=OTHER, lat=22.542, lon=114.051, status="available")
        wait_for(lambda: dash_duo.driver.execute_script(
            "const u = dash_clientside.panoramaUnits.units.get(arguments[0]); return !!u && u.lat === 22.542;", OTHER),
            timeout=20, message="the other unit's report in the page")
        dash_duo.driver.execute_script("dash_clientside.panoramaUnits.draw()")
        assert mark(dash_duo, OTHER) is None and line(dash_duo, OTHER) is None
        assert mark(dash_duo, UNIT)["edge"]
        # the command view on the wall passes axe (WCAG 2.2 AA): its units, its level II badge, the procedure's
        # departments (the last two failed contrast on the wall's dark panel, 3.55:1)
        from tests.test_accessibility import axe_violations

        found = axe_violations(dash_duo)
        assert found == [], found
    severe = [e["message"] for e in dash_duo.get_logs() or [] if e["level"] == "SEVERE"]
    assert severe == []
