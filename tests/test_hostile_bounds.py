"""Hostile input costs bounded memory: dead letters are capped in bytes, far-future times never stick."""

from __future__ import annotations

import hashlib
import time

import orjson
import pytest
from sqlalchemy import func, select

from dashboard.core.city import load_city
from dashboard.panorama.state import build_state
from dashboard.storage.models import district_minutes, events, feed_state
from dashboard.storage.events import EventStore
from dashboard.core.channels import deadletter_key
from feeds.consumers import StreamConsumer
from feeds.pipeline import Batch, Pipeline
from feeds.publish import send_raw
from feeds.schema import MAX_CLOCK_SKEW_MS, MAX_MESSAGE_BYTES, PAYLOAD_PREFIX_BYTES, parse_message
from tests.helpers import make_event, wait_for
from feeds.pipeline import make_pipeline

AUTH = {"Authorization": "Bearer test-token"}
ALIASES = load_city("shenzhen").aliases
MINUTE = 60_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def hostile_corpus() -> list[tuple[str, bytes]]:
    """The issue's 1,000 messages of 64 KiB control characters, and the other shapes that escape or grow."""
    corpus = [("invalid_json", bytes([1 + i % 31]) * MAX_MESSAGE_BYTES) for i in range(1000)]
    corpus += [
        ("not_utf8", b"\xff" * MAX_MESSAGE_BYTES),  # each byte becomes U+FFFD, 3 bytes
        ("too_large", b'"' + b"\x1f" * (4 * MAX_MESSAGE_BYTES)),
        ("invalid_field", orjson.dumps([make_event(i, kind="BAD", detail="\x01" * 2000) for i in range(5)])),  # 61 KB
    ]
    return corpus


def test_dead_letters_keep_a_bounded_prefix_its_length_and_hash(pg_engine, redis_client, redis_url):
    corpus = hostile_corpus()
    pipeline = Pipeline(EventStore(pg_engine), ALIASES)
    for _reason, raw in corpus:
        send_raw(redis_client, "traffic", raw, "stream", maxlen=None)
    expected = len(corpus) - 1 + 5  # the batch of bad events is one reject per event
    with StreamConsumer(pipeline, lambda: redis_client.__class__.from_url(redis_url), consumer="t"):
        wait_for(lambda: redis_client.llen(deadletter_key()) == expected, timeout=60, message="every reject kept")
    # 1,000 entries of escaped 64 KiB once took 437 MiB; a bounded entry is under 2 KiB, whatever came in.
    used = redis_client.memory_usage(deadletter_key(), samples=0)
    assert used < expected * 2048, f"the dead-letter list takes {used:,} bytes for {expected} rejects"
    letters = [orjson.loads(x) for x in redis_client.lrange(deadletter_key(), 0, -1)]
    by_hash = {hashlib.sha256(raw).hexdigest(): (reason, raw) for reason, raw in corpus}
    for letter in letters:
        assert len(orjson.dumps(letter["payload"])) <= PAYLOAD_PREFIX_BYTES + 2
        if letter["index"] is not None:  # an event of a batch: its own re-encoding is the payload
            assert letter["reason"] == "invalid_field" and letter["payload_bytes"] > 2000
            continue
        reason, raw = by_hash[letter["payload_sha256"]]
        assert letter["reason"] == reason and letter["payload_bytes"] == len(raw)
        assert raw.decode("utf-8", "replace").startswith(letter["payload"]) and letter["payload"]
    assert sorted({x["reason"] for x in letters}) == ["invalid_field", "invalid_json", "not_utf8", "too_large"]


def test_dead_letter_list_is_capped_in_entries(pg_engine, redis_client):
    pipeline = Pipeline(EventStore(pg_engine), ALIASES, deadletter_cap=50)
    batch = Batch()
    for i in range(200):
        pipeline.add(batch, "feeds:traffic", "traffic", b"x" * i, 0)
    pipeline.flush(batch, redis_client)
    assert redis_client.llen(deadletter_key()) == 50
    assert int(redis_client.hget("feeds:deadletter:counts", "traffic|invalid_json")) == 200


def test_ts_may_run_at_most_five_minutes_ahead_of_the_receiver():
    now = 1_764_950_400_000  # 2025-12-05T16:00:00Z
    ok = parse_message(orjson.dumps(make_event(1, ts=now + MAX_CLOCK_SKEW_MS)), "traffic", ALIASES, now)
    assert [e.id for e in ok.events] == ["ev-1"]
    for ts in (now + MAX_CLOCK_SKEW_MS + 1, "2099-01-01T08:00:00+08:00"):
        late = parse_message(orjson.dumps(make_event(2, ts=ts)), "traffic", ALIASES, now)
        assert not late.events and [r.reason for r in late.rejects] == ["future_ts"]
        assert "ahead of the receiver's clock" in late.rejects[0].message


