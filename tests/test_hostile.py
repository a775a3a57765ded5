"""A hostile corpus is rejected with the right reason each, dead-lettered, and valid events go on."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from sqlalchemy import func, select

from dashboard.core.city import load_city
from dashboard.storage.models import events
from dashboard.storage.events import EventStore
from dashboard.core.channels import deadletter_key, reject_counts_key
from feeds.consumers import PubSubConsumer, StreamConsumer
from feeds.pipeline import Pipeline
from feeds.publish import send_raw
from tests.helpers import make_event, wait_for


def _ev(n, **over):
    ev = make_event(n)
    ev.update(over)
    return ev


def _without(field):
    ev = make_event(0)
    del ev[field]
    return ev


HOSTILE: list[tuple[str, bytes]] = [
    ("invalid_json", b'{"id": "x", "ts": '),
    ("invalid_json", b"not json at all"),
    ("not_utf8", b'{"id": "\xff\xfe"}'),
    ("not_utf8", bytes(random.Random(7).randrange(128, 256) for _ in range(300))),
    ("non_finite", b'{"id":"nan","ts":1764117000000,"kind":"aqi","district":"futian","value":NaN}'),
    ("non_finite", b'{"id":"inf","ts":1764117000000,"kind":"aqi","district":"futian","value":1e999}'),
    ("non_finite", b'{"id":"minf","ts":1764117000000,"kind":"aqi","district":"futian","value":-Infinity}'),
    ("missing_field", orjson.dumps(_without("id"))),
    ("missing_field", orjson.dumps(_without("ts"))),
    ("missing_field", orjson.dumps(_without("kind"))),
    ("missing_field", orjson.dumps(_without("district"))),
    ("wrong_type", orjson.dumps(_ev(1, id=12345))),
    ("wrong_type", orjson.dumps(_ev(2, severity="3"))),
    ("wrong_type", orjson.dumps(_ev(3, value="high"))),
    ("wrong_type", orjson.dumps(_ev(4, title=["a"]))),
    ("invalid_field", orjson.dumps(_ev(5, ts="yesterday"))),
    ("invalid_field", orjson.dumps(_ev(6, ts="2026-11-26T08:30:00"))),  # no offset
    ("invalid_field", orjson.dumps(_ev(7, ts=1764117000))),  # seconds, not ms
    ("invalid_field", orjson.dumps(_ev(8, kind="Fire!"))),
    ("invalid_field", orjson.dumps(_ev(9, severity=5))),
    ("invalid_field", orjson.dumps(_ev(10, lat=91.0))),
    ("invalid_field", orjson.dumps(_ev(11, title="长" * 201))),
    ("invalid_field", orjson.dumps(_ev(12, id=""))),
    ("unknown_district", orjson.dumps(_ev(13, district="atlantis"))),
    ("domain_mismatch", orjson.dumps(_ev(14, domain="incident"))),
    ("too_large", orjson.dumps(_ev(15, detail="x" * 70_000))),
    # small enough to fit in 64 KiB, so the count is what breaks the rule
    ("batch_too_large", orjson.dumps([{"id": str(i), "ts": 1764117000000, "kind": "a", "district": "440304"}
                                      for i in range(1001)])),
    ("empty_batch", b"[]"),
    ("not_an_object", b'"just a string"'),
    ("not_an_object", b"42"),
    ("not_an_object", b"null"),
]


def test_corpus_reasons_without_a_consumer():
    """Every hostile message maps to its expected reason (pure, no Redis)."""
    from feeds.schema import parse_message

    aliases = load_city("shenzhen").aliases
    for reason, raw in HOSTILE:
        parsed = parse_message(raw, "traffic", aliases)
        assert not parsed.events, raw[:80]
        assert [r.reason for r in parsed.rejects] == [reason], (raw[:80], parsed.rejects)


@pytest.mark.parametrize("transport", ["stream", "pubsub"])
def test_hostile_messages_dead_lettered_and_valid_ones_stored(transport, pg_engine, redis_client, redis_url):
    pipeline = Pipeline(EventStore(pg_engine), load_city("shenzhen").aliases)
    connect = lambda: redis_client.__class__.from_url(redis_url)  # noqa: E731
    consumer = (StreamConsumer(pipeline, connect, consumer="t") if transport == "stream"
                else PubSubConsumer(pipeline, connect))
    # a batch with one bad event among good ones keeps the good ones
    mixed = [make_event(900), {"id": "bad", "kind": "x"}, make_event(901)]
    with consumer:
        wait_for(consumer.connected.is_set, message="consumer connected")
        if transport == "pubsub":
            wait_for(lambda: redis_client.pubsub_numsub("feeds:traffic")[0][1] >= 1, message="subscribed")
        for i, (_reason, raw) in enumerate(HOSTILE):
            send_raw(redis_client, "traffic", raw, transport)
            send_raw(redis_client, "traffic", orjson.dumps(make_event(i)), transport)  # valid, in between
        send_raw(redis_client, "traffic", orjson.dumps(mixed), transport)
        expected_valid = len(HOSTILE) + 2
        expected_rejects = len(HOSTILE) + 1

        def stored():
            with pg_engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(events)).scalar_one()

        wait_for(lambda: stored() == expected_valid and redis_client.llen(deadletter_key()) == expected_rejects,
                 timeout=30, message="valid events stored and rejects dead-lettered")
        assert consumer.reconnects == 0  # nothing hostile made it fall over
    letters = [json.loads(x) for x in redis_client.lrange(deadletter_key(), 0, -1)]
    got = sorted(letter["reason"] for letter in letters)
    assert got == sorted([r for r, _ in HOSTILE] + ["missing_field"])
    assert all(letter["channel"] == "feeds:traffic" and letter["message"] and "payload" in letter for letter in letters)
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(reject_counts_key()).items()}
    assert counts["traffic|non_finite"] == 3
    assert counts["traffic|missing_field"] == 5
    assert sum(counts.values()) == expected_rejects
