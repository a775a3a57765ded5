"""A stream is never trimmed under entries nobody has stored: the API says 503 when it is full, ingest trims
only what every consumer group has acknowledged."""

from __future__ import annotations

import orjson
import redis
from sqlalchemy import func, select

from dashboard.storage.models import events
from feeds.consumers import StreamConsumer, trim_acknowledged
from tests.helpers import make_event, wait_for
from feeds.pipeline import make_pipeline

AUTH = {"Authorization": "Bearer test-token", "Content-Type": "application/json"}


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def post(client, n: int, now: int):
    return client.post("/api/events?domain=traffic", data=orjson.dumps(make_event(n, ts=now)), headers=AUTH)


def test_a_full_stream_refuses_new_events_instead_of_trimming_unread_ones(make_app, redis_client, redis_url,
                                                                          pg_engine):
    app = make_app(PANORAMA_STREAM_CAP=5)
    client, svc = app.server.test_client(), app.server.extensions["panorama"]
    now = svc.clock()
    for n in range(5):  # ingest is not running: every entry waits in the stream
        assert post(client, n, now).status_code == 202
    r = post(client, 5, now)
    assert r.status_code == 503 and r.json["error"]["code"] == "backlog_full" and r.headers["Retry-After"] == "5"
    assert redis_client.xlen("feeds:traffic") == 5  # the five accepted ones, none trimmed

    with StreamConsumer(make_pipeline(svc), lambda: redis.Redis.from_url(redis_url), consumer="t"):
        wait_for(lambda: stored(pg_engine) == 5, message="the five accepted events stored")
        wait_for(lambda: redis_client.xlen("feeds:traffic") == 0, message="stored entries trimmed by ingest")
        assert post(client, 5, now).status_code == 202  # room again
        wait_for(lambda: stored(pg_engine) == 6, message="the sixth stored")


def test_ingest_trims_only_what_every_consumer_group_has_acknowledged(app, redis_client, redis_url, pg_engine):
    svc = app.server.extensions["panorama"]
    stream = "feeds:traffic"
    redis_client.xgroup_create(stream, "audit", id="0", mkstream=True)  # another program reading the feed
    now = svc.clock()
    for n in range(10):
        redis_client.xadd(stream, {"data": orjson.dumps(make_event(n, ts=now))})
    with StreamConsumer(make_pipeline(svc), lambda: redis.Redis.from_url(redis_url), consumer="t"):
        wait_for(lambda: stored(pg_engine) == 10, message="ten stored")
        wait_for(lambda: redis_client.xpending(stream, "panorama-ingest")["pending"] == 0, message="acked")
        assert redis_client.xlen(stream) == 10  # the audit group has read nothing yet
        [(_, entries)] = redis_client.xreadgroup("audit", "a1", {stream: ">"}, count=10)
        redis_client.xack(stream, "audit", *[entry_id for entry_id, _ in entries[:4]])  # audit is done with 4
        redis_client.xadd(stream, {"data": orjson.dumps(make_event(10, ts=now))})
        wait_for(lambda: stored(pg_engine) == 11, message="the eleventh stored")
        # the next trim drops the 4 both groups acknowledged and keeps the 6 audit still holds, and the new one
        wait_for(lambda: redis_client.xlen(stream) == 7, timeout=15, message="trimmed to what audit still holds")
    assert trim_acknowledged(redis_client, stream) == 0  # nothing more may go


def test_a_stream_without_groups_is_left_alone(redis_client):
    redis_client.xadd("feeds:security", {"data": b"{}"})
    assert trim_acknowledged(redis_client, "feeds:security") == 0 and redis_client.xlen("feeds:security") == 1
