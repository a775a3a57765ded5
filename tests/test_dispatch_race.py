"""The /dispatch page keeps its detail, its queue and board, and its address on the same incident while live
frames pour in (or the fallback poll ticks), in a real headless Chromium on real Redis and PostgreSQL with 500 queued incidents and the
gateway live (issue 15).

Dash keeps only the newest call of a callback: when a callback fires again before its answer is back, the older
answer is dropped. A live frame fires the detail's callback (and the queue's); on a loaded machine, where that
callback takes longer than the frames are apart (300 ms), every answer was dropped for the next frame's, and the
detail stayed on "select an incident" while the queue, the board and the address had moved to the incident
picked. The server here holds each call of the detail until the page has either called again (the old answer
is then dropped: the hazard) or shown that it holds the frames back while the detail is being drawn (the fix):
ordering, not timing, decides the outcome.
"""

from __future__ import annotations

import threading

import orjson
import pytest
from sqlalchemy import select

from dashboard.dispatch import desk
from dashboard.storage import users
from dashboard.storage.models import incidents
from feeds.pipeline import Batch, make_pipeline, now_ms
from tests.helpers import make_event, wait_for
from tests.test_dispatch_page import PASSWORD, js, sign_in

QUEUED = desk.QUEUE_ROWS  # a full queue: 500 buttons drawn anew by every redraw
FRAMES = 6  # live frames pushed while the detail of the incident picked is being drawn


class HeldDetail:
    """Stand in for ``desk.detail``: note the incident of every call, and hold each call for the incident picked
    (``target``) until a newer one comes or it is released. A call for another incident (the one shown before,
    asked for by a frame or a poll tick that came before the click's answer) is not the selection's: it passes."""

    def __init__(self, real):
        self.real, self.cond = real, threading.Condition()
        self.calls = self.released = 0  # calls for the target
        self.holding, self.target, self.asked = True, None, []  # asked: the incident of each call, in order

    def __call__(self, conn, svc, incident_id, *args, **kwargs):
        with self.cond:
            self.asked.append(incident_id)
            if incident_id == self.target:
                self.calls += 1
                me = self.calls
                self.cond.notify_all()
                self.cond.wait_for(lambda: not self.holding or self.calls > me or self.released >= me, timeout=120)
        return self.real(conn, svc, incident_id, *args, **kwargs)

    def release(self) -> None:
        with self.cond:
            self.released = self.calls
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.holding = False
            self.cond.notify_all()


def ingest(svc, events: list[dict]) -> None:
    """Store ``events`` through the app's own pipeline: stored in PostgreSQL, told through Redis to the gateway."""
    pipeline, batch = make_pipeline(svc), Batch()
    for start in range(0, len(events), 250):
        pipeline.add(batch, "feeds:security", "security", orjson.dumps(events[start:start + 250]), now_ms())
    assert not batch.rejects, batch.rejects
    pipeline.flush(batch, svc.redis)


def queued(n: int, first: int = 0) -> list[dict]:
    """Return ``n`` events, each opening an incident of its own (a kind of its own, a place of its own)."""
    now = now_ms()
    return [make_event(i, kind=f"junk_{i}", severity=3, ts=now, title=f"事件 {i}", lat=22.5,
                       lon=113.9 + i * 0.0001) for i in range(first, first + n)]


