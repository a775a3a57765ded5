"""Whatever is accepted is stored: messages at the transport limits, over HTTP, pub/sub and streams."""

from __future__ import annotations

import time
from datetime import timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select

from dashboard.core.city import load_city
from dashboard.storage.models import events
from dashboard.storage.events import EventStore
from dashboard.core.channels import deadletter_key, feed_name
from feeds.consumers import PubSubConsumer, StreamConsumer
from feeds.pipeline import Pipeline
from feeds.publish import encode_messages, publish
from feeds.schema import MAX_BATCH, MAX_MESSAGE_BYTES, parse_message
from tests.helpers import make_event, wait_for
from tests.test_fuzz import encode_loose, event_like, messages
from feeds.pipeline import make_pipeline

AUTH = {"Authorization": "Bearer test-token"}
HAN = "城市运行全景一网统管应急指挥调度中心"  # 3 bytes a character in UTF-8
ALIASES = load_city("shenzhen").aliases


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def minimal(i: int, ts: int) -> dict:
    # The smallest event re-encoding grows most: the API adds the domain and the severity, and the
    # district's slug becomes its (longer) code.
    return {"id": f"{i}", "ts": ts, "kind": "x", "district": "luohu"}


def maximal(i: int, ts: int) -> dict:
    # Fields at their maximum length, Chinese text, and a value whose JSON grows on re-encoding (1e15).
    return {"id": f"{i:05d}-" + "标" * 90, "ts": ts, "kind": "k" * 64, "district": "luohu",
            "street": "街" * 128, "title": (HAN * 12)[:200], "source": "源" * 128, "value": 1e15}


def enc(items) -> bytes:
    """Encode as a publisher might: 1e15 written short (re-encoded it is ``1000000000000000.0``)."""
    return orjson.dumps(items).replace(b"1000000000000000.0", b"1e15")


def at_limit(evs: list[dict], target: int = MAX_MESSAGE_BYTES) -> bytes:
    """Encode events as one message padded (ids, then a detail) to within a few bytes of ``target``."""
    pad = target - len(enc(evs))
    assert pad >= 0, f"{len(evs)} events do not fit in {target} bytes"
    for i, ev in enumerate(evs):
        add = min(128 - len(ev["id"]), pad // (len(evs) - i))
        ev["id"] += "x" * add
        pad -= add
    if pad > len(',"detail":""'):
        evs[0]["detail"] = "d" * (pad - len(',"detail":""'))
    raw = enc(evs)
    assert target - 12 <= len(raw) <= target, len(raw)
    return raw


def fill(make, ts: int, target: int = MAX_MESSAGE_BYTES) -> list[dict]:
    """Return as many events of ``make`` as one message of ``target`` bytes holds, with room to pad."""
    n = 1
    while n < MAX_BATCH and len(enc([make(i, ts) for i in range(n + 1)])) <= target - 2000:
        n += 1
    return [make(i, ts) for i in range(n)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


CASES = {
    # the example: 400 small events, 55 KB, answered 202 and stored none
    "400 events, 55 KB": lambda ts: at_limit([minimal(i, ts) for i in range(400)], 55_000),
    "1,000 events, 64 KiB": lambda ts: at_limit([minimal(i, ts) for i in range(MAX_BATCH)]),
    "max-length Chinese events, 64 KiB": lambda ts: at_limit(fill(maximal, ts)),
}


@pytest.mark.parametrize("case", CASES)
def test_every_event_the_api_accepts_is_stored(case, app, client, redis_client, redis_url, pg_engine):
    raw = CASES[case](now_ms() - 60_000)
    resp = client.post("/api/events?domain=environment", data=raw, headers=AUTH)
    assert resp.status_code == 202, resp.json
    accepted = resp.json["accepted"]
    assert accepted == len(orjson.loads(raw)) and resp.json["rejected"] == []
    # what went onto the stream, before ingest stores it and trims it away
    entries = redis_client.xrange(feed_name("environment"))
    assert len(entries) > 1 and all(len(fields[b"data"]) <= MAX_MESSAGE_BYTES for _, fields in entries)
    svc = app.server.extensions["panorama"]
    with StreamConsumer(make_pipeline(svc), lambda: redis_client.__class__.from_url(redis_url), consumer="api"):
        wait_for(lambda: stored(pg_engine) == accepted
                 and redis_client.xpending(feed_name("environment"), "panorama-ingest")["pending"] == 0,
                 timeout=30, message=f"{accepted} accepted events stored and acknowledged")
    assert stored(pg_engine) == accepted
    assert redis_client.llen(deadletter_key()) == 0


@pytest.mark.parametrize("transport", ["stream", "pubsub"])
def test_published_events_are_stored_whatever_their_size(transport, pg_engine, redis_client, redis_url):
    n = MAX_BATCH  # 1,000 maximal events, about 1 MB: far more than one message may carry
    evs = [maximal(i, now_ms() - 60_000) for i in range(n)]
    pipeline = Pipeline(EventStore(pg_engine), load_city("shenzhen").aliases)
    connect = lambda: redis_client.__class__.from_url(redis_url)  # noqa: E731
    consumer = (StreamConsumer(pipeline, connect, consumer="t") if transport == "stream"
                else PubSubConsumer(pipeline, connect))
    with consumer:
        wait_for(consumer.connected.is_set, message="consumer connected")
        if transport == "pubsub":
            wait_for(lambda: redis_client.pubsub_numsub(feed_name("traffic"))[0][1] >= 1, message="subscribed")
        sent = publish(redis_client, "traffic", evs, transport)
        wait_for(lambda: stored(pg_engine) == n, timeout=30, message=f"{n} published events stored")
    assert redis_client.llen(deadletter_key()) == 0 and sent > 1


def test_an_event_that_cannot_fit_is_refused_before_anything_is_sent(redis_client):
    with pytest.raises(ValueError, match="encodes to"):
        publish(redis_client, "traffic", [minimal(1, 0), {**minimal(2, 0), "detail": "x" * MAX_MESSAGE_BYTES}],
                "stream")
    assert redis_client.xlen(feed_name("traffic")) == 0


event_dicts = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=40), "title": st.text(max_size=120)},
                                    optional={"value": st.floats(allow_nan=False, allow_infinity=False)})


