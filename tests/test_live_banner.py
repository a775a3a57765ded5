"""The live pages' banner in a real headless Chromium on real Redis and PostgreSQL: it names a feed stale only when
a received live state says so, never from the first render's want of one (issue: a heavy /dispatch)."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from dashboard.storage.models import incidents
from tests.helpers import seed_simulated, sign_in, wait_for

# environment stale past 1 s: every state received says so; the other feeds fresh for the test's whole length
STALE_AFTER = {"security": 3600, "traffic": 3600, "environment": 1, "incident": 3600}
# Every text #alert-banner shows, from the document's first script on (before Dash draws anything).
RECORD = """
window.__banners = [];
new MutationObserver(() => {
    const b = document.getElementById('alert-banner');
    const text = b ? b.textContent : null;
    const last = window.__banners[window.__banners.length - 1];
    if (text !== null && (!last || last[1] !== text)) {
        window.__banners.push([Math.round(performance.now()), text]);  // ms since the document's start
    }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def seed_city(app, hours: float, rate: float = 2.0) -> int:
    """Store a simulated city's last ``hours`` (tests.helpers.seed_simulated); return how many incidents are open."""
    seed_simulated(app, hours, rate)
    with app.server.extensions["panorama"].engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(incidents)
                            .where(incidents.c.status.notin_(("resolved", "closed")))).scalar_one()


def test_a_heavy_dispatch_names_only_the_feeds_a_received_state_calls_stale(make_app, redis_client, dash_duo):
    # no gateway: the page polls /api/summary?live=1 every 2 s, as the desk did when the banner lied
    app = make_app(PANORAMA_POLL_MS=2000, PANORAMA_STALE_AFTER=dict(STALE_AFTER))
    hours = float(os.environ.get("BANNER_SEED_HOURS", "18.5"))
    open_now = seed_city(app, hours)
    print("open incidents:", open_now)
    assert open_now > int(os.environ.get("BANNER_MIN_OPEN", "500"))  # more open incidents than the queue draws
    dash_duo.start_server(app)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD})
    sign_in(dash_duo, app, "/dispatch", "officer")
    dash_duo.driver.get(dash_duo.server_url + "/dispatch")
    dash_duo.wait_for_element("#incident-list .queue-item", timeout=60)
    # a polled state has reached the banner: it names the one feed that state calls stale
    wait_for(lambda: dash_duo.find_element("#alert-banner").text == "数据源停更（stale）：生态环境", timeout=60,
             message="the banner naming environment alone")
    banners = dash_duo.driver.execute_script("return window.__banners")
    print("banners (ms since the document's start, text):", banners)
    # ... and it never named the fresh ones: not while the page had no state yet either
    assert not [b for _, b in banners if any(name in b for name in ("公共安全", "交通", "突发事件"))], banners
    assert dash_duo.find_element("#live-indicator").get_attribute("class") == "conn conn-polling"
