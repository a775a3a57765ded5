"""Take the screenshots in this folder from a simulated Shenzhen hour, in headless Chromium.

Run from the repository root with the test services up (``make services``):
``.venv/bin/python -m pytest docs/screenshots/shoot.py -p tests.conftest -p no:cacheprovider``
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from dashboard.city import load_city
from feeds.pipeline import Batch
from feeds.simulate import Simulator
from tests.helpers import sign_in, wait_for
from tests.test_pages import viewport

HERE = Path(__file__).parent
CHUNK = 200  # events per message, under the schema's limits


def seed(app, hours: float = 2.0, rate: float = 2.0) -> int:
    """Store a simulated city's last ``hours`` through the real pipeline; return how many events."""
    svc = app.server.extensions["panorama"]
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    pairs = Simulator(load_city("shenzhen"), rate=rate, seed=7).events_between(now - timedelta(hours=hours), now)
    pipeline = svc.pipeline()
    for i in range(0, len(pairs), 5000):
        batch = Batch()
        by_domain: dict[str, list] = {}
        for domain, event in pairs[i:i + 5000]:
            by_domain.setdefault(domain, []).append(event)
        for domain, evs in by_domain.items():
            for j in range(0, len(evs), CHUNK):
                pipeline.add(batch, f"feeds:{domain}", domain, orjson.dumps(evs[j:j + CHUNK]), 0)
        assert not batch.rejects, batch.rejects[:3]
        pipeline.flush(batch, svc.redis)
    return len(pairs)


def settle(dash_duo) -> None:
    """Wait until the map has drawn and refitted to its box."""
    wait_for(lambda: dash_duo.driver.execute_script(
        "const gd = document.querySelector('#city-map .js-plotly-plot');"
        "return gd && gd.layout.meta && gd.layout.meta.size && gd._fullLayout.map._subplot.map.loaded()"),
        timeout=20, message="the map fitted and loaded")


def test_screenshots(make_app, redis_client, dash_duo):
    app = make_app(PANORAMA_POLL_MS=2000)
    assert seed(app, hours=2.0, rate=20.0) > 10_000  # the default simulator rate; two hours fill both windows
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", "officer")

    viewport(dash_duo, 1600, 1270)
    dash_duo.driver.get(dash_duo.server_url + "/")
    dash_duo.wait_for_element("#event-ticker li", timeout=20)
    settle(dash_duo)
    dash_duo.driver.save_screenshot(str(HERE / "panorama.png"))

    viewport(dash_duo, 1920, 1080)
    dash_duo.driver.get(dash_duo.server_url + "/wall")
    dash_duo.wait_for_element(".spotlight-panel .spot-name", timeout=20)
    settle(dash_duo)
    dash_duo.driver.save_screenshot(str(HERE / "wall.png"))

    viewport(dash_duo, 1600, 1500)
    dash_duo.driver.get(dash_duo.server_url + "/district/futian")
    dash_duo.wait_for_element("#district-events td", timeout=20)
    dash_duo.driver.save_screenshot(str(HERE / "district.png"))
    assert dash_duo.get_logs() == []