@settings(max_examples=300, deadline=None, database=None)
@given(evs=st.lists(event_dicts, max_size=60), max_events=st.integers(1, 25), max_bytes=st.integers(700, 4000))
def test_messages_fit_hold_every_event_in_order_and_are_full(evs, max_events, max_bytes):
    messages = encode_messages(evs, max_events, max_bytes)
    decoded = [orjson.loads(m) for m in messages]
    assert [e for batch in decoded for e in batch] == [orjson.loads(orjson.dumps(e)) for e in evs]
    assert all(len(m) <= max_bytes and 1 <= len(b) <= max_events for m, b in zip(messages, decoded))
    for m, b, nxt in zip(messages, decoded, decoded[1:]):
        # greedy: a message ends only where the next event would break a limit
        assert len(b) == max_events or len(m) + 1 + len(orjson.dumps(nxt[0])) > max_bytes


# RFC 3339 at any offset and any date: accepted as text, re-encoded as epoch ms, they must stay valid.
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
rfc3339 = st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), st.datetimes(), offsets)
# Mostly valid events (the fuzz corpus is mostly invalid ones), every optional field in play.
valid_like = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=128), "ts": rfc3339 | st.integers(0, 2**45),
     "kind": st.from_regex(r"[a-z0-9_]{1,64}", fullmatch=True), "district": st.sampled_from(sorted(ALIASES))},
    optional={"severity": st.integers(1, 4), "title": st.text(max_size=200), "detail": st.text(max_size=300),
              "street": st.text(max_size=128), "source": st.text(max_size=128), "unit": st.text(max_size=32),
              "value": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**63, 2**63 - 1),
              "lat": st.floats(-90, 90), "lon": st.floats(-180, 180), "domain": st.just("traffic")})
dated = st.lists(valid_like, min_size=1, max_size=5).map(encode_loose) | event_like.map(encode_loose)


@settings(max_examples=500, deadline=None, database=None)
@given(raw=messages | dated, domain=st.sampled_from(["traffic", None]))
def test_what_is_accepted_is_accepted_again_once_re_encoded(raw, domain):
    received = now_ms()
    for ev in parse_message(raw, domain, ALIASES, received).events:
        again = parse_message(orjson.dumps([ev.to_message()]), ev.domain, ALIASES, received)
        assert not again.rejects, (ev, again.rejects)
        assert [e.to_message() for e in again.events] == [ev.to_message()]


@pytest.mark.parametrize("ts", ["1999-12-31T23:59:59Z", "0001-01-01T00:00:00+08:00", "2100-01-01T08:00:00+08:00"])
def test_out_of_range_dates_are_refused_not_accepted_then_lost(ts, app, client, redis_client, redis_url, pg_engine):
    # Once accepted as text and forwarded as epoch ms (then dead-lettered), or a 500, or a poison stream entry.
    r = client.post("/api/events?domain=traffic", data=orjson.dumps([make_event(1, ts=ts), make_event(2)]),
                    headers=AUTH)
    assert r.status_code == 202 and r.json["accepted"] == 1
    assert [(x["index"], x["reason"]) for x in r.json["rejected"]] == [(0, "invalid_field")]
    publish(redis_client, "traffic", make_event(3, ts=ts), "stream")
    publish(redis_client, "traffic", make_event(4), "stream")
    svc = app.server.extensions["panorama"]
    with StreamConsumer(make_pipeline(svc), lambda: redis_client.__class__.from_url(redis_url), consumer="t") as c:
        wait_for(lambda: stored(pg_engine) == 2, timeout=30, message="the two valid events stored")
        assert c.reconnects == 0
    assert [orjson.loads(x)["reason"] for x in redis_client.lrange(deadletter_key(), 0, -1)] == ["invalid_field"] * 2
