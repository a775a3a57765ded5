"""The HTTP API: ingest over HTTP, summaries from rollups, health and metrics."""

from __future__ import annotations

import time

import orjson
from sqlalchemy import func, select

from dashboard.storage.models import events
from dashboard.core.channels import deadletter_key, feed_name
from feeds.consumers import StreamConsumer
from feeds.pipeline import Batch
from tests.helpers import TEST_PASSWORD, make_event, make_user, wait_for
from feeds.pipeline import make_pipeline

AUTH = {"Authorization": "Bearer test-token"}


def now_event(n, minutes_ago=0.0, **kw):
    return make_event(n, ts=int(time.time() * 1000 - minutes_ago * 60_000), **kw)


def ingest_now(app, evs_by_domain: dict[str, list[dict]]) -> None:
    """Store events directly through the app's own pipeline (what ingest would do)."""
    svc = app.server.extensions["panorama"]
    pipeline = make_pipeline(svc)
    batch = Batch()
    for domain, evs in evs_by_domain.items():
        pipeline.add(batch, f"feeds:{domain}", domain, orjson.dumps(evs), 0)
    assert not batch.rejects, batch.rejects
    pipeline.flush(batch, svc.redis)


def test_post_events_needs_the_token(client):
    body = orjson.dumps(make_event(1, domain="traffic"))
    assert client.post("/api/events", data=body).status_code == 401
    bad = client.post("/api/events", data=body, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json["error"]["code"] == "unauthorized"


def test_post_events_disabled_without_a_configured_token(make_app, redis_client):
    client = make_app(PANORAMA_INGEST_TOKEN=None).server.test_client()
    r = client.post("/api/events", data=b"{}", headers=AUTH)
    assert r.status_code == 403 and "PANORAMA_INGEST_TOKEN" in r.json["error"]["message"]


def test_post_events_rejects_bad_input_with_reasons(client, redis_client):
    r = client.post("/api/events", data=b"{not json", headers=AUTH)
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json"
    r = client.post("/api/events", data=orjson.dumps(make_event(1)), headers=AUTH)  # no domain anywhere
    assert r.status_code == 400 and r.json["error"]["code"] == "missing_field"
    r = client.post("/api/events?domain=weather", data=orjson.dumps(make_event(1)), headers=AUTH)
    assert r.status_code == 400 and r.json["error"]["code"] == "unknown_domain"
    assert redis_client.llen(deadletter_key()) == 2  # the message-level rejects are kept


def test_post_events_reach_the_database_through_the_stream(app, client, redis_client, redis_url, pg_engine):
    batch = [make_event(1, domain="traffic"), make_event(2, domain="incident", kind="fire"),
             {"id": "x", "domain": "traffic"}, make_event(3, domain="security", district="atlantis")]
    r = client.post("/api/events", data=orjson.dumps(batch), headers=AUTH)
    assert r.status_code == 202
    assert r.json["accepted"] == 2
    assert [(x["index"], x["reason"]) for x in r.json["rejected"]] == [(2, "missing_field"), (3, "unknown_district")]
    assert redis_client.xlen(feed_name("traffic")) == 1 and redis_client.xlen(feed_name("incident")) == 1
    svc = app.server.extensions["panorama"]
    with StreamConsumer(make_pipeline(svc), lambda: redis_client.__class__.from_url(redis_url), consumer="api"):
        def count():
            with pg_engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(events)).scalar_one()
        wait_for(lambda: count() == 2, message="both accepted events stored")
    r = client.post("/api/events?domain=security", data=orjson.dumps(make_event(9)), headers=AUTH)
    assert r.status_code == 202 and r.json == {"accepted": 1, "rejected": []}


def test_summary_counts_events_in_the_window(app, client):
    ingest_now(app, {
        "traffic": [now_event(i, district="futian") for i in range(5)] + [now_event(5, district="nanshan")],
        "incident": [now_event(10, kind="fire", severity=4, district="440304")],
        # outside the 15-minute window but inside the hour
        "security": [now_event(20, minutes_ago=30, kind="theft", district="futian")],
    })
    r = client.get("/api/summary?window=15m")
    assert r.status_code == 200
    doc = r.json
    assert list(doc) == ["window", "generated_at", "totals", "districts"]
    assert doc["window"]["minutes"] == 15 and doc["window"]["start"].endswith("+08:00")
    assert doc["totals"] == {"security": 0, "traffic": 6, "environment": 0, "incident": 1}
    futian = next(d for d in doc["districts"] if d["code"] == "440304")
    assert futian["slug"] == "futian" and futian["name"] == "福田区" and futian["name_en"] == "Futian"
    assert futian["counts"] == {"security": 0, "traffic": 5, "environment": 0, "incident": 1}
    assert futian["risk"] > next(d for d in doc["districts"] if d["code"] == "440305")["risk"] >= 0
    assert len(doc["districts"]) == 9
    hour = client.get("/api/summary").json
    assert hour["window"]["minutes"] == 60 and hour["totals"]["security"] == 1
    assert client.get("/api/summary?window=90d").status_code == 400


