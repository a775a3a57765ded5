"""Publish events to the feeds over pub/sub or streams (for publishers, tests, the simulator)."""

from __future__ import annotations

from typing import Iterable, Literal

import orjson

from feeds.channels import DEFAULT_PREFIX, feed_name

Transport = Literal["pubsub", "stream"]


def encode(events: dict | list[dict]) -> bytes:
    """Encode one event or a batch as the UTF-8 JSON a feed message carries."""
    return orjson.dumps(events)


def publish(redis, domain: str, events: dict | list[dict], transport: Transport = "pubsub",
            prefix: str = DEFAULT_PREFIX, maxlen: int | None = 1_000_000) -> None:
    """Send one message (an event or a batch of at most 1,000) to a domain's feed."""
    send_raw(redis, domain, encode(events), transport, prefix, maxlen)


def send_raw(redis, domain: str, payload: bytes | str, transport: Transport = "pubsub",
             prefix: str = DEFAULT_PREFIX, maxlen: int | None = 1_000_000) -> None:
    """Send an already encoded message as it is (valid or not) to a domain's feed."""
    name = feed_name(domain, prefix)
    if transport == "stream":
        # Approximate trimming keeps XADD O(1); consumers ack long before the cap.
        redis.xadd(name, {"data": payload}, maxlen=maxlen, approximate=True)
    else:
        redis.publish(name, payload)


def publish_many(redis, messages: Iterable[tuple[str, dict | list[dict]]], transport: Transport = "pubsub",
                 prefix: str = DEFAULT_PREFIX, maxlen: int | None = 1_000_000) -> int:
    """Send many ``(domain, events)`` messages in one pipeline round trip; return how many."""
    pipe = redis.pipeline(transaction=False)
    n = 0
    for domain, events in messages:
        send_raw(pipe, domain, encode(events), transport, prefix, maxlen)
        n += 1
    pipe.execute()
    return n
