"""The simulator's episodes trip the shipped Shenzhen rules through the real ingest path: a pollution episode,
a jam on Shennan Boulevard, a crowd at the Universiade Centre, a feed that dies; a quiet day trips none."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
from sqlalchemy import select

from dashboard.core.city import load_city
from dashboard.storage.events import EventStore
from dashboard.storage.models import alerts
from feeds.alerting import Evaluator
from feeds.consumers import StreamConsumer
from feeds.pipeline import Pipeline
from feeds.simulate import Simulator, _episode, batches, main
from feeds.publish import publish_many
from tests.helpers import wait_for

TZ = "Asia/Shanghai"
CITY = load_city("shenzhen")


def ingest(pg_engine, redis_client, redis_url, episodes, minutes: float = 14, start_ago: float = 15) -> Evaluator:
    """Publish ``minutes`` of a simulated evening (ending ``start_ago - minutes`` minutes ago) to the streams and
    let a real stream worker ingest it; return its evaluator."""
    start = datetime.now(ZoneInfo(TZ)) - timedelta(minutes=start_ago)
    sim = Simulator(CITY, rate=3, seed=7, start=start, episodes=episodes)
    events = sim.events_between(start, start + timedelta(minutes=minutes))
    evaluator = Evaluator(pg_engine, CITY, TZ)
    pipeline = Pipeline(EventStore(pg_engine, CITY), CITY.aliases, alerts=evaluator)
    worker = StreamConsumer(pipeline, lambda: redis_lib.Redis.from_url(redis_url), consumer="sim", flush_ms=50)
    with worker:
        publish_many(redis_client, batches(events), "stream")
        wait_for(lambda: worker.flushed >= len(events), timeout=60, message="the episode ingested")
    return evaluator


def firing(pg_engine) -> dict[str, dict]:
    with pg_engine.connect() as conn:
        rows = conn.execute(select(alerts).where(alerts.c.status == "firing")).mappings().all()
    return {f"{r['rule']}@{r['scope']}": dict(r) for r in rows}


def test_each_episode_trips_its_rule(pg_engine, redis_client, redis_url):
    evaluator = ingest(pg_engine, redis_client, redis_url,
                       [("pollution", 1, 20), ("jam", 1, 7), ("crowd", 1, 20), ("feed_down", 8, 20)])
    evaluator.tick(redis_client)
    got = firing(pg_engine)
    assert "aqi_moderate@district:440304" in got  # 福田: 170-230 for over 10 minutes
    assert "shennan_jam@zone:shennan_futian" in got  # under 15 km/h for over 5 minutes
    assert "crowd_universiade@zone:universiade_centre" in got  # dense reports, for over 2 minutes
    assert "feed_silent_traffic@city" in got  # nothing of the traffic feed for the last 6 minutes
    assert got["crowd_universiade@zone:universiade_centre"]["incident_id"] is not None  # it opens an incident
    # Nowhere else: the episodes' places alone.
    assert {k for k in got if k.startswith("aqi_")} <= {"aqi_moderate@district:440304", "aqi_heavy@district:440304"}
    assert not any(k.startswith("feed_silent_") and k != "feed_silent_traffic@city" for k in got), got


def test_a_quiet_evening_trips_no_rule(pg_engine, redis_client, redis_url):
    evaluator = ingest(pg_engine, redis_client, redis_url, [])
    evaluator.tick(redis_client)
    assert firing(pg_engine) == {}


def test_episodes_from_the_command_line(capsys):
    assert _episode("jam@5+15") == ("jam", 5.0, 15.0) and _episode("crowd") == ("crowd", 1.0, 20.0)
    for bad in ("flood", "jam@x", "jam@5+0"):
        with pytest.raises(SystemExit):
            main(["--episode", bad, "--duration", "0"])
        assert "episode" in capsys.readouterr().err


def test_a_dead_feed_publishes_nothing_while_it_is_dead():
    start = datetime(2026, 12, 6, 18, 0, tzinfo=ZoneInfo(TZ))
    sim = Simulator(CITY, rate=5, seed=3, start=start, episodes=[("feed_down", 2, 3)])
    minute = lambda m: Counter(d for d, _ in sim.events_between(start + timedelta(minutes=m),  # noqa: E731
                                                                start + timedelta(minutes=m + 1)))
    assert minute(1)["traffic"] > 0 and minute(3)["traffic"] == 0 and minute(6)["traffic"] > 0
    assert minute(3)["security"] > 0
