"""The early-warning API of SPEC section 9: alerts newest first with filters, acknowledgement by version (409
stale, 422 not firing), silences made, listed and ended, every bad input a clear 4xx; changes pushed live."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import insert

from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.clock import iso
from dashboard.storage.models import alerts
from feeds.pipeline import now_ms
from tests.helpers import TEST_PASSWORD, make_user, wait_for

TZ = "Asia/Shanghai"


def add_alert(app, status: str = "firing", level: str = "orange", started_ms: int | None = None, **extra) -> int:
    now = now_ms()
    row = {"rule": "aqi_moderate", "scope": f"district:{extra.get('district', '440304')}", "level": level,
           "status": status, "district": "440304", "started_ms": started_ms or now, "value": 180.0,
           "title": "福田区空气质量指数 180", "title_en": "Futian: AQI 180", "updated_ms": now, **extra}
    with app.server.extensions["panorama"].engine.begin() as conn:
        return conn.execute(insert(alerts).values(**row).returning(alerts.c.id)).scalar_one()


def signed_in(app, role: str = "officer"):
    client = app.server.test_client()
    make_user(app, f"a-{role}", role, "fire" if role == "liaison" else None)
    res = client.post("/api/session", json={"username": f"a-{role}", "password": TEST_PASSWORD})
    return client, {"X-CSRF-Token": res.get_json()["csrf_token"]}


def error(res, status: int) -> str:
    assert res.status_code == status, res.get_data(as_text=True)
    return res.get_json()["error"]["code"]


def test_alerts_newest_first_filtered_by_status_and_level_in_the_readers_language(app):
    now = now_ms()
    old = add_alert(app, "resolved", "blue", now - 3_600_000, resolved_ms=now - 60_000, scope="a")
    mid = add_alert(app, "firing", "orange", now - 600_000, scope="b")
    new = add_alert(app, "acknowledged", "red", now - 60_000, scope="c", zone="futian_port")
    client, _ = signed_in(app, "viewer")
    doc = client.get("/api/alerts").get_json()["alerts"]
    assert [a["id"] for a in doc] == [new, mid, old]
    assert set(doc[0]) == {"id", "rule", "level", "status", "district", "zone", "started_at", "resolved_at", "value",
                           "baseline", "title", "version"}
    assert doc[2]["resolved_at"] == iso(now - 60_000, TZ) and doc[1]["resolved_at"] is None
    assert doc[0]["zone"] == "futian_port" and doc[0]["title"] == "福田区空气质量指数 180"
    assert [a["id"] for a in client.get("/api/alerts?status=firing,acknowledged").get_json()["alerts"]] == [new, mid]
    assert [a["id"] for a in client.get("/api/alerts?level=blue").get_json()["alerts"]] == [old]
    assert client.get("/api/alerts?lang=en").get_json()["alerts"][0]["title"] == "Futian: AQI 180"
    for query, code in (("status=burning", "bad_status"), ("level=purple", "bad_level"), ("status=,", "bad_status"),
                        ("lang=fr", "bad_lang")):
        assert error(client.get(f"/api/alerts?{query}"), 400) == code


def test_acknowledge_by_version_pushes_the_change_and_refuses_stale_and_wrong_states(app, redis_client):
    firing = add_alert(app, "firing", scope="x")
    pending = add_alert(app, "pending", scope="y")
    client, csrf = signed_in(app, "commander")
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(UPDATES_CHANNEL)
    wait_for(lambda: redis_client.pubsub_numsub(UPDATES_CHANNEL)[0][1] >= 1, message="subscribed")
    res = client.post(f"/api/alerts/{firing}/ack", json={"version": 1, "note": "已电话通知区环保"}, headers=csrf)
    assert res.status_code == 200, res.get_data(as_text=True)
    assert (res.get_json()["alert"]["status"], res.get_json()["alert"]["version"]) == ("acknowledged", 2)
    msg = wait_for(lambda: pubsub.get_message(timeout=0.1), message="the delta")
    assert orjson.loads(msg["data"])["alerts"][0] == {**res.get_json()["alert"], "title_en": "Futian: AQI 180"}
    pubsub.close()
    assert error(client.post(f"/api/alerts/{firing}/ack", json={"version": 1}, headers=csrf), 409) == \
        "version_conflict"
    assert error(client.post(f"/api/alerts/{firing}/ack", json={"version": 2}, headers=csrf), 422) == \
        "invalid_transition"  # acknowledged already
    assert error(client.post(f"/api/alerts/{pending}/ack", json={"version": 1}, headers=csrf), 422) == \
        "invalid_transition"
    assert error(client.post("/api/alerts/999999/ack", json={"version": 1}, headers=csrf), 404) == "not_found"
    for body in ({}, {"version": "1"}, {"version": 1, "extra": True}, {"version": 1, "note": "x" * 2001},
                 {"version": 0}, [1]):
        assert error(client.post(f"/api/alerts/{pending}/ack", json=body, headers=csrf), 400) == "bad_request", body
    assert error(client.post(f"/api/alerts/{pending}/ack", data=b"{", headers={**csrf, "Content-Type":
                                                                                "application/json"}), 400)


def test_silences_are_made_listed_and_ended_and_bad_ones_refused(app):
    client, csrf = signed_in(app, "officer")
    until = iso(now_ms() + 3_600_000, TZ)
    res = client.post("/api/silences", json={"rule": "aqi_moderate", "district": "futian", "until": until,
                                             "reason": " 传感器校准 "}, headers=csrf)
    assert res.status_code == 201, res.get_data(as_text=True)
    made = res.get_json()["silence"]
    assert (made["rule"], made["district"], made["zone"], made["until"], made["reason"], made["created_by"]) == (
        "aqi_moderate", "440304", None, until, "传感器校准", "a-officer")
    zone = client.post("/api/silences", json={"zone": "futian_port", "until": until, "reason": "演练"},
                       headers=csrf).get_json()["silence"]
    assert [s["id"] for s in client.get("/api/silences").get_json()["silences"]] == [zone["id"], made["id"]]
    ended = client.delete(f"/api/silences/{made['id']}", headers=csrf)
    assert ended.status_code == 200 and ended.get_json()["silence"]["ended_by"] == "a-officer"
    assert [s["id"] for s in client.get("/api/silences").get_json()["silences"]] == [zone["id"]]
    assert [s["id"] for s in client.get("/api/silences?all=1").get_json()["silences"]] == [zone["id"], made["id"]]
    assert error(client.delete(f"/api/silences/{made['id']}", headers=csrf), 422) == "invalid_transition"
    assert error(client.delete("/api/silences/424242", headers=csrf), 404) == "not_found"
    past, far = iso(now_ms() - 1000, TZ), iso(now_ms() + 31 * 86_400_000, TZ)
    for body, code in (({"until": until, "reason": "x"}, "bad_request"),
                       ({"rule": "nope", "until": until, "reason": "x"}, "unknown_rule"),
                       ({"district": "atlantis", "until": until, "reason": "x"}, "unknown_district"),
                       ({"zone": "moon", "until": until, "reason": "x"}, "unknown_zone"),
                       ({"rule": "aqi_moderate", "until": past, "reason": "x"}, "bad_until"),
                       ({"rule": "aqi_moderate", "until": far, "reason": "x"}, "bad_until"),
                       ({"rule": "aqi_moderate", "until": "2026-12-06T05:00:00", "reason": "x"}, "bad_until"),
                       ({"rule": "aqi_moderate", "until": "tomorrow", "reason": "x"}, "bad_until"),
                       ({"rule": "aqi_moderate", "until": until, "reason": "   "}, "bad_request"),
                       ({"rule": "aqi_moderate", "until": until}, "bad_request"),
                       ({"rule": 5, "until": until, "reason": "x"}, "bad_request"),
                       ({"rule": "aqi_moderate", "until": until, "reason": "x", "level": "red"}, "bad_request")):
        assert error(client.post("/api/silences", json=body, headers=csrf), 400) == code, body
    assert error(client.get("/api/silences?all=yes"), 400) == "bad_all"


@pytest.mark.parametrize("role", ["viewer", "liaison"])
def test_readers_may_not_acknowledge_nor_silence(app, role):
    firing = add_alert(app)
    client, csrf = signed_in(app, role)
    assert error(client.post(f"/api/alerts/{firing}/ack", json={"version": 1}, headers=csrf), 403) == "forbidden"
    assert error(client.post("/api/silences", json={"rule": "aqi_moderate", "until": iso(now_ms() + 60_000, TZ),
                                                    "reason": "x"}, headers=csrf), 403) == "forbidden"
    assert error(client.get("/api/silences"), 403) == "forbidden"


def test_metrics_count_the_open_alerts_by_level_and_status(app, client):
    add_alert(app, "firing", "orange", scope="a")
    add_alert(app, "firing", "orange", scope="b")
    add_alert(app, "pending", "red", scope="c")
    add_alert(app, "resolved", "blue", scope="d")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'panorama_alerts_open{level="orange",status="firing"} 2.0' in text
    assert 'panorama_alerts_open{level="red",status="pending"} 1.0' in text
    assert 'level="blue"' not in text
