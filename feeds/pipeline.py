"""Turn raw feed messages into stored events, dead letters, counters and a published delta."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping

import msgspec
import orjson
import redis

from dashboard.core.clock import now_ms  # noqa: F401 (ingest's receiver clock; still imported from here)
from dashboard.core import messages
from dashboard.core.clock import DAY_MS
from dashboard.storage import units as unit_store
from dashboard.storage.events import EventStore, WriteResult
from dashboard.storage.partitions import Retention
from dashboard.storage.services import Services
from dashboard.core.channels import (
    DEFAULT_PREFIX,
    UNITS,
    UPDATES_CHANNEL,
    deadletter_key,
    units_feed,
    folded_counts_key,
    ingested_counts_key,
    reject_counts_key,
)
from feeds.alerting import Evaluator, Reconciler
from feeds.schema import MAX_CLOCK_SKEW_MS, Event, Reject, parse_message
from feeds.unit_schema import UnitReport, parse_units

log = logging.getLogger(__name__)
LAG_KEY = "panorama:ingest:lag_ms"


@dataclass
class Batch:
    """Events and rejects gathered since the last flush, with what must be acknowledged after it."""

    events: list[Event] = field(default_factory=list)
    units: list[UnitReport] = field(default_factory=list)  # reports of feeds:units
    rejects: list[tuple[str, Reject]] = field(default_factory=list)
    acks: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)  # (stream, group) -> ids
    oldest_ms: dict[str, int] = field(default_factory=dict)
    started: float = 0.0

    def __len__(self) -> int:
        return len(self.events) + len(self.units) + len(self.rejects)


class Pipeline:
    """Validate, dedupe, store and announce feed messages; shared by every transport."""

    def __init__(self, store: EventStore, districts: Mapping[str, str], *, prefix: str = DEFAULT_PREFIX,
                 deadletter_cap: int = 10_000, tz: str | None = None, retention: Retention | None = None,
                 alerts: Evaluator | None = None, reconcile_in_background: bool = False):
        self.store = store
        # The city's alert rules, fed from each batch's new events in the batch's own transaction (None: none).
        self.alerts = alerts if alerts is not None and alerts.active else None
        # The alerts a batch touched are reconciled after its commit: in this thread (tests, pure callers), or
        # in one of the pipeline's own so the next batch need not wait for it (the worker: make_pipeline).
        self.reconciler = Reconciler(self.alerts) if self.alerts is not None and reconcile_in_background else None
        # None: keep any age (pure callers, tests); make_pipeline passes the configured retention.
        self.retention = retention
        self.districts = districts
        self.prefix = prefix
        self.deadletter_cap = deadletter_cap
        # the city's zone: incidents' opened_at is RFC 3339 with its offset, as in the API
        self.tz = tz or store.city.timezone

    def add(self, batch: Batch, channel: str, domain: str | None, raw: bytes | str, arrived_ms: int,
            received_ms: int | None = None) -> None:
        """Parse one message into the batch; ``received_ms`` is the clock ts may not run ahead of.

        By default it is the later of this host's clock and the message's arrival (a stream entry's id is
        Redis's clock when it was added): an event the API took within the allowed skew is not turned away
        here because this host's clock runs behind the API's. An entry id is the publisher's to choose,
        so it is trusted only up to the allowed skew.
        """
        if not batch.started:  # the batch's first message (a new Batch has not started; not len(): 3 calls)
            batch.started = time.monotonic()
        if received_ms is None:
            now = now_ms()
            received_ms = max(now, min(arrived_ms, now + MAX_CLOCK_SKEW_MS))
        oldest = None if self.retention is None else self.retention.events_cutoff_ms(received_ms)
        if domain == UNITS:
            reports = parse_units(raw, {"received_ms": received_ms, "oldest_ms": oldest})
            batch.units.extend(reports.reports)
            batch.rejects.extend((channel, r) for r in reports.rejects)
            if reports.reports:
                batch.oldest_ms[UNITS] = min(batch.oldest_ms.get(UNITS, arrived_ms), arrived_ms)
            return
        parsed = parse_message(raw, domain, self.districts, received_ms, oldest_ms=oldest)
        batch.events.extend(parsed.events)
        batch.rejects.extend((channel, r) for r in parsed.rejects)
        if domain is not None and parsed.events:
            batch.oldest_ms[domain] = min(batch.oldest_ms.get(domain, arrived_ms), arrived_ms)

    def flush(self, batch: Batch, bus: redis.Redis) -> WriteResult:
        """Store the batch, then in one round trip dead letters, counters, lag and stream acks; then the delta."""
        received = now_ms()
        touched: dict = {}
        also = None
        if self.alerts is not None:
            def also(conn, stored, at_ms):
                touched.clear()  # a retried transaction starts again
                touched.update(self.alerts.record(conn, stored, at_ms))
        result = self.store.write(batch.events, received, also) if batch.events else WriteResult()
        units = self.write_units(batch, received)
        pipe = bus.pipeline(transaction=False)
        self.dead_letters(pipe, batch.rejects, received)
        counts = Counter(s.event.domain for s in result.stored)
        for domain, n in counts.items():
            pipe.hincrby(ingested_counts_key(self.prefix), domain, n)
        if units:
            pipe.hincrby(ingested_counts_key(self.prefix), UNITS, len(units))
        for (domain, what), n in result.folded.items():
            pipe.hincrby(folded_counts_key(self.prefix), f"{domain}|{what}", n)
        for domain, oldest in batch.oldest_ms.items():
            pipe.hset(LAG_KEY, domain, received - oldest)
        for (stream, group), ids in batch.acks.items():
            pipe.xack(stream, group, *ids)
        pipe.execute()
        if result.stored or result.incidents or units:
            # Not in the pipeline: redis-py refuses PUBLISH in a cluster's. After the acks, so a worker that
            # dies in between loses one live delta (the gateways' next state build shows it), never an event.
            bus.publish(UPDATES_CHANNEL, batch_delta(result, received, self.tz, units))
        if touched and self.reconciler is not None:
            self.reconciler.submit(dict(touched), bus)
        elif touched:
            try:
                self.alerts.after_batch(touched, bus)
            except Exception:  # noqa: BLE001 - the events are stored and acknowledged; the alert tick redoes this
                log.exception("alert evaluation after a batch failed; the next tick reconciles")
        return result

    def write_units(self, batch: Batch, received_ms: int) -> list[dict]:
        """Fold the batch's unit reports into the units' latest state; a report the fleet refuses (an unknown unit
        without a department, a department not its unit's) joins the batch's rejects. Return the changed units."""
        if not batch.units:
            return []
        if self.store.postgres:  # the track's day partitions, made on demand like the events'
            self.store.ensure_days({r.ts_ms // DAY_MS for r in batch.units})
        departments = {d["code"] for d in self.store.city.departments}
        with self.store.engine.begin() as conn:
            applied = unit_store.apply_reports(conn, batch.units, departments, received_ms)
        channel = units_feed(self.prefix)
        for i, reason, message in applied.refused:
            batch.rejects.append((channel, Reject.of(reason, message, msgspec.json.encode(batch.units[i]))))
        return applied.changed

    def dead_letters(self, pipe, rejects: list[tuple[str, Reject]], at_ms: int) -> None:
        """Queue each reject on the capped dead-letter list and its counter, on a Redis pipeline.

        An entry keeps a bounded prefix of the payload with its length and hash (``Reject.of``), so the
        list is capped in bytes as well as in entries.
        """
        if not rejects:
            return
        key = deadletter_key(self.prefix)
        for channel, rej in rejects:
            domain = channel.rpartition(":")[2] or "unknown"
            pipe.lpush(key, orjson.dumps({"reason": rej.reason, "message": rej.message, "channel": channel,
                                          "index": rej.index, "at": at_ms, "payload": rej.payload,
                                          "payload_bytes": rej.size, "payload_sha256": rej.sha256}))
            pipe.hincrby(reject_counts_key(self.prefix), f"{domain}|{rej.reason}", 1)
        pipe.ltrim(key, 0, self.deadletter_cap - 1)
        log.info("rejected %d message(s): %s", len(rejects),
                 ", ".join(f"{r}={n}" for r, n in Counter(r.reason for _, r in rejects).items()))


def _delta_event(stored) -> messages.DeltaEvent:
    e = stored.event
    view = messages.event_view(e.domain, e.id, stored.ts_ms, e.kind, e.district, e.street, e.severity, e.title,
                               e.value, e.unit)
    # The place too, for other subscribers of panorama:updates; the gateway's screens keep only the view.
    return {**view, "lat": e.lat, "lon": e.lon}


def batch_delta(result: WriteResult, at_ms: int, tz: str, units: list[dict] | None = None) -> bytes:
    """Encode what a batch changed as a ``panorama:updates`` delta (dashboard.core.messages); ``units``: the units
    its reports changed, one each (the latest report of a unit wins: coalesced)."""
    newest = result.stored[-messages.DELTA_EVENTS:]
    return messages.encode_delta(
        at_ms, stored=len(result.stored), events=[_delta_event(s) for s in reversed(newest)],
        counts=[[*k, *v] for k, v in sorted(result.counts.items())], feeds=result.feeds,
        incidents=[messages.incident_view(i, tz, domain=True) for i in result.incidents],
        units=[messages.unit_view(u, tz) for u in units] if units else None)


def make_pipeline(services: Services) -> Pipeline:
    """Return the ingest pipeline bound to a process's store and city."""
    cfg = services.config
    return Pipeline(EventStore(services.engine, services.city), services.city.aliases,
                    prefix=cfg["PANORAMA_FEED_PREFIX"], deadletter_cap=cfg["PANORAMA_DEADLETTER_CAP"],
                    tz=cfg["PANORAMA_TZ"], retention=Retention.from_config(cfg),
                    alerts=Evaluator(services.engine, services.city, cfg["PANORAMA_TZ"], clock=services.clock),
                    reconcile_in_background=True)
