"""Two real ingest worker processes (``python -m feeds.ingest``) on the same streams and channels: one alert per
rule and place, each change made once, whichever worker stored the events and whichever ticker ran."""

from __future__ import annotations

import os
import sys

import pytest
from sqlalchemy import select

from dashboard.core.channels import feed_name
from dashboard.storage.models import alert_events, alerts
from feeds.publish import publish
from tests.helpers import make_event, wait_for
from tests.test_alerts import MIN, aqi, now_ms, pack


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


@pytest.mark.timeout(180)
def test_two_ingest_worker_processes_make_one_alert_and_fire_it_once(pg_url, pg_engine, redis_url, redis_client,
                                                                     tmp_path, procs):
    city = pack(tmp_path)
    env = _env(REDIS_URL=redis_url, DATABASE_URL=pg_url, PANORAMA_CITY=str(city.path))
    for name in ("w1", "w2"):
        procs.start(name, [sys.executable, "-m", "feeds.ingest", "--consumer", name], env)
    wait_for(lambda: all(redis_client.pubsub_numsub(feed_name(d))[0][1] >= 2 for d in ("environment", "security")),
             timeout=60, message="both workers subscribed")
    now = now_ms()
    # Due 4 s from now: a batch opens it pending, and a worker's ticker (whichever holds the lease) fires it.
    readings = [aqi(1, 180, now - 10 * MIN + 4000), aqi(2, 185, now - 5 * MIN), aqi(3, 182, now)]
    fights = [make_event(10 + i, kind="fight", district="luohu", ts=now - i * 1000, severity=2) for i in range(5)]
    for domain, evs in (("environment", readings), ("security", fights)):
        for ev in evs:  # each event both ways: both workers hear the channel, one of them reads each stream entry
            publish(redis_client, domain, ev, transport="stream")
            publish(redis_client, domain, ev)

    def firing():
        with pg_engine.connect() as conn:
            return conn.execute(select(alerts.c.rule, alerts.c.scope).where(alerts.c.status == "firing")).all()
    got = wait_for(lambda: len(firing()) == 2 and firing(), timeout=60, message="both alerts firing")
    assert sorted(got) == [("aqi_high", "district:440304"), ("fights", "district:440303")]
    with pg_engine.connect() as conn:
        every = conn.execute(select(alerts.c.id, alerts.c.rule, alerts.c.value)).all()
        trail = conn.execute(select(alert_events.c.alert_id, alert_events.c.code)).all()
    assert len(every) == 2  # one alert per rule and place, never a second
    by_rule = {r.rule: r for r in every}
    assert by_rule["fights"].value == 5  # each fight counted once, whichever worker stored it
    codes = sorted(c for _id, c in trail if _id == by_rule["aqi_high"].id and not c.startswith("esc_"))
    assert codes == ["alert_firing", "alert_pending"]  # opened once, fired once (by one ticker)
    assert [c for _id, c in trail if _id == by_rule["fights"].id and not c.startswith("esc_")] == ["alert_firing"]
    for rule in ("aqi_high", "fights"):  # and its duty escalation started once: one ladder (2 or 3 rounds of 3)
        assert sum(c == "esc_step" for _id, c in trail if _id == by_rule[rule].id) in (6, 9), trail
    assert procs.dead() == []