def test_district_summary_has_streets_and_not_found(app, client):
    ingest_now(app, {"traffic": [now_event(i, district="futian", street="华强北街道") for i in range(3)]
                     + [now_event(3, district="futian", street="梅林街道", kind="accident", severity=3)]})
    by_slug = client.get("/api/districts/futian/summary?window=1h").json
    by_code = client.get("/api/districts/440304/summary?window=1h").json
    assert by_slug["district"]["code"] == by_code["district"]["code"] == "440304"
    streets = {s["name"]: s["counts"]["traffic"] for s in by_slug["streets"]}
    assert streets["华强北街道"] == 3 and streets["梅林街道"] == 1 and streets["园岭街道"] == 0
    assert by_slug["totals"]["traffic"] == 4
    assert {"domain": "traffic", "kind": "accident", "count": 1} in by_slug["kinds"]
    missing = client.get("/api/districts/atlantis/summary")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "unknown_district"


def test_health_and_metrics(app, client, redis_client):
    ingest_now(app, {"traffic": [now_event(1)]})
    redis_client.hincrby("feeds:deadletter:counts", "traffic|invalid_json", 2)
    h = client.get("/api/health")
    assert h.status_code == 200 and h.json["status"] == "ok" and h.json["database"] == "ok"
    assert h.json["feeds"]["traffic"]["last_event_age_s"] < 60 and not h.json["feeds"]["traffic"]["stale"]
    assert h.json["feeds"]["incident"]["stale"] and h.json["feeds"]["incident"]["last_event_age_s"] is None
    text = client.get("/metrics").get_data(as_text=True)
    assert 'panorama_events_ingested_total{domain="traffic"} 1.0' in text
    assert 'panorama_events_rejected_total{domain="traffic",reason="invalid_json"} 2.0' in text
    assert "panorama_ingest_lag_seconds" in text and "panorama_redis_up 1.0" in text


def test_unknown_api_route_is_json_404(client):
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_summary_with_live_state_for_the_polling_fallback(app, client):
    ingest_now(app, {"incident": [now_event(1, kind="fire", severity=4, district="futian", title="火情")],
                     "traffic": [now_event(2, minutes_ago=20, district="nanshan")]})
    make_user(app, "watcher", "viewer")
    assert client.post("/api/session", json={"username": "watcher", "password": TEST_PASSWORD}).status_code == 200
    doc = client.get("/api/summary?window=15m&live=1").json
    assert doc["totals"]["incident"] == 1  # the documented shape is still all there
    state = doc["live"]
    assert set(state["windows"]) == {"15m", "1h", "24h", "7d", "30d"}
    assert state["windows"]["15m"]["totals"] == {"security": 0, "traffic": 0, "environment": 0, "incident": 1}
    assert state["windows"]["1h"]["totals"]["traffic"] == 1
    assert state["windows"]["1h"]["districts"]["440305"]["counts"]["traffic"] == 1
    assert state["windows"]["1h"]["districts"]["440304"]["risk"] > state["windows"]["24h"]["districts"]["440304"]["risk"]
    assert sorted(e["title"] for e in state["events"]) == sorted(["火情", "测试事件 2"])
    # the trend ends with the last complete minute (tests/test_trend_bounds.py): the traffic of 20 minutes ago is in it
    assert sum(state["trend"]["series"]["traffic"]) == 1 and len(state["trend"]["series"]["traffic"]) == 60
    assert not state["feeds"]["incident"]["stale"]


def test_live_events_need_a_viewer_or_a_kiosk_token_but_counts_do_not(app, client):
    from dashboard.storage import users as accounts

    ingest_now(app, {"incident": [now_event(1, kind="fire", severity=4, district="futian", title="火情")]})
    assert client.get("/api/summary").json["totals"]["incident"] == 1
    anonymous = client.get("/api/summary?live=1")
    assert anonymous.status_code == 401 and anonymous.json["error"]["code"] == "not_signed_in"
    engine = app.server.extensions["panorama"].engine
    token_id, token = accounts.create_kiosk_token(engine, "wall 1")
    assert client.get(f"/api/summary?live=1&token={token}").json["live"]["events"][0]["title"] == "火情"
    assert client.get("/api/summary?live=1&token=forged").status_code == 401
    accounts.revoke_kiosk_token(engine, token_id)
    assert client.get(f"/api/summary?live=1&token={token}").status_code == 401