@pytest.fixture(params=["live", "polling"])
def desk_page(request, make_app, redis_client, dash_duo, monkeypatch):
    """Serve /dispatch over 500 queued incidents, signed in as an officer, with the gateway live (no fallback
    poll) or without one (the page polls every 500 ms); yield the mode, the app's services and the held
    ``desk.detail``."""
    from dashboard.gateway.server import Gateway
    from tests.redis_proc import free_port

    port, live = free_port(), request.param == "live"
    app = make_app(PANORAMA_WS_PORT=port, PANORAMA_WS_URL=f"ws://127.0.0.1:{port}/", PANORAMA_POLL_MS=600_000) \
        if live else make_app(PANORAMA_POLL_MS=500)
    svc = app.server.extensions["panorama"]
    users.create_user(svc.engine, "olga", PASSWORD, "officer", None, [])
    ingest(svc, queued(QUEUED))
    with svc.engine.connect() as conn:
        assert desk.queue_total(conn, desk.queue(conn)) == QUEUED
    held = HeldDetail(desk.detail)
    held.stop()  # not yet: the page loads as it always does
    monkeypatch.setattr(desk, "detail", held)
    dash_duo.start_server(app)
    gw = Gateway(svc, port=port, origins=[dash_duo.server_url.rstrip("/")]) if live else None
    if gw:
        gw.start()
    try:
        dash_duo.get_logs()
        sign_in(dash_duo, app, "olga")
        if gw:
            dash_duo.wait_for_element("#live-indicator.conn-live", timeout=30)
        wait_for(lambda: js(dash_duo, "return document.querySelectorAll('#incident-list .queue-item').length")
                 == QUEUED, timeout=60, message="the queue of 500 drawn")
        yield request.param, svc, held
    finally:
        held.stop()
        if gw:
            gw.stop()


def page_state(dash_duo) -> dict:
    return js(dash_duo, """
        const t = document.getElementById('dispatch-detail-title');
        const s = document.querySelector('#incident-list .queue-item.selected');
        const ns = (window.dash_clientside || {}).panorama || {};
        return {detail: t && t.textContent, queue: s && Number(s.closest('li').dataset.id),
                address: location.search, held: ns.dispatchHeld ? ns.dispatchHeld() : 0};""")


@pytest.mark.timeout(600)
def test_live_frames_or_poll_ticks_while_an_incident_is_picked_never_leave_its_detail_behind(desk_page, dash_duo):
    mode, svc, held = desk_page
    with svc.engine.connect() as conn:
        picks = [dict(r) for r in conn.execute(select(incidents.c.id, incidents.c.title)
                                               .order_by(incidents.c.id.desc()).limit(2)).mappings()]
    n = QUEUED
    for pick in picks:
        with held.cond:
            held.holding, held.target, calls, seen = True, pick["id"], held.calls, []
        js(dash_duo, "document.querySelector(`#incident-list > li[data-id='${arguments[0]}'] .queue-item`).click()",
           pick["id"])
        wait_for(lambda: held.calls > calls, timeout=30,
                 message=f"the detail of the incident picked asked for (calls for: {held.asked[-10:]})")
        before = page_state(dash_duo)["held"]
        # frames about other incidents arrive (new ones, opened by ingest; polling: the poll ticks) while the
        # detail is being drawn: each must wait for it, not call it anew and drop its answer
        for _ in range(FRAMES):
            asked = held.calls
            if mode == "live":
                ingest(svc, queued(1, first=n))
                n += 1
            seen.append(wait_for(lambda: "called again" if held.calls > asked else
                                 "held back" if page_state(dash_duo)["held"] > before else None,
                                 timeout=30, message="the frame taken by the page"))
            if seen[-1] == "held back":
                held.release()
                break
        wait_for(lambda: page_state(dash_duo)["address"] == f"?incident={pick['id']}", timeout=30,
                 message=f"the address names the incident picked (frames: {seen})")
        wait_for(lambda: page_state(dash_duo)["queue"] == pick["id"], timeout=30,
                 message=f"the queue marks it (frames: {seen})")
        # the detail shows it too: with the hazard it never does while frames keep coming (each answer dropped)
        try:
            wait_for(lambda: page_state(dash_duo)["detail"] == pick["title"], timeout=20,
                     message=f"the detail of {pick['title']} (frames: {seen}, calls for: {held.asked[-10:]})")
        finally:
            held.stop()
        assert seen[-1] == "held back" and "called again" not in seen, seen
        state = page_state(dash_duo)
        assert (state["detail"], state["queue"], state["address"]) == \
            (pick["title"], pick["id"], f"?incident={pick['id']}")
    assert [e for e in dash_duo.get_logs() if "dispatch" in str(e)] == []
