"""Helpers for tests: waiting on conditions, building events."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value {value!r}")
        time.sleep(interval)


def phone_screen(driver) -> None:
    """Make the browser a commander's phone: 390x844 CSS px at 3x, touch and mobile layout."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})


def make_event(n: int, *, domain: str | None = None, district: str = "futian", kind: str = "congestion",
               severity: int = 1, ts: str | int = "2026-11-26T08:30:00+08:00", **extra) -> dict:
    """Return a valid event dict with id ``ev-<n>``."""
    ev = {"id": f"ev-{n}", "ts": ts, "kind": kind, "district": district, "severity": severity,
          "title": f"测试事件 {n}"}
    if domain:
        ev["domain"] = domain
    ev.update(extra)
    return ev


def city_clock(hhmm: str, tz: str = "Asia/Shanghai"):
    """Return a running clock that reads ``hhmm`` in the city now, for an app's ``PANORAMA_CLOCK``.

    The routing rules differ by the time of day (night rules add the district office): a test that
    checks which departments are suggested pins the hour rather than depend on when the suite runs.
    """
    from dashboard.core.clock import Clock

    return Clock.at_local(hhmm, tz)


TEST_PASSWORD = "test-password-1"


def make_user(app, username: str = "officer", role: str = "officer", department: str | None = None,
              password: str = TEST_PASSWORD, district: str | None = None):
    """Create a user in the app's database (``app`` a Dash app or its Flask server; ``district``: of that
    district's centre); return it."""
    from dashboard.storage import users as accounts

    server = getattr(app, "server", app)
    svc = server.extensions["panorama"]
    departments = [d["code"] for d in svc.city.departments]
    return accounts.create_user(svc.engine, username, password, role, department, departments, district=district,
                                districts=[d.code for d in svc.city.districts])


def sign_in(dash_duo, app, path: str = "/", role: str = "officer", username: str | None = None,
            district: str | None = None) -> None:
    """Sign the dash_duo browser in as a new user of ``role`` (``district``: of that district's centre), after
    ``start_server``, then open ``path``."""
    username = username or f"browser-{role}"
    make_user(app, username, role, "fire" if role == "liaison" else None, district=district)
    status = dash_duo.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/session', {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({username: arguments[0], password: arguments[1]})})"
        ".then(r => done(r.status), e => done(String(e)));", username, TEST_PASSWORD)
    assert status == 200, f"sign-in answered {status}"
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + path)
    dash_duo.wait_for_element("#react-entry-point")


def open_signed_in(dash_duo, app, name: str, path: str, password: str = TEST_PASSWORD) -> None:
    """Sign the browser in as ``name`` by its session cookie, then open ``path``: the page it was on left first and
    its cookies cleared, and ``/api/me`` asked until it answers ``name`` (a late answer to a request of the old
    page, under load, can set the old session's cookie again after ours: ours is then set again)."""
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": name, "password": password}).status_code == 200
    cookie = {"name": "panorama_session", "value": client.get_cookie("panorama_session").value, "path": "/"}
    driver = dash_duo.driver
    driver.get(dash_duo.server_url.rstrip("/") + "/_dash-layout")  # a page of this origin to set the cookie on
    kept = [c for c in driver.get_cookies() if c["name"] == "panorama_lang"]  # the reader's language stays
    seen: list[dict] = []

    def signed_in() -> bool:
        driver.delete_all_cookies()
        for c in kept + [cookie]:
            driver.add_cookie({k: c[k] for k in ("name", "value", "path")})
        me = driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                         "fetch('/api/me').then(r => r.json()).then(done, () => done({}))")
        seen.append(me)
        return me.get("username") == name

    try:
        wait_for(signed_in, timeout=20, message=f"the browser signed in as {name}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; /api/me answered {seen[-3:]}") from None
    driver.get(dash_duo.server_url.rstrip("/") + path)


def write_from_two_workers(make_store, evs: list, chunk: int = 500) -> list:
    """Write ``evs`` from two threads at once, one in order and one reversed (two ingest workers racing on the
    same ids); return every WriteResult, after checking neither thread failed."""
    import threading

    results, errors = [], []

    def writer(order):
        store = make_store()
        try:
            for start in range(0, len(order), chunk):
                results.append(store.write(order[start:start + chunk], 1))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(evs,)), threading.Thread(target=writer, args=(evs[::-1],))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == [] and not any(th.is_alive() for th in threads), errors
    return results


def wait_for_graphs(dash_duo, timeout: float = 20.0, what: str = "the page's graphs drawn") -> None:
    """Wait until every graph on the page has drawn (dcc's async graph logs an error when it is unmounted -- a
    language switch, a page change -- while Plotly is still loading, so a test leaves a page only after this)."""
    wait_for(lambda: dash_duo.driver.execute_script(
        "const g = [...document.querySelectorAll('.dash-graph')];"
        "return g.length > 0 && g.every(e => e.querySelector('.main-svg'))"), timeout=timeout, message=what)


def open_incident_detail(dash_duo, incident_id: int, title: str, timeout: float = 40.0) -> None:
    """Open an incident's detail on /dispatch by clicking it in the queue, as an officer would.

    A click before Dash has wired the list, or on a list being replaced, is lost: click (at least once, even when
    a detail of the same title shows, e.g. before a language switch redrew it) every 2 s until the detail shows;
    selecting the same incident again changes nothing."""
    item = f"#incident-list > li[data-id='{incident_id}'] .queue-item"
    clicks = []
    wait_for(lambda: dash_duo.driver.execute_script("""
        const t = document.querySelector('#dispatch-detail-title');
        if (arguments[2] && t && t.textContent === arguments[1]) { return true; }
        const e = document.querySelector(arguments[0]);
        if (e) { e.click(); }
        return false;""", item, title, clicks.append(1) or len(clicks) > 1), timeout=timeout, interval=2,
             message=f"the detail of {title}")


@contextmanager
def scratch_database(server_url: str, prefix: str):
    """Yield the URL of a new, empty PostgreSQL database on ``server_url``'s server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_simulated(app, hours: float = 2.0, rate: float = 2.0) -> int:
    """Store a simulated Shenzhen's last ``hours`` at ``rate`` events/s through the app's real pipeline; return how
    many events (the screenshots' seed, and the tests that need a city that has run for a while)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    import orjson

    from dashboard.core.city import load_city
    from feeds.pipeline import Batch, make_pipeline
    from feeds.simulate import Simulator

    chunk = 200  # events per message, under the schema's limits
    svc = app.server.extensions["panorama"]
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    pairs = Simulator(load_city("shenzhen"), rate=rate, seed=7).events_between(now - timedelta(hours=hours), now)
    pipeline = make_pipeline(svc)
    for i in range(0, len(pairs), 5000):
        batch = Batch()
        by_domain: dict[str, list] = {}
        for domain, event in pairs[i:i + 5000]:
            by_domain.setdefault(domain, []).append(event)
        for domain, evs in by_domain.items():
            for j in range(0, len(evs), chunk):
                pipeline.add(batch, f"feeds:{domain}", domain, orjson.dumps(evs[j:j + chunk]), 0)
        assert not batch.rejects, batch.rejects[:3]
        pipeline.flush(batch, svc.redis)
    return len(pairs)
