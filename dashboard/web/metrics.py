"""Expose Prometheus metrics gathered from the shared state, so every worker reports the same city."""

from __future__ import annotations

import redis
from flask import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from dashboard.core.bus import BUS_DOWN
from dashboard.core.channels import CLIENTS_KEY_PREFIX
from dashboard.storage.queries import feed_freshness
from dashboard.storage import outbox as outbox_store
from dashboard.storage.models import alerts, outbox, outbox_attempts, tasks
from dashboard.storage.services import Services
from dashboard.core.channels import (
    INGEST_GROUP,
    deadletter_key,
    ingest_channels,
    folded_counts_key,
    ingested_counts_key,
    reject_counts_key,
)
from feeds.consumers import DROPPED_KEY
from feeds.pipeline import LAG_KEY


class PanoramaCollector:
    """Collect counters that ingest workers keep in Redis and freshness kept in SQL, at scrape time."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        svc = self.services
        prefix = svc.config["PANORAMA_FEED_PREFIX"]
        up_redis = GaugeMetricFamily("panorama_redis_up", "1 when Redis answers")
        up_db = GaugeMetricFamily("panorama_database_up", "1 when the database answers")
        try:
            yield from self._from_redis(svc.redis, prefix)
            up_redis.add_metric([], 1)
        except BUS_DOWN:
            up_redis.add_metric([], 0)
        try:
            with svc.engine.connect() as conn:
                fresh = feed_freshness(conn, svc.clock(), svc.config["PANORAMA_STALE_AFTER"])
                breaches = conn.execute(select(tasks.c.department, func.count()).where(tasks.c.escalated)
                                        .group_by(tasks.c.department)).all()
                open_alerts = conn.execute(select(alerts.c.level, alerts.c.status, func.count()).where(
                    alerts.c.status != "resolved").group_by(alerts.c.level, alerts.c.status)).all()
                told = conn.execute(select(outbox.c.channel, outbox.c.status, func.count())
                                    .group_by(outbox.c.channel, outbox.c.status)).all()
                tries = conn.execute(select(outbox.c.channel, outbox_attempts.c.ok, func.count())
                                     .select_from(outbox_attempts.join(outbox))
                                     .group_by(outbox.c.channel, outbox_attempts.c.ok)).all()
                waiting = outbox_store.summary(conn, svc.clock())["oldest_pending_s"]
            sla = CounterMetricFamily("panorama_dispatch_sla_breaches",
                                      "tasks whose acknowledge or resolve deadline passed, by department",
                                      labels=["department"])
            for department, n in sorted(breaches):
                sla.add_metric([department], n)
            yield sla
            age = GaugeMetricFamily("panorama_feed_last_event_age_seconds",
                                    "seconds since the newest event of each domain arrived", labels=["domain"])
            for domain, f in fresh.items():
                if f["last_event_age_s"] is not None:
                    age.add_metric([domain], f["last_event_age_s"])
            yield age
            alerting = GaugeMetricFamily("panorama_alerts_open", "alerts not resolved, by level and status",
                                         labels=["level", "status"])
            for level, status, n in sorted(open_alerts):
                alerting.add_metric([level, status], n)
            yield alerting
            notes = GaugeMetricFamily("panorama_notifications", "notifications in the outbox, by channel and status",
                                      labels=["channel", "status"])
            for channel, status, n in sorted(told):
                notes.add_metric([channel, status], n)
            yield notes
            sends = CounterMetricFamily("panorama_notification_attempts",
                                        "tries to deliver a notification, by channel and outcome",
                                        labels=["channel", "outcome"])
            for channel, ok, n in sorted(tries, key=lambda r: (r[0], bool(r[1]))):
                sends.add_metric([channel, "ok" if ok else "failed"], n)
            yield sends
            oldest = GaugeMetricFamily("panorama_notifications_oldest_pending_seconds",
                                       "age of the oldest notification not yet delivered (0: none waiting)")
            oldest.add_metric([], waiting or 0)
            yield oldest
            up_db.add_metric([], 1)
        except SQLAlchemyError:
            up_db.add_metric([], 0)
        yield up_redis
        yield up_db

    def _from_redis(self, client: redis.Redis, prefix: str):
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(ingested_counts_key(prefix))
        pipe.hgetall(reject_counts_key(prefix))
        pipe.hgetall(LAG_KEY)
        pipe.hgetall(DROPPED_KEY)
        pipe.llen(deadletter_key(prefix))
        pipe.hgetall(folded_counts_key(prefix))
        ingested, rejected, lag, dropped, letters, folded = pipe.execute()
        d = CounterMetricFamily("panorama_ingest_dropped", "pub/sub events lost to a long database outage",
                                labels=["domain"])
        for domain, n in sorted(dropped.items()):
            d.add_metric([domain.decode()], int(n))
        yield d
        c = CounterMetricFamily("panorama_events_ingested", "events stored, by domain", labels=["domain"])
        for domain, n in sorted(ingested.items()):
            c.add_metric([domain.decode()], int(n))
        yield c
        r = CounterMetricFamily("panorama_events_rejected", "messages or events rejected, by domain and reason",
                                labels=["domain", "reason"])
        for key, n in sorted(rejected.items()):
            domain, _, reason = key.decode().partition("|")
            r.add_metric([domain, reason], int(n))
        yield r
        kept = GaugeMetricFamily("panorama_deadletter_entries",
                                 "rejects kept in the dead-letter list (capped; older ones are only counted)")
        kept.add_metric([], letters)
        yield kept
        f = CounterMetricFamily("panorama_rollup_folded",
                                "events stored whose street or kind the city pack does not know, counted under "
                                "'other' in the rollups, by domain and field", labels=["domain", "field"])
        for key, n in sorted(folded.items()):
            domain, _, what = key.decode().partition("|")
            f.add_metric([domain, what], int(n))
        yield f
        g = GaugeMetricFamily("panorama_ingest_lag_seconds",
                              "time from arrival in Redis to commit in SQL, last batch", labels=["domain"])
        for domain, ms in sorted(lag.items()):
            g.add_metric([domain.decode()], int(ms) / 1000)
        yield g
        backlog = GaugeMetricFamily("panorama_ingest_backlog", "stream entries not yet delivered to ingest",
                                    labels=["stream"])
        for stream in ingest_channels(prefix):
            for group in _groups(client, stream):
                if group.get("name") in (INGEST_GROUP, INGEST_GROUP.encode()) and group.get("lag") is not None:
                    backlog.add_metric([stream], int(group["lag"]))
        yield backlog
        w = GaugeMetricFamily("panorama_websocket_clients", "browsers connected to the gateways")
        w.add_metric([], gateway_clients(client))
        yield w


def gateway_clients(client: redis.Redis) -> int:
    """Sum the client counts of the live gateways: each keeps its own key with a TTL, so a dead one drops out."""
    # SCAN visits every master of a cluster; the GETs go in a pipeline, not one MGET, which a cluster refuses
    # for keys in different slots.
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(match=CLIENTS_KEY_PREFIX + "*", count=100):
        pipe.get(key)
    return sum(int(n) for n in pipe.execute() if n is not None)


def _groups(client: redis.Redis, stream: str) -> list[dict]:
    try:
        return client.xinfo_groups(stream)
    except redis.ResponseError:
        return []  # no such stream yet


def init_app(server, services: Services) -> None:
    """Serve ``/metrics`` from a registry of this app's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PanoramaCollector(services))

    def metrics():
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    server.add_url_rule("/metrics", "metrics", metrics)