def test_metrics_count_sla_breaches_by_department_and_dropped_events(app, client, redis_client, pg_engine):
    from dashboard.dispatch import board as dispatch
    from dashboard.storage.models import incidents

    ingest_now(app, {"incident": [now_event(1, kind="fire", severity=4, district="futian", title="火情")]})
    svc = app.server.extensions["panorama"]
    with pg_engine.begin() as conn:
        incident_id = conn.execute(select(incidents.c.id)).scalar_one()
        dispatch.dispatch(conn, incident_id, ["fire", "police"], "officer", None, int(time.time() * 1000),
                          svc.city.rules, svc.city)
        # a day later nobody has acknowledged: both tasks are past their deadline
        assert len(dispatch.escalate_overdue(conn, int(time.time() * 1000) + 86_400_000)) == 2
    redis_client.hincrby("panorama:ingest:dropped", "security", 3)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'panorama_dispatch_sla_breaches_total{department="fire"} 1.0' in text
    assert 'panorama_dispatch_sla_breaches_total{department="police"} 1.0' in text
    assert 'panorama_ingest_dropped_total{domain="security"} 3.0' in text


def test_a_database_outage_is_a_503_that_says_so_on_pages_and_in_the_api(app, client):
    from dashboard.storage.db import make_engine
    from tests.redis_proc import free_port

    make_user(app, "watcher", "viewer")
    assert client.post("/api/session", json={"username": "watcher", "password": TEST_PASSWORD}).status_code == 200
    svc = app.server.extensions["panorama"]
    live_engine, svc.engine = svc.engine, make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone")
    try:
        for path in ("/api/summary", "/api/districts/futian/summary", "/api/incidents"):
            r = client.get(path)
            assert r.status_code == 503 and r.json["error"]["code"] == "database_unavailable", path
        page = client.get("/")
        assert page.status_code == 503 and "数据库暂不可用" in page.get_data(as_text=True)
        assert client.get("/api/health").json["status"] == "degraded"
    finally:
        svc.engine.dispose()
        svc.engine = live_engine
    assert client.get("/api/summary").status_code == 200


def test_seven_and_thirty_day_windows_read_the_hour_rollups(app, client, pg_engine):
    day = 24 * 60
    ingest_now(app, {"traffic": [now_event(1, district="futian", street="华强北街道"),
                                 now_event(2, minutes_ago=3 * day, district="futian", street="华强北街道"),
                                 now_event(3, minutes_ago=20 * day, district="futian", street="华强北街道")]})
    totals = {w: client.get(f"/api/summary?window={w}").json for w in ("24h", "7d", "30d")}
    assert [totals[w]["totals"]["traffic"] for w in ("24h", "7d", "30d")] == [1, 2, 3]
    assert totals["7d"]["window"]["minutes"] == 7 * day and totals["30d"]["window"]["minutes"] == 30 * day
    # whole hours: the window ends at the end of the current hour
    assert totals["30d"]["window"]["end"].endswith(":00:00+08:00")
    district = client.get("/api/districts/futian/summary?window=30d").json
    street = next(s for s in district["streets"] if s["name"] == "华强北街道")
    assert district["totals"]["traffic"] == 3 and street["counts"]["traffic"] == 3
    # what the long windows read is the hour rollups: empty them and the counts go, the minutes stay
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE rollup_hours, district_hours")
    assert client.get("/api/summary?window=30d").json["totals"]["traffic"] == 0
    assert client.get("/api/summary?window=24h").json["totals"]["traffic"] == 1
    assert client.get("/api/districts/futian/summary?window=7d").json["totals"]["traffic"] == 0


def test_events_older_than_retention_are_refused_with_a_reason(make_app, redis_client):
    day = 24 * 60
    body = orjson.dumps([now_event(1), now_event(2, minutes_ago=32 * day), now_event(3, minutes_ago=45 * day)])
    r = make_app().server.test_client().post("/api/events?domain=traffic", data=body, headers=AUTH)
    assert r.status_code == 202 and r.json["accepted"] == 1
    assert [(x["index"], x["reason"]) for x in r.json["rejected"]] == [(1, "expired_ts"), (2, "expired_ts")]
    assert "PANORAMA_RETENTION_DAYS" in r.json["rejected"][0]["message"]
    longer = make_app(PANORAMA_RETENTION_DAYS=40).server.test_client()
    r = longer.post("/api/events?domain=traffic", data=body, headers=AUTH)
    assert r.json["accepted"] == 2 and [x["index"] for x in r.json["rejected"]] == [2]


def test_a_day_is_counted_from_whole_hours_and_the_minutes_at_its_edges(make_app, redis_client, pg_engine):
    from tests.helpers import city_clock

    app = make_app(PANORAMA_CLOCK=city_clock("08:30"))  # the day: yesterday 08:31 to 08:31, hours 09:00 to 08:00
    client, now = app.server.test_client(), app.server.extensions["panorama"].clock()
    at = [now, now - 12 * 3_600_000, now - (24 * 60 - 10) * 60_000]  # last edge, an hour inside, first edge
    ingest_now(app, {"traffic": [make_event(i, ts=ts, district="futian", street="华强北街道")
                                 for i, ts in enumerate(at)]})
    assert client.get("/api/districts/futian/summary?window=24h").json["totals"]["traffic"] == 3
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE rollup_hours")  # what the hours inside the day are read from
    assert client.get("/api/districts/futian/summary?window=24h").json["totals"]["traffic"] == 2
