"""Publish events to the feeds over pub/sub or streams (for publishers, tests, the simulator, the API)."""

from __future__ import annotations

from typing import Iterable, Literal, Sequence

import orjson

from dashboard.core.bus import is_cluster
from dashboard.core.channels import DEFAULT_PREFIX, feed_name
from feeds.schema import MAX_BATCH, MAX_MESSAGE_BYTES

Transport = Literal["pubsub", "stream"]


def encode(events: dict | list[dict]) -> bytes:
    """Encode one event or a batch as the UTF-8 JSON a feed message carries (as it is: no limit checked)."""
    return orjson.dumps(events)


def encode_messages(events: dict | Sequence[dict], max_events: int = MAX_BATCH,
                    max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """Encode events as feed messages that each fit the transport limits, in order.

    One event stays one JSON object; a sequence is cut into arrays of at most ``max_events``
    events and ``max_bytes`` encoded bytes (bytes, not characters: Chinese text is 3 bytes a
    character), so everything sent is stored rather than dead-lettered as ``too_large``.
    Raises ``ValueError`` before anything is sent when one event alone cannot fit.
    """
    if isinstance(events, dict):
        events = [events]
        single = True
    else:
        single = False
    parts = [orjson.dumps(e) for e in events]
    for i, part in enumerate(parts):
        if len(part) + (0 if single else 2) > max_bytes:
            raise ValueError(f"event {i} encodes to {len(part)} bytes; a feed message holds at most {max_bytes}")
    if single:
        return parts
    out: list[bytes] = []
    start, size = 0, 2  # size of "[" + parts[start:i] joined by "," + "]"
    for i, part in enumerate(parts):
        grown = size + len(part) + (1 if i > start else 0)
        if i > start and (i - start >= max_events or grown > max_bytes):
            out.append(b"[" + b",".join(parts[start:i]) + b"]")
            start, grown = i, 2 + len(part)
        size = grown
    if parts:
        out.append(b"[" + b",".join(parts[start:]) + b"]")
    return out


def publish(redis, domain: str, events: dict | list[dict], transport: Transport = "pubsub",
            prefix: str = DEFAULT_PREFIX, maxlen: int | None = None) -> int:
    """Send events to a domain's feed, in as many messages as the limits need; return how many."""
    return publish_many(redis, [(domain, events)], transport, prefix, maxlen)


def send_raw(redis, domain: str, payload: bytes | str, transport: Transport = "pubsub",
             prefix: str = DEFAULT_PREFIX, maxlen: int | None = None) -> None:
    """Send an already encoded message as it is (valid or not) to a domain's feed."""
    name = feed_name(domain, prefix)
    if transport == "stream":
        # No MAXLEN by default: trimming by length drops entries nobody has read. Ingest trims what every
        # consumer group has acknowledged; a publisher that wants a hard cap passes ``maxlen`` (approximate).
        redis.xadd(name, {"data": payload}, maxlen=maxlen, approximate=True)
    else:
        redis.publish(name, payload)


def publish_many(redis, messages: Iterable[tuple[str, dict | list[dict]]], transport: Transport = "pubsub",
                 prefix: str = DEFAULT_PREFIX, maxlen: int | None = None) -> int:
    """Send many ``(domain, events)`` in one pipeline round trip, each cut to fit; return the messages sent."""
    # Encode everything first: an event that cannot fit raises before anything is sent.
    encoded = [(domain, payload) for domain, events in messages for payload in encode_messages(events)]
    if transport == "pubsub" and is_cluster(redis):
        # redis-py refuses PUBLISH in a cluster pipeline: one round trip a message (each carries up to 1,000
        # events). The cluster forwards every PUBLISH to all its nodes, whichever takes it.
        for domain, payload in encoded:
            send_raw(redis, domain, payload, transport, prefix, maxlen)
        return len(encoded)
    pipe = redis.pipeline(transaction=False)
    for domain, payload in encoded:
        send_raw(pipe, domain, payload, transport, prefix, maxlen)
    pipe.execute()
    return len(encoded)
