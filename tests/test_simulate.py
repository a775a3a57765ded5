"""Test the simulator: a seeded, valid, realistic day, published to and replayed into a real Redis."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from dashboard.core.city import load_city
from feeds import scenario
from dashboard.core.channels import DOMAINS, feed_name
from feeds.schema import MAX_MESSAGE_BYTES, parse_message
from feeds.simulate import Simulator, batches, main, replay

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 26, tzinfo=TZ)
CJK = re.compile(r"[\u4e00-\u9fff]")


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll predicate until it returns a truthy value or timeout seconds pass; return that value."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        pause.wait(interval)


@pytest.fixture(scope="module")
def city():
    """Load the Shenzhen pack once for the module."""
    return load_city("shenzhen")


@pytest.fixture(scope="module")
def day(city):
    """Give one whole simulated day at a low rate (about 43,000 events)."""
    sim = Simulator(city, rate=0.5, seed=7)
    return sim, sim.events_between(DAY, DAY + timedelta(days=1))


def hour_of(event: dict) -> int:
    return datetime.fromisoformat(event["ts"]).hour


def test_same_seed_same_events_however_time_is_cut(city):
    t0, t1, t2 = DAY + timedelta(hours=8), DAY + timedelta(hours=8, minutes=2, seconds=17.5), DAY + timedelta(hours=8, minutes=9)
    a = Simulator(city, rate=5, seed=42).events_between(t0, t2)
    b = Simulator(city, rate=5, seed=42)
    assert a and a == b.events_between(t0, t1) + b.events_between(t1, t2)
    assert a != Simulator(city, rate=5, seed=43).events_between(t0, t2)
    assert all(t0 <= datetime.fromisoformat(e["ts"]) < t2 for _, e in a)
    assert Simulator(city, rate=5, seed=42).events_between(t2, t0) == []


def test_every_event_is_valid_in_messages_under_the_limit(city, day):
    _, events = day
    total = 0
    for domain, batch in batches(events):
        raw = orjson.dumps(batch)
        assert len(raw) <= MAX_MESSAGE_BYTES
        parsed = parse_message(raw, domain, city.aliases)
        assert parsed.rejects == []
        total += len(parsed.events)
    assert total == len(events)
    ids = [e["id"] for _, e in events]
    assert len(set(ids)) == len(ids) and all(i.startswith("sim-7-") for i in ids)
    assert all(e["ts"].endswith("+08:00") for _, e in events)
    assert {d for d, _ in events} == set(DOMAINS)
    kinds = {e["kind"] for _, e in events}
    assert {k.kind for k in scenario.KINDS} - kinds <= {"building_collapse"}  # rare by design


def test_traffic_peaks_at_rush_hour(day):
    _, events = day
    traffic = Counter(hour_of(e) for d, e in events if d == "traffic")
    assert traffic[8] > 5 * traffic[3]
    assert traffic[18] > 5 * traffic[3]
    congestion = {h: [e["value"] for _, e in events if e["kind"] == "congestion" and hour_of(e) == h] for h in (3, 8)}
    assert sum(congestion[8]) / len(congestion[8]) > sum(congestion[3]) / len(congestion[3]) + 3
    assert all(1.0 <= v <= 10.0 for v in congestion[8] + congestion[3])


def test_big_districts_get_more_events_than_yantian(day):
    _, events = day
    by_district = Counter(e["district"] for _, e in events)
    assert by_district["440304"] > by_district["440308"] and by_district["440306"] > 3 * by_district["440308"]
    assert set(by_district) == {d for d in scenario.ROADS}


def test_titles_are_chinese_and_name_real_roads(city, day):
    _, events = day
    assert all(CJK.search(e["title"]) for _, e in events)
    for _, e in events:
        if e["kind"] == "congestion":
            assert any(e["title"].startswith(road) for road in scenario.ROADS[e["district"]])
        if "street" in e and e["kind"] != "crowd_density":
            assert e["street"] in {s.name for s in city.by_code[e["district"]].streets}


def test_several_callers_report_the_same_fire(day):
    _, events = day
    fires = [e for _, e in events if e["kind"] == "fire"]
    groups = Counter((e["district"], e["street"], e["title"][:len(e["street"]) + 3]) for e in fires)
    (district, street, _), n = groups.most_common(1)[0]
    assert n >= 2
    same = [e for e in fires if (e["district"], e["street"]) == (district, street)]
    times = sorted(datetime.fromisoformat(e["ts"]) for e in same)
    assert any(b - a <= timedelta(minutes=6) for a, b in zip(times, times[1:]))


def test_rainstorm_brings_rain_floods_and_river_warnings(city):
    sim = Simulator(city, rate=1.5, seed=11)
    storm = sim.storm(DAY.date())
    assert DAY + timedelta(hours=13) <= storm.start < storm.end <= DAY + timedelta(hours=19)
    during = sim.events_between(storm.start, storm.end + timedelta(hours=1))
    floods = [e for _, e in during if e["kind"] == "flood"]
    assert len(floods) >= 5 and all(e["severity"] >= 2 for e in floods)
    assert any(e["kind"] == "water_level" and e["severity"] == 3 for _, e in during)
    assert max(e["value"] for _, e in during if e["kind"] == "rainfall") > 30
    before = sim.events_between(DAY + timedelta(hours=9), DAY + timedelta(hours=10))
    assert not [e for _, e in before if e["kind"] in ("flood", "rainfall")]


def test_run_publishes_to_streams(city, redis_client):
    sim = Simulator(city, rate=20, speed=60, seed=1, start=DAY + timedelta(hours=8, minutes=30))
    n = sim.run(redis_client, threading.Event(), transport="stream", prefix="feeds", duration=0.5, tick=0.1)
    assert n > 200
    stored = 0
    for domain in DOMAINS:
        assert redis_client.xlen(feed_name(domain)) > 0
        for _, fields in redis_client.xrange(feed_name(domain)):
            parsed = parse_message(fields[b"data"], domain, city.aliases)
            assert parsed.rejects == []
            stored += len(parsed.events)
    assert stored == n


def test_run_publishes_to_pubsub(city, redis_client):
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(feed_name(d, "simps") for d in DOMAINS))
    assert wait_for(lambda: len(redis_client.pubsub_channels("simps:*")) == len(DOMAINS))
    stop = threading.Event()
    sim = Simulator(city, rate=20, speed=30, seed=2, start=DAY + timedelta(hours=18))
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("n", sim.run(redis_client, stop, prefix="simps", tick=0.05)))
    worker.start()
    received = []

    def got_some() -> bool:
        while (message := pubsub.get_message(timeout=0.01)) is not None:
            received.append(message)
        return len(received) >= 4

    try:
        assert wait_for(got_some, timeout=30)  # a loaded CI machine may take a while to schedule the publisher
    finally:
        stop.set()
        worker.join(5)
        pubsub.close()
    assert not worker.is_alive() and result["n"] > 0
    message = received[0]
    domain = message["channel"].decode().split(":", 1)[1]
    assert parse_message(message["data"], domain, city.aliases).events


def test_dump_then_replay(city, redis_client, tmp_path, capsys):
    path = tmp_path / "day.jsonl"
    assert main(["--dump", str(path), "--duration", "2", "--speed", "30", "--seed", "5",
                 "--start", "2026-11-26T08:00:00"]) == 0
    assert "dumped" in capsys.readouterr().out
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) > 100 and all(e["domain"] in DOMAINS for e in lines)
    assert replay(redis_client, path, transport="stream", prefix="replay", speed=0) == len(lines)
    ids = set()
    for domain in DOMAINS:
        for _, fields in redis_client.xrange(feed_name(domain, "replay")):
            ids.update(e.id for e in parse_message(fields[b"data"], domain, city.aliases).events)
    assert ids == {e["id"] for e in lines}


def test_replay_keeps_relative_timing_and_stops(redis_client, tmp_path):
    path = tmp_path / "two.jsonl"
    first = {"id": "a", "ts": "2026-11-26T08:00:00+08:00", "domain": "traffic", "kind": "speed", "district": "futian"}
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in (first, dict(first, id="b", ts="2026-11-26T08:00:30+08:00"))))
    started = time.monotonic()
    assert replay(redis_client, path, transport="stream", prefix="timed", speed=100) == 2  # 30 s / 100
    assert time.monotonic() - started >= 0.29
    stop = threading.Event()
    stop.set()
    assert replay(redis_client, path, transport="stream", prefix="stopped", speed=1, stop=stop) == 0


def test_main_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--rate" in out and "--replay" in out and "--dump" in out


def test_main_runs_for_a_duration(redis_url, redis_client, capsys):
    assert main(["--redis-url", redis_url, "--duration", "0.3", "--speed", "60", "--seed", "1",
                 "--transport", "stream", "--prefix", "cli", "--start", "2026-11-26T12:00:00+08:00"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("simulating Shenzhen") and out[-1].startswith("published")
    assert redis_client.xlen("cli:traffic") > 0
