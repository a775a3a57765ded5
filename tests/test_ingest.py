"""Ingest over pub/sub and streams into PostgreSQL: exactly once, dedupe, rollups, incidents."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dashboard.core.city import load_city
from dashboard.storage.models import events, incidents, rollups
from dashboard.storage.events import EventStore
from dashboard.core.channels import UPDATES_CHANNEL, feed_name, ingested_counts_key
from feeds.consumers import PubSubConsumer, StreamConsumer
from feeds.pipeline import Pipeline
from feeds.publish import publish, publish_many
from tests.helpers import make_event, wait_for


@pytest.fixture
def pipeline(pg_engine):
    """Give a pipeline writing to the test PostgreSQL for the Shenzhen registry."""
    return Pipeline(EventStore(pg_engine), load_city("shenzhen").aliases)


def count(engine, table=events, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_stream_events_stored_exactly_once(pipeline, pg_engine, redis_client, redis_url):
    n = 2500
    # single events and batches, and every tenth id sent twice
    messages = [("traffic", make_event(i)) for i in range(500)]
    messages += [("traffic", [make_event(i) for i in range(start, start + 250)]) for start in range(500, n, 250)]
    messages += [("traffic", make_event(i)) for i in range(0, n, 10)]
    publish_many(redis_client, messages, transport="stream")
    consumer = StreamConsumer(pipeline, lambda: redis_client.__class__.from_url(redis_url), consumer="t1")
    with consumer:
        wait_for(lambda: count(pg_engine) == n and redis_client.xpending(feed_name("traffic"),
                 "panorama-ingest")["pending"] == 0, timeout=30, message=f"{n} events stored and acked")
    assert count(pg_engine) == n
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.sum(rollups.c.n))).scalar_one() == n
    assert int(redis_client.hget(ingested_counts_key(), "traffic")) == n


def test_pubsub_events_stored_exactly_once_and_delta_published(pipeline, pg_engine, redis_client, redis_url):
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    consumer = PubSubConsumer(pipeline, lambda: redis_client.__class__.from_url(redis_url))
    with consumer:
        wait_for(consumer.connected.is_set, message="subscribed")
        wait_for(lambda: redis_client.pubsub_numsub(feed_name("security"))[0][1] >= 1, message="subscription")
        for start in range(0, 1000, 100):
            publish(redis_client, "security", [make_event(i, kind="theft") for i in range(start, start + 100)])
        publish(redis_client, "security", make_event(5, kind="theft"))  # a repeat
        wait_for(lambda: count(pg_engine) == 1000, timeout=30, message="1000 events stored")
    msg = wait_for(lambda: listener.get_message(timeout=0.1), message="a delta on panorama:updates")
    assert b'"type":"delta"' in msg["data"]
    assert count(pg_engine) == 1000


def test_repeated_ids_across_batches_and_domains(pipeline, pg_engine):
    from feeds.pipeline import Batch

    batch = Batch()
    for domain in ("traffic", "security"):
        for i in range(10):
            pipeline.add(batch, f"feeds:{domain}", domain, publish_payload(make_event(i)), 0)
    result = pipeline.store.write(batch.events, 1)
    again = pipeline.store.write(batch.events, 2)
    # the same id in two domains is two events; the second write adds nothing
    assert len(result.stored) == 20 and len(again.stored) == 0 and again.duplicates == 20
    assert count(pg_engine) == 20


def test_incident_reports_join_one_incident(pipeline, pg_engine):
    from feeds.pipeline import Batch

    batch = Batch()
    # forty callers report the same fire within ten minutes, a few hundred metres apart
    for i in range(40):
        ev = make_event(i, kind="fire", severity=3 if i < 39 else 4, lat=22.54 + i * 1e-5, lon=114.05,
                        ts=1764117000000 + i * 15_000)
        pipeline.add(batch, "feeds:incident", "incident", publish_payload(ev), 0)
    # a fire in another district and a minor traffic event that opens nothing
    pipeline.add(batch, "feeds:incident", "incident", publish_payload(make_event(100, kind="fire", district="nanshan")), 0)
    pipeline.add(batch, "feeds:traffic", "traffic", publish_payload(make_event(101, severity=2)), 0)
    pipeline.store.write(batch.events, 1)
    with pg_engine.connect() as conn:
        rows = conn.execute(select(incidents).order_by(incidents.c.district)).mappings().all()
    assert [(r["district"], r["reports"], r["severity"]) for r in rows] == [("440304", 40, 4), ("440305", 1, 1)]


def publish_payload(ev) -> bytes:
    from feeds.publish import encode

    return encode(ev)
