"""The gateway carries the major incidents to every browser: in deltas (the whole list each time, an empty list
when the last is stood down) and in the snapshot a newly connecting browser gets."""

from __future__ import annotations

import orjson

from dashboard.core import messages
from dashboard.gateway.fanout import WALL, Fanout
from tests.test_gateway import Recorder

STATE = {"generated_at": 0, "windows": {}, "trend": {}, "feeds": {}, "events": []}
MAJOR = {"incident": {"id": 7, "title": "福田 大火", "district": "440304"}, "level": 1,
         "declared_at": "2026-12-06T20:00:00+08:00", "declared_by": "olga"}


def test_majors_reach_officers_walls_and_liaisons_and_the_snapshot():
    fanout = Fanout()
    fanout.set_state({**STATE, "majors": []})
    officer, wall, liaison = Recorder(), Recorder(WALL), Recorder("fire")
    fanout.clients.update([officer, wall, liaison])
    assert orjson.loads(fanout.snapshot_frame())["state"]["majors"] == []
    fanout.add_delta(messages.encode_delta(1, incidents=[MAJOR["incident"]], majors=[MAJOR]))
    assert fanout.has_news()
    fanout.tick(0.0)
    for client in (officer, wall, liaison):
        assert client.frames[-1]["majors"] == [MAJOR], client.department
    assert "incidents" not in wall.frames[-1]  # a wall still reads no dispatch: only the majors
    assert orjson.loads(fanout.snapshot_frame())["state"]["majors"] == [MAJOR]
    # the stand-down: an empty list is news, and the snapshot is peacetime again
    fanout.add_delta(messages.encode_delta(2, majors=[]))
    fanout.tick(1.0)
    assert all(c.frames[-1]["majors"] == [] for c in (officer, wall, liaison))
    assert orjson.loads(fanout.snapshot_frame())["state"]["majors"] == []


def test_a_delta_without_majors_leaves_them_and_a_build_brings_sqls_truth():
    fanout = Fanout()
    fanout.set_state({**STATE, "majors": [MAJOR]})
    officer = Recorder()
    fanout.clients.add(officer)
    fanout.add_delta(messages.encode_delta(1, incidents=[{"id": 3}]))
    fanout.tick(0.0)
    assert "majors" not in officer.frames[-1]
    assert orjson.loads(fanout.snapshot_frame())["state"]["majors"] == [MAJOR]
    fanout.set_state({**STATE, "majors": []})
    assert orjson.loads(fanout.snapshot_frame())["state"]["majors"] == []


def test_a_slow_client_gets_the_latest_list_once():
    from dashboard.gateway.fanout import Pending

    pending = Pending()
    assert not pending
    pending.merge({"majors": [MAJOR]})
    pending.merge({"majors": []})
    assert pending and pending.take() == {"majors": []}
    assert not pending and pending.take() == {}


def test_a_browser_connecting_after_a_declaration_gets_it_in_its_snapshot_then_the_stand_down(app):
    import asyncio

    from websockets.asyncio.client import connect

    from dashboard.dispatch import major
    from tests.test_gateway import ORIGIN, recv, recv_until, running, ws_url
    from tests.test_major import open_incident
    from tests.test_dispatch_api import Session, make_user

    inc = open_incident(app, title="福田 大火")
    make_user(app, "olga", "officer")
    officer = Session(app, "olga")
    assert officer.post(f"/api/incidents/{inc['id']}/major", {"level": 3}).status_code == 200
    with running(app) as gw:
        async def scenario():
            async with connect(ws_url(gw), origin=ORIGIN) as ws:
                snap = await recv(ws, timeout=15)
                assert snap["type"] == "snapshot"
                assert [(m["incident"]["title"], m["level"]) for m in snap["state"]["majors"]] == [("福田 大火", 3)]
                await asyncio.to_thread(lambda: officer.client.delete(
                    f"/api/incidents/{inc['id']}/major", headers={"X-CSRF-Token": officer.csrf}))
                frames = await recv_until(ws, lambda f: f.get("majors") == [], timeout=15)
                assert frames[-1]["type"] == "delta"
        asyncio.run(scenario())
    with app.server.extensions["panorama"].engine.connect() as conn:
        assert major.active(conn) == []