def test_far_future_events_are_dead_lettered_and_never_reach_feed_state_or_health(
        app, client, redis_client, redis_url, pg_engine):
    svc = app.server.extensions["panorama"]
    t = now_ms()
    sent = [make_event(1, ts=t - MINUTE), make_event(2, ts=t + 4 * MINUTE),  # skew within the rule is kept
            make_event(3, ts=t + 365 * 24 * 60 * MINUTE), make_event(4, ts="2099-12-31T23:00:00+08:00")]
    for ev in sent:
        send_raw(redis_client, "traffic", orjson.dumps(ev), "stream")
    with StreamConsumer(make_pipeline(svc), lambda: redis_client.__class__.from_url(redis_url), consumer="t"):
        wait_for(lambda: stored(pg_engine) == 2 and redis_client.llen(deadletter_key()) == 2, timeout=30,
                 message="two events stored and two dead-lettered")
    letters = [orjson.loads(x) for x in redis_client.lrange(deadletter_key(), 0, -1)]
    assert [x["reason"] for x in letters] == ["future_ts", "future_ts"]
    # over HTTP too: a clear 400 when nothing else was valid, and the reason per event otherwise
    r = client.post("/api/events?domain=traffic", data=orjson.dumps(sent[2]), headers=AUTH)
    assert r.status_code == 400 and r.json["error"]["code"] == "future_ts"
    r = client.post("/api/events?domain=traffic", data=orjson.dumps(sent[:1] + sent[3:]), headers=AUTH)
    assert r.status_code == 202 and [(x["index"], x["reason"]) for x in r.json["rejected"]] == [(1, "future_ts")]

    now = now_ms()
    with pg_engine.connect() as conn:
        last_event, last_received = conn.execute(select(feed_state.c.last_event_ms, feed_state.c.last_received_ms)
                                                 .where(feed_state.c.domain == "traffic")).one()
        newest_minute = conn.execute(select(func.max(district_minutes.c.minute_ms))).scalar_one()
        live = build_state(conn, svc.city, now, svc.config["PANORAMA_STALE_AFTER"])
    assert last_event <= now + MAX_CLOCK_SKEW_MS and last_received <= now
    assert newest_minute <= now + MAX_CLOCK_SKEW_MS
    health = client.get("/api/health").json["feeds"]["traffic"]
    # one event in the last five minutes; the one 4 minutes ahead counts when its minute comes
    assert 0 <= health["last_event_age_s"] < 60 and health["rate_per_min"] == 0.2 and not health["stale"]
    assert live["feeds"]["traffic"]["rate_per_min"] == 0.2 and 0 <= live["feeds"]["traffic"]["last_event_age_s"] < 60
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'panorama_events_rejected_total{domain="traffic",reason="future_ts"} 4.0' in metrics
    assert "panorama_deadletter_entries 4.0" in metrics


@pytest.mark.parametrize("ahead_minutes", [6, 60 * 24 * 365])
def test_health_rates_ignore_minutes_still_to_come(ahead_minutes, app, client, pg_engine):
    # Rows stored before ts was bounded (or by a worker whose clock runs ahead) must not count as a rate.
    t = now_ms()
    parsed = parse_message(orjson.dumps([make_event(1, ts=t - MINUTE), make_event(2, ts=t + ahead_minutes * MINUTE)]),
                           "security", ALIASES)
    EventStore(pg_engine).write(parsed.events, t)
    assert client.get("/api/health").json["feeds"]["security"]["rate_per_min"] == 0.2


def test_epoch_milliseconds_round_trip_exactly():
    # A float division turned about 0.6 % of ms values into their neighbour (1073765352491 -> ...490), so
    # the stored ts differed from the one sent.
    stamps = [1_073_765_352_491] + list(range(1_764_000_000_000, 1_764_000_000_000 + 2_000_000, 997))
    evs = [{"id": f"e{i}", "ts": ts, "kind": "congestion", "district": "futian"} for i, ts in enumerate(stamps)]
    for start in range(0, len(evs), 500):  # 500 a message keeps it under 64 KiB
        parsed = parse_message(orjson.dumps(evs[start:start + 500]), "traffic", {"futian": "440304"})
        assert [e.ts_ms for e in parsed.events] == stamps[start:start + 500]


def test_a_stream_entry_id_vouches_for_the_time_only_within_the_skew(pg_engine):
    # Redis's clock (the entry id) counts as the receiver's when this host's runs behind, but an id is the
    # publisher's to choose: a far-future id must not carry a far-future ts in with it.
    pipeline = Pipeline(EventStore(pg_engine), load_city("shenzhen").aliases)
    now = int(time.time() * 1000)
    batch = Batch()
    ok = {"id": "a", "ts": now + 8 * 60_000, "kind": "congestion", "district": "futian"}
    far = {"id": "b", "ts": now + 400 * 60_000, "kind": "congestion", "district": "futian"}
    pipeline.add(batch, "feeds:traffic", "traffic", orjson.dumps(ok), now + 4 * 60_000)  # Redis 4 min ahead
    pipeline.add(batch, "feeds:traffic", "traffic", orjson.dumps(far), now + 398 * 60_000)  # a forged id
    assert [e.id for e in batch.events] == ["a"]
    assert [r.reason for _, r in batch.rejects] == ["future_ts"]
