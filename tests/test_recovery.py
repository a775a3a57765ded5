"""Redis crashes mid-stream: ingest and health recover by themselves and the stream loses nothing."""

from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import func, select

from dashboard.core.city import load_city
from dashboard.storage.models import events, rollups
from dashboard.storage.events import EventStore
from feeds.consumers import StreamConsumer
from feeds.pipeline import Pipeline
from feeds.publish import publish
from tests.helpers import make_event, wait_for
from tests.tcp_proxy import TcpProxy


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def publish_with_retry(client: redis.Redis, domain: str, batch: list[dict], stop: threading.Event) -> None:
    """Publish like a well-behaved producer: retry until Redis takes the message."""
    while not stop.is_set():
        try:
            publish(client, domain, batch, transport="stream")
            return
        except (redis.ConnectionError, redis.TimeoutError):
            stop.wait(0.05)


def test_redis_restart_mid_stream_loses_nothing(redis_proc, pg_engine):
    n, per_message = 6000, 20
    pipeline = Pipeline(EventStore(pg_engine), load_city("shenzhen").aliases)
    connect = lambda: redis.Redis.from_url(redis_proc.url, socket_connect_timeout=0.5, socket_timeout=2)  # noqa: E731
    producer = connect()
    stop = threading.Event()
    half_sent = threading.Event()

    def produce():
        for start in range(0, n, per_message):
            publish_with_retry(producer, "environment",
                               [make_event(i, kind="aqi", value=float(i % 300)) for i in range(start, start + per_message)],
                               stop)
            if start >= n // 2:
                half_sent.set()
            stop.wait(0.002)  # a steady stream rather than one burst

    consumer = StreamConsumer(pipeline, connect, consumer="recovering", batch_size=200)
    with consumer:
        sender = threading.Thread(target=produce)
        sender.start()
        try:
            wait_for(lambda: stored(pg_engine) >= n // 4, timeout=60, message="a quarter stored before the crash")
            run_id = redis_proc.run_id()
            redis_proc.restart()
            assert redis_proc.run_id() != run_id  # a new server: every connection to the old one broke
            wait_for(half_sent.is_set, timeout=60, message="the producer goes on after the restart")
            wait_for(lambda: stored(pg_engine) == n, timeout=60, message=f"all {n} events stored")
            after = redis.Redis.from_url(redis_proc.url)
            wait_for(lambda: after.xpending("feeds:environment", "panorama-ingest")["pending"] == 0,
                     timeout=30, message="everything acknowledged")
        finally:
            stop.set()
            sender.join(10)
    assert stored(pg_engine) == n
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.sum(rollups.c.n))).scalar_one() == n


def test_health_degraded_while_redis_down_and_ok_after(redis_proc, make_app):
    app = make_app(REDIS_URL=redis_proc.url)
    client = app.server.test_client()
    ok = client.get("/api/health")
    assert ok.status_code == 200 and ok.json["status"] == "ok" and ok.json["redis"] == "ok"
    redis_proc.stop()
    down = client.get("/api/health")
    assert down.status_code == 503
    assert down.json["status"] == "degraded" and down.json["redis"].startswith("unreachable")
    assert down.json["database"] == "ok" and set(down.json["feeds"]) == {"security", "traffic", "environment",
                                                                         "incident"}
    redis_proc.start()
    back = wait_for(lambda: (r := client.get("/api/health")).status_code == 200 and r, timeout=15,
                    message="health ok again")
    assert back.json["status"] == "ok"


