"""Merge and split over HTTP: statuses, the detail's reports and trail, and the live deltas both changes publish."""

from __future__ import annotations

import orjson

from dashboard.core.channels import UPDATES_CHANNEL
from tests.helpers import wait_for
from tests.test_dispatch_api import Session, dapp, open_incident  # noqa: F401 (dapp: the fixture)


def deltas(listener, want: int) -> list[dict]:
    """Return the next ``want`` deltas that carry incidents, waiting for them."""
    got: list[dict] = []

    def more():
        msg = listener.get_message(timeout=0.2)
        if msg is not None:
            body = orjson.loads(msg["data"])
            if body.get("incidents"):
                got.append(body)
        return len(got) >= want

    wait_for(more, timeout=10, message=f"{want} incident deltas")
    return got


def test_a_merge_over_http_answers_both_incidents_publishes_them_and_refuses_what_it_must(dapp, redis_client):  # noqa: F811
    officer, commander, liaison = Session(dapp, "olga"), Session(dapp, "cmdr"), Session(dapp, "fay")
    a, b = open_incident(dapp, 1), open_incident(dapp, 3)
    r = officer.post(f"/api/incidents/{a['id']}/dispatch", {"departments": ["fire", "police"]})
    assert r.status_code == 200
    officer.post(f"/api/incidents/{b['id']}/dispatch", {"departments": ["fire"]})
    version = officer.get(f"/api/incidents/{a['id']}").json["incident"]["version"]
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    url = f"/api/incidents/{a['id']}/merge"
    assert officer.post(url, {"into": a["id"], "version": version}).status_code == 422
    assert officer.post(url, {"into": 999_999, "version": version}).status_code == 404
    assert officer.post("/api/incidents/999999/merge", {"into": b["id"], "version": 1}).status_code == 404
    assert officer.post(url, {"into": b["id"], "version": version - 1}).json["error"]["code"] == "version_conflict"
    assert officer.post(url, {"into": str(b["id"]), "version": version}).status_code == 400
    assert officer.post(url, {"into": b["id"]}).status_code == 400
    assert liaison.post(url, {"into": b["id"], "version": version}).status_code == 403
    assert officer.client.post(url, json={"into": b["id"], "version": version}).status_code in (400, 403)

    r = commander.post(url, {"into": b["id"], "version": version, "note": "同一起"})
    assert r.status_code == 200, r.json
    away, into = r.json["incidents"]
    assert (away["id"], away["status"], into["id"], into["reports"]) == (a["id"], "closed", b["id"], 2)
    assert {(t["department"], t["state"], t["incident_id"]) for t in r.json["tasks"]} == {
        ("fire", "closed", a["id"]), ("police", "dispatched", b["id"])}
    assert r.status_code == 200 and officer.post(url, {"into": b["id"], "version": version}).status_code == 409
    (delta,) = deltas(listener, 1)
    assert {i["id"]: i["status"] for i in delta["incidents"]} == {a["id"]: "closed", b["id"]: "dispatched"}
    assert {t["department"] for t in delta["tasks"]} == {"fire", "police"}
    doc = officer.get(f"/api/incidents/{a['id']}").json
    assert doc["incident"]["merged_into"] == b["id"] and doc["reports"] == []
    doc = officer.get(f"/api/incidents/{b['id']}").json
    assert {r_["title"] for r_ in doc["reports"]} == {"火情 1", "火情 3"}
    assert {"merged_from", "task_merged_in"} <= {h["code"] for h in doc["history"]}
    assert [i["id"] for i in officer.get("/api/incidents").json["incidents"]] == [b["id"]]


def test_a_split_over_http_opens_the_new_incident_and_publishes_both(dapp, redis_client):  # noqa: F811
    from tests.test_api import ingest_now
    from tests.helpers import make_event
    from feeds.pipeline import now_ms

    officer = Session(dapp, "olga")
    inc = open_incident(dapp, 1)
    ingest_now(dapp, {"incident": [make_event(2, kind="fire", severity=4, ts=now_ms(), lat=22.54, lon=114.06,
                                              title="另一处火情")]})
    doc = officer.get(f"/api/incidents/{inc['id']}").json
    assert len(doc["reports"]) == 2
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    url, version = f"/api/incidents/{inc['id']}/split", doc["incident"]["version"]
    assert officer.post(url, {"reports": [], "version": version}).status_code == 422
    assert officer.post(url, {"reports": ["ev-1", "ev-2"], "version": version}).status_code == 422
    assert officer.post(url, {"reports": ["ev-9"], "version": version}).status_code == 422
    assert Session(dapp, "vic").post(url, {"reports": ["ev-2"], "version": version}).status_code == 403
    r = officer.post(url, {"reports": ["ev-2"], "version": version, "note": "两处"})
    assert r.status_code == 200, r.json
    orig, new = r.json["incidents"]
    assert (orig["reports"], orig["severity"], new["reports"], new["severity"], new["title"], new["status"]) == (
        1, 3, 1, 4, "另一处火情", "open")
    (delta,) = deltas(listener, 1)
    assert [i["id"] for i in delta["incidents"]] == [orig["id"], new["id"]]
    assert officer.post(url, {"reports": ["ev-1"], "version": version}).status_code == 409