def test_pubsub_consumer_resubscribes_after_redis_restart(redis_proc, pg_engine):
    from feeds.consumers import PubSubConsumer

    pipeline = Pipeline(EventStore(pg_engine), load_city("shenzhen").aliases)
    connect = lambda: redis.Redis.from_url(redis_proc.url, socket_connect_timeout=0.5, socket_timeout=2)  # noqa: E731
    producer = connect()
    consumer = PubSubConsumer(pipeline, connect)
    with consumer:
        wait_for(lambda: producer.pubsub_numsub("feeds:security")[0][1] == 1, message="subscribed")
        publish(producer, "security", [make_event(i, kind="theft") for i in range(50)])
        wait_for(lambda: stored(pg_engine) == 50, message="first 50 stored")
        run_id = redis_proc.run_id()
        redis_proc.restart()
        assert redis_proc.run_id() != run_id
        producer = connect()
        wait_for(lambda: producer.pubsub_numsub("feeds:security")[0][1] == 1, timeout=30,
                 message="subscribed again after the restart")
        publish(producer, "security", [make_event(i, kind="theft") for i in range(50, 100)])
        wait_for(lambda: stored(pg_engine) == 100, message="events after the restart stored")


@pytest.mark.parametrize("transport", ["pubsub", "stream"])
def test_database_outage_holds_events_and_writes_them_after(transport, pg_url, pg_engine, redis_client, redis_url):
    from sqlalchemy.engine import make_url

    from dashboard.storage.db import make_engine
    from feeds.consumers import PubSubConsumer

    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                         connect_args={"connect_timeout": 2})
    pipeline = Pipeline(EventStore(engine), load_city("shenzhen").aliases)
    connect = lambda: redis.Redis.from_url(redis_url)  # noqa: E731
    consumer = (PubSubConsumer(pipeline, connect) if transport == "pubsub"
                else StreamConsumer(pipeline, connect, consumer="outage"))
    try:
        with consumer:
            wait_for(consumer.connected.is_set, message="connected")
            wait_for(lambda: transport == "stream" or redis_client.pubsub_numsub("feeds:traffic")[0][1] == 1,
                     message="subscribed")
            publish(redis_client, "traffic", [make_event(i) for i in range(100)], transport=transport)
            wait_for(lambda: stored(pg_engine) == 100, message="first events stored")
            proxy.cut()
            for start in range(100, 600, 100):  # published while the database is unreachable
                publish(redis_client, "traffic", [make_event(i) for i in range(start, start + 100)],
                        transport=transport)
            wait_for(lambda: not consumer.database_ok.is_set(), timeout=30, message="the outage noticed")
            assert stored(pg_engine) == 100
            proxy.restore()
            wait_for(lambda: stored(pg_engine) == 600, timeout=30, message="held events written after the outage")
            wait_for(consumer.database_ok.is_set, message="database ok again")
        assert consumer.dropped == 0
        with pg_engine.connect() as conn:
            assert conn.execute(select(func.sum(rollups.c.n))).scalar_one() == 600
    finally:
        proxy.close()
        engine.dispose()


def test_pubsub_holds_at_most_its_limit_while_the_database_is_down_and_counts_the_rest_in_events(
        pg_url, pg_engine, redis_client, redis_url):
    from sqlalchemy.engine import make_url

    from dashboard.storage.db import make_engine
    from feeds.consumers import DROPPED_KEY, PubSubConsumer

    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                         connect_args={"connect_timeout": 2})
    consumer = PubSubConsumer(Pipeline(EventStore(engine), load_city("shenzhen").aliases),
                              lambda: redis.Redis.from_url(redis_url), batch_size=100, hold_limit=100)
    try:
        with consumer:
            wait_for(lambda: redis_client.pubsub_numsub("feeds:traffic")[0][1] == 1, message="subscribed")
            proxy.cut()
            publish(redis_client, "traffic", [make_event(i) for i in range(10)])
            wait_for(lambda: not consumer.database_ok.is_set(), timeout=30, message="the outage noticed")
            for start in range(10, 300, 10):  # 29 more messages of 10 events each
                publish(redis_client, "traffic", [make_event(i) for i in range(start, start + 10)])
            wait_for(lambda: consumer.dropped == 200, timeout=30, message="200 events beyond the limit dropped")
            assert int(redis_client.hget(DROPPED_KEY, "traffic")) == 200  # events, not messages
            proxy.restore()
            wait_for(lambda: stored(pg_engine) == 100, timeout=30, message="the 100 held events written")
    finally:
        proxy.close()
        engine.dispose()
