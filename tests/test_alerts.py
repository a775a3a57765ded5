"""Early warning: each rule type fires and resolves through the real ingest path (Redis streams and pub/sub into
PostgreSQL, SQLite where the code differs), one alert however many workers, the lifecycle, silences and mutes."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis as redis_lib
from sqlalchemy import func, select

from dashboard.core.channels import UPDATES_CHANNEL, feed_name
from dashboard.core.city import PACKS_DIR, load_city
from dashboard.core.errors import Conflict, NotFound, Unprocessable
from dashboard.storage import alerts as store
from dashboard.storage.events import EventStore
from dashboard.storage.models import alert_events, alerts, incidents
from feeds.alerting import AlertTicker, Evaluator
from feeds.consumers import PubSubConsumer, StreamConsumer
from feeds.pipeline import Pipeline
from feeds.publish import publish
from tests.helpers import make_event, wait_for

TZ = "Asia/Shanghai"
MIN = 60_000
# Inside the Universiade Centre zone, and outside every zone.
STADIUM = {"lat": 22.6970, "lon": 114.2140}
ELSEWHERE = {"lat": 22.6500, "lon": 114.1000}

RULES = """\
rules:
  - id: aqi_high
    type: threshold
    level: orange
    scope: district
    kind: aqi
    op: ">"
    value: 150
    for: PT10M
    say: {zh: "{place}空气质量指数 {value}", en: "{place}: AQI {value}"}
  - id: fights
    type: rate
    level: yellow
    scope: district
    kind: fight
    count: 3
    window: PT30M
    say: {zh: "{place} {value} 起打架", en: "{place}: {value} fights"}
  - id: stadium_crowd
    type: geofence
    level: red
    scope: zone
    zone: universiade_centre
    kind: crowd_density
    op: ">="
    value: 3.0
    count: 3
    window: PT5M
    opens_incident: true
    say: {zh: "{place}人群密度告警 {value} 次", en: "{place}: {value} crowd reports"}
  - id: security_silent
    type: silence
    level: yellow
    scope: city
    domain: security
    gap: PT1M
    say: {zh: "治安数据源 {value} 分钟无数据", en: "security feed silent for {value} min"}
"""


def pack(tmp_path, rules: str = RULES):
    """Return a copy of the Shenzhen pack with ``rules`` as its alerts.yaml."""
    path = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", path)
    (path / "alerts.yaml").write_text(rules, encoding="utf-8")
    return load_city(str(path))


def now_ms() -> int:
    return int(time.time() * 1000)


def aqi(n: int, value: float, at_ms: int, district: str = "futian") -> dict:
    return make_event(n, kind="aqi", district=district, ts=at_ms, value=value, unit="AQI")


def rows(engine, *where) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(alerts).where(*where).order_by(alerts.c.id)).mappings()]


def codes(engine, alert_id: int) -> list[str]:
    """Return an alert's audit codes, oldest first, without its duty escalation's (tests/test_roster_escalation.py)."""
    with engine.connect() as conn:
        return [r.code for r in conn.execute(select(alert_events.c.code).where(alert_events.c.alert_id == alert_id)
                                             .order_by(alert_events.c.id)) if not r.code.startswith("esc_")]


@pytest.fixture
def city(tmp_path):
    return pack(tmp_path)


@pytest.fixture
def evaluator(pg_engine, city):
    return Evaluator(pg_engine, city, TZ)


@pytest.fixture
def pipeline(pg_engine, city, evaluator):
    return Pipeline(EventStore(pg_engine, city), city.aliases, alerts=evaluator)


@pytest.fixture
def updates(redis_client):
    """Collect the alert parts of the deltas published on panorama:updates."""
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(UPDATES_CHANNEL)
    wait_for(lambda: redis_client.pubsub_numsub(UPDATES_CHANNEL)[0][1] >= 1, message="subscribed")
    seen: list[dict] = []

    def read() -> list[dict]:
        while (msg := pubsub.get_message(timeout=0.05)) is not None:
            seen.extend(orjson.loads(msg["data"]).get("alerts", []))
        return seen

    yield read
    pubsub.close()


def tick(evaluator, bus, at_ms: int) -> list:
    """Run one tick at ``at_ms``; return its changes but those of the silence rule (the security feed is silent
    in most of these tests: test_a_feed_that_dies... is about that)."""
    return [c for c in evaluator.tick(bus, at_ms) if c.alert["rule"] != "security_silent"]


def flush(pipeline, bus, domain: str, events: list[dict]) -> None:
    """Run events through the pipeline as a consumer does (add, then flush the batch)."""
    from feeds.pipeline import Batch

    batch = Batch()
    pipeline.add(batch, feed_name(domain), domain, orjson.dumps(events), now_ms())
    pipeline.flush(batch, bus)


# --- the shipped city pack -----------------------------------------------------------------------------------

def test_the_shenzhen_pack_ships_a_rule_of_every_type_and_its_zones():
    city = load_city("shenzhen")
    rules = city.alert_rules
    assert {r.type for r in rules.rules} == {"threshold", "rate", "anomaly", "silence", "geofence"}
    assert {r.domain for r in rules.rules if r.type == "silence"} == {"security", "traffic", "environment",
                                                                      "incident"}
    assert {z.kind for z in rules.zones.values()} >= {"stadium", "port_of_entry", "road"}
    jam = rules.by_id["shennan_jam"]
    assert (jam.kind, jam.op, jam.value, jam.for_.total_seconds(), jam.zone) == (("speed",), "<", 15, 300,
                                                                                  "shennan_futian")
    aqi_rule = rules.by_id["aqi_moderate"]
    assert (aqi_rule.op, aqi_rule.value, aqi_rule.for_.total_seconds()) == (">", 150, 600)
    for zone in rules.zones.values():  # each zone lies in its district's own boundary
        feature = next(f for f in city.geojson["features"] if f["id"] == zone.district)
        from shapely.geometry import shape
        assert shape(feature["geometry"]).buffer(0.01).contains(shape({"type": "Polygon",
                                                                       "coordinates": [list(zone.polygon)]}))


# --- each type through the real ingest worker ------------------------------------------------------------------

def test_threshold_fires_through_the_stream_worker_and_resolves(pipeline, pg_engine, redis_client, redis_url,
                                                                updates):
    now = now_ms()
    consumer = StreamConsumer(pipeline, lambda: redis_lib.Redis.from_url(redis_url), consumer="t1", flush_ms=50)
    with consumer:
        # 11 minutes above 150 in event time: past the rule's 10 minutes, so it fires at once.
        publish(redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 190, now - 5 * MIN),
                                              aqi(3, 185, now)], transport="stream")
        # Another district below the line: no alert there.
        publish(redis_client, "environment", aqi(4, 90, now, "nanshan"), transport="stream")
        fired = wait_for(lambda: rows(pg_engine, alerts.c.status == "firing"), message="a firing alert")
        assert len(fired) == 1
        a = fired[0]
        assert (a["rule"], a["scope"], a["district"], a["level"], a["value"]) == ("aqi_high", "district:440304",
                                                                                 "440304", "orange", 185)
        assert a["started_ms"] == now - 11 * MIN
        assert a["title"] == "福田区空气质量指数 185" and a["title_en"] == "Futian: AQI 185"
        pushed = wait_for(lambda: [x for x in updates() if x["status"] == "firing"], message="the firing delta")
        assert pushed[0]["id"] == a["id"] and pushed[0]["title_en"] == "Futian: AQI 185"
        publish(redis_client, "environment", aqi(5, 95, now + 1000), transport="stream")
        done = wait_for(lambda: rows(pg_engine, alerts.c.status == "resolved"), message="resolved")
    assert done[0]["id"] == a["id"] and done[0]["resolved_ms"] is not None
    assert codes(pg_engine, a["id"]) == ["alert_firing", "alert_resolved"]
    assert wait_for(lambda: [x for x in updates() if x["status"] == "resolved"], message="the resolved delta")


def test_threshold_waits_pending_until_its_duration_then_fires_on_the_tick(pipeline, evaluator, pg_engine,
                                                                           redis_client):
    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 160, now - 2 * MIN), aqi(2, 170, now)])
    [a] = rows(pg_engine)
    assert a["status"] == "pending" and a["started_ms"] == now - 2 * MIN
    assert tick(evaluator, redis_client, now + 5 * MIN) == []  # 7 minutes: not yet
    [change] = tick(evaluator, redis_client, now + 8 * MIN + 1)  # 10 minutes since it began to hold
    assert change.alert["status"] == "firing" and change.alert["version"] == 2
    assert codes(pg_engine, a["id"]) == ["alert_pending", "alert_firing"]
    # A dip below the line starts the count again: a new episode is a new alert.
    flush(pipeline, redis_client, "environment", [aqi(3, 120, now + 1000)])
    assert [r["status"] for r in rows(pg_engine, alerts.c.rule == "aqi_high")] == ["resolved"]
    flush(pipeline, redis_client, "environment", [aqi(4, 155, now + 2000)])
    assert [r["status"] for r in rows(pg_engine, alerts.c.rule == "aqi_high")] == ["resolved", "pending"]


def test_an_older_batch_does_not_undo_a_newer_observation(pipeline, pg_engine, redis_client):
    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 90, now)])
    assert rows(pg_engine) == []  # the newest observation is below the line
    flush(pipeline, redis_client, "environment", [aqi(3, 200, now - 1 * MIN)])  # late, and older than 90's
    assert rows(pg_engine) == []


def test_rate_fires_on_the_third_and_resolves_when_the_window_moves_on(pipeline, evaluator, pg_engine,
                                                                       redis_client):
    now = now_ms()
    fight = lambda n, ts: make_event(n, kind="fight", district="luohu", ts=ts, severity=2)  # noqa: E731
    flush(pipeline, redis_client, "security", [fight(1, now - 20 * MIN), fight(2, now - 10 * MIN)])
    assert rows(pg_engine) == []
    flush(pipeline, redis_client, "security", [fight(3, now)])
    [a] = rows(pg_engine)
    assert (a["status"], a["value"], a["district"], a["title"]) == ("firing", 3, "440303", "罗湖区 3 起打架")
    assert tick(evaluator, redis_client, now + 5 * MIN) == []  # still three within 30 minutes
    [change] = tick(evaluator, redis_client, now + 15 * MIN)  # the first has left the window
    assert change.alert["status"] == "resolved"


def test_open_alerts_moving_values_are_written_in_one_statement_without_a_new_version(pipeline, evaluator,
                                                                                       pg_engine, redis_client):
    from sqlalchemy import event

    now = now_ms()
    fight = lambda n, d, ts: make_event(n, kind="fight", district=d, ts=ts, severity=2)  # noqa: E731
    flush(pipeline, redis_client, "security", [fight(10 * k + i, d, now - i * 1000) for i in range(1, 4)
                                                for k, d in enumerate(("luohu", "futian"))])
    assert sorted((a["district"], a["status"], a["value"]) for a in rows(pg_engine)) == [
        ("440303", "firing", 3), ("440304", "firing", 3)]
    updates: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE ALERTS"):
            updates.append(statement)

    event.listen(pg_engine, "before_cursor_execute", seen)
    try:
        flush(pipeline, redis_client, "security", [fight(100, "luohu", now), fight(101, "futian", now)])
    finally:
        event.remove(pg_engine, "before_cursor_execute", seen)
    assert len(updates) == 1  # both alerts' new values, one statement (was one each)
    got = sorted((a["district"], a["status"], a["value"], a["version"], a["title_en"]) for a in rows(pg_engine))
    assert [g[:4] for g in got] == [("440303", "firing", 4, 1), ("440304", "firing", 4, 1)]
    assert got[0][4].endswith("4 fights")


def test_move_values_writes_the_last_value_of_each_alert(any_engine):
    from sqlalchemy import insert

    row = {"rule": "r", "level": "blue", "status": "firing", "started_ms": 1, "title": "t", "title_en": "t",
           "updated_ms": 1}
    with any_engine.begin() as conn:
        ids = [conn.execute(insert(alerts).values(**row, scope=f"district:{d}").returning(alerts.c.id)).scalar_one()
               for d in ("a", "b", "c")]
        store.move_values(conn, [
            {"id": ids[1], "value": 2.0, "title": "二", "title_en": "two", "updated_ms": 5},
            {"id": ids[0], "value": None, "title": "无", "title_en": "none", "updated_ms": 5},
            {"id": ids[1], "value": 3.5, "title": "三", "title_en": "three", "updated_ms": 6}])
        store.move_values(conn, [])
    got = {r["id"]: (r["value"], r["title"], r["title_en"], r["updated_ms"], r["version"]) for r in rows(any_engine)}
    assert got == {ids[0]: (None, "无", "none", 5, 1), ids[1]: (3.5, "三", "three", 6, 1),
                   ids[2]: (None, "t", "t", 1, 1)}


def test_two_evaluations_moving_each_others_values_do_not_deadlock(pg_engine):
    """Two workers' evaluations at once: each changes one alert's status and moves the other's value (an
    ``after_batch`` beside the tick). The status changes lock in one order and the moves in id order, so the
    second lock of each waits for the other; a move never waits (a locked alert is being changed by another
    transaction, and the next tick moves its value), so both commit instead of PostgreSQL killing one."""
    from sqlalchemy import insert, update

    row = {"rule": "r", "level": "blue", "status": "firing", "started_ms": 1, "title": "t", "title_en": "t",
           "updated_ms": 1}
    with pg_engine.begin() as conn:
        a, b = [conn.execute(insert(alerts).values(**row, scope=f"district:{d}").returning(alerts.c.id)).scalar_one()
                for d in ("a", "b")]
    both_locked = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def evaluate(mine: int, theirs: int) -> None:
        try:
            with pg_engine.begin() as conn:
                conn.execute(update(alerts).where(alerts.c.id == mine).values(status="resolved", resolved_ms=2))
                both_locked.wait()
                store.move_values(conn, [{"id": theirs, "value": 9.0, "title": "九", "title_en": "nine",
                                          "updated_ms": 2}])
        except BaseException as err:  # noqa: BLE001 - asserted below
            errors.append(err)

    threads = [threading.Thread(target=evaluate, args=(a, b)), threading.Thread(target=evaluate, args=(b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [r["status"] for r in rows(pg_engine)] == ["resolved", "resolved"]


def test_geofence_counts_only_events_inside_the_zone_and_opens_an_incident(pipeline, pg_engine, redis_client, city):
    now = now_ms()
    crowd = lambda n, v, where: make_event(n, kind="crowd_density", district="longgang", ts=now,  # noqa: E731
                                           value=v, domain="security", **where)
    flush(pipeline, redis_client, "security", [crowd(1, 3.5, STADIUM), crowd(2, 3.8, STADIUM),
                                               crowd(3, 4.0, ELSEWHERE), crowd(4, 1.2, STADIUM)])
    assert rows(pg_engine) == []  # two dense reports inside; one outside, one thin
    flush(pipeline, redis_client, "security", [crowd(5, 3.1, STADIUM)])
    [a] = rows(pg_engine)
    assert (a["status"], a["zone"], a["district"], a["level"], a["value"]) == ("firing", "universiade_centre",
                                                                               "440307", "red", 3)
    assert a["title"] == "大运中心人群密度告警 3 次"
    with pg_engine.connect() as conn:
        inc = conn.execute(select(incidents).where(incidents.c.id == a["incident_id"])).mappings().one()
    assert (inc["district"], inc["severity"], inc["status"], inc["domain"], inc["kind"]) == (
        "440307", 4, "open", "security", "crowd_density")
    assert codes(pg_engine, a["id"]) == ["alert_firing", "alert_incident"]
    # Dispatch routes it like any other incident: the city's rules suggest its departments.
    from dashboard.dispatch import board

    with pg_engine.begin() as conn:
        change = board.dispatch(conn, inc["id"], None, "officer", None, now, city.rules, city)
    assert change.incident["status"] == "dispatched" and change.tasks


def test_a_feed_that_dies_fires_its_silence_rule_and_recovers(pipeline, evaluator, pg_engine, redis_client,
                                                              redis_url):
    now = now_ms()
    with PubSubConsumer(pipeline, lambda: redis_lib.Redis.from_url(redis_url), flush_ms=50) as consumer:
        wait_for(consumer.connected.is_set, message="subscribed")
        publish(redis_client, "security", make_event(1, kind="theft", ts=now))
        wait_for(lambda: consumer.flushed >= 1, message="the event stored")
    [change] = evaluator.tick(redis_client, now + 3 * MIN)
    assert (change.alert["status"], change.alert["scope"], change.alert["district"]) == ("firing", "city", None)
    assert change.alert["title_en"] == "security feed silent for 3 min"  # since its newest event's own time
    flush(pipeline, redis_client, "security", [make_event(2, kind="theft", ts=now_ms())])
    [back] = evaluator.tick(redis_client, now_ms())
    assert back.alert["status"] == "resolved"


# --- exactly once -------------------------------------------------------------------------------------------

def test_two_workers_on_the_same_streams_and_channels_make_one_alert(pg_engine, city, redis_client, redis_url):
    now = now_ms()
    connect = lambda: redis_lib.Redis.from_url(redis_url)  # noqa: E731
    workers = []
    for name in ("w1", "w2"):
        pipe = Pipeline(EventStore(pg_engine, city), city.aliases, alerts=Evaluator(pg_engine, city, TZ))
        workers += [StreamConsumer(pipe, connect, consumer=name, batch_size=7, flush_ms=20),
                    PubSubConsumer(pipe, connect, batch_size=7, flush_ms=20)]
    for w in workers:
        w.start()
    try:
        for w in workers:
            wait_for(w.connected.is_set, message="connected")
        events = [make_event(i, kind="fight", district=d, ts=now - i * 1000, severity=2)
                  for i in range(60) for d in ("futian",)]
        events += [aqi(100 + i, 200 + i, now - (12 - i) * MIN, d) for i in range(13) for d in ("futian", "nanshan")]
        for i, ev in enumerate(events):
            # every event both ways: pub/sub reaches both workers' subscribers, the stream one of them
            domain = "security" if ev["kind"] == "fight" else "environment"
            ev = {**ev, "id": f"{ev['id']}-{ev['district']}"}
            publish(redis_client, domain, ev, transport="stream")
            publish(redis_client, domain, ev)
        wait_for(lambda: sum(w.flushed for w in workers) >= 2 * len(events), timeout=30, message="all ingested")
        wait_for(lambda: len(rows(pg_engine, alerts.c.status == "firing")) == 3, message="three firing alerts")
    finally:
        for w in workers:
            w.stop()
    # A value the workers' evaluations moved at once may lag by a tick (a move never waits for another
    # transaction's lock: store.move_values); the tick brings it to the count.
    Evaluator(pg_engine, city, TZ).tick(None)
    got = rows(pg_engine)
    assert sorted((a["rule"], a["scope"]) for a in got) == [("aqi_high", "district:440304"),
                                                            ("aqi_high", "district:440305"),
                                                            ("fights", "district:440304")]
    fights = next(a for a in got if a["rule"] == "fights")
    assert fights["value"] == 60  # each fight counted once, whichever worker stored it
    for a in got:
        assert codes(pg_engine, a["id"]).count("alert_firing") == 1


def test_ticks_racing_on_one_condition_fire_it_once(evaluator, pipeline, pg_engine, redis_client):
    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now - 2 * MIN)])
    assert [r["status"] for r in rows(pg_engine)] == ["pending"]
    barrier, results, errors = threading.Barrier(6), [], []

    def run():
        try:
            barrier.wait(5)
            results.append(tick(evaluator, redis_client, now + 20 * MIN))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    assert sum(len(r) for r in results) == 1
    [a] = rows(pg_engine, alerts.c.rule == "aqi_high")
    assert a["status"] == "firing" and codes(pg_engine, a["id"]) == ["alert_pending", "alert_firing"]


def test_the_open_alert_index_refuses_a_second_open_alert_of_a_rule_and_scope(any_engine):
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    row = {"rule": "r", "scope": "city", "level": "blue", "status": "firing", "started_ms": 1, "title": "t",
           "title_en": "t", "updated_ms": 1}
    with any_engine.begin() as conn:
        conn.execute(insert(alerts).values(**row))
        conn.execute(insert(alerts).values(**{**row, "status": "resolved"}))  # resolved ones may repeat
    with pytest.raises(IntegrityError), any_engine.begin() as conn:
        conn.execute(insert(alerts).values(**{**row, "status": "pending"}))


def test_only_one_ticker_takes_the_lease(evaluator, redis_client, redis_url):
    stop = threading.Event()
    a = AlertTicker(evaluator, lambda: redis_lib.Redis.from_url(redis_url), stop, every_ms=60_000, owner="a")
    b = AlertTicker(evaluator, lambda: redis_lib.Redis.from_url(redis_url), stop, every_ms=60_000, owner="b")
    assert a.tick_once(redis_client) is not None
    assert b.tick_once(redis_client) is None
    assert (a.ticks, b.ticks) == (1, 0)


# --- the lifecycle on both databases -----------------------------------------------------------------------------

@pytest.fixture
def lifecycle(any_engine, city, redis_client):
    """A pipeline and evaluator on each database (the SQLite upserts and RETURNING differ from PostgreSQL's)."""
    ev = Evaluator(any_engine, city, TZ)
    return Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev), ev, any_engine


def test_acknowledge_checks_the_version_and_the_state(lifecycle, redis_client):
    pipe, ev, engine = lifecycle
    now = now_ms()
    flush(pipe, redis_client, "environment", [aqi(1, 170, now - 2 * MIN)])
    [a] = rows(engine, alerts.c.rule == "aqi_high")
    with engine.begin() as conn, pytest.raises(Unprocessable):
        store.acknowledge(conn, a["id"], a["version"], "officer", None, now)  # pending: nothing to acknowledge
    tick(ev, redis_client, now + 9 * MIN)
    [a] = rows(engine, alerts.c.rule == "aqi_high")
    assert (a["status"], a["version"]) == ("firing", 2)
    with engine.begin() as conn, pytest.raises(Conflict):
        store.acknowledge(conn, a["id"], 1, "officer", None, now)
    with engine.begin() as conn, pytest.raises(NotFound):
        store.acknowledge(conn, a["id"] + 100, 2, "officer", None, now)
    with engine.begin() as conn:
        done = store.acknowledge(conn, a["id"], 2, "officer", "看到了，已通知环保", now)
    assert (done["status"], done["version"]) == ("acknowledged", 3)
    with engine.begin() as conn, pytest.raises(Conflict):
        store.acknowledge(conn, a["id"], 2, "commander", None, now)  # the second click, on what it read
    with engine.connect() as conn:
        trail = store.trail(conn, a["id"])
    assert [(t["code"], t["actor"], t["note"]) for t in trail if not t["code"].startswith("esc_")][-1] == (
        "alert_acknowledged", "officer", "看到了，已通知环保")
    assert trail[-1]["code"] == "esc_stopped"  # the duty escalation stopped with it
    # An acknowledged alert still resolves when its condition clears.
    flush(pipe, redis_client, "environment", [aqi(2, 60, now)])
    assert [r["status"] for r in rows(engine, alerts.c.rule == "aqi_high")] == ["resolved"]


def test_a_silence_holds_a_due_alert_back_and_is_recorded_then_ending_it_fires(lifecycle, redis_client):
    pipe, ev, engine = lifecycle
    now = now_ms()
    with engine.begin() as conn:
        s = store.create_silence(conn, rule="aqi_high", district="440304", zone=None, until_ms=now + 3_600_000,
                                 reason="sensor calibration", actor="officer", now_ms=now)
        other = store.create_silence(conn, rule=None, district="440305", zone=None, until_ms=now - 1,
                                     reason="expired", actor="officer", now_ms=now - 10)
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 181, now - 11 * MIN, "nanshan")])
    by_scope = {r["scope"]: r for r in rows(engine, alerts.c.rule == "aqi_high")}
    held = by_scope["district:440304"]
    assert (held["status"], held["suppressed"]) == ("pending", f"silence:{s['id']}")
    assert codes(engine, held["id"]) == ["alert_pending", "alert_silenced"]
    assert by_scope["district:440305"]["status"] == "firing"  # its silence has expired (other)
    assert tick(ev, redis_client, now + 1000) == []  # still silenced: nothing changes, nothing recorded again
    assert codes(engine, held["id"]) == ["alert_pending", "alert_silenced"]
    with engine.begin() as conn:
        store.end_silence(conn, s["id"], "officer", now + 2000)
        with pytest.raises(Unprocessable):
            store.end_silence(conn, other["id"], "officer", now + 2000)
        with pytest.raises(NotFound):
            store.end_silence(conn, s["id"] + 100, "officer", now + 2000)
    [change] = tick(ev, redis_client, now + 3000)
    assert (change.alert["id"], change.alert["status"], change.alert["suppressed"]) == (held["id"], "firing", None)


def test_a_mute_window_holds_the_rule_back_in_the_city_time(tmp_path, any_engine, redis_client):
    local = datetime.now(ZoneInfo(TZ))
    start, end = (local.hour * 60 + local.minute - 30) % 1440, (local.hour * 60 + local.minute + 30) % 1440
    window = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    city = pack(tmp_path, RULES.replace("    for: PT10M\n", f"    for: PT10M\n    mute: [\"{window}\"]\n"))
    ev = Evaluator(any_engine, city, TZ)
    pipe = Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev)
    now = now_ms()
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN)])
    [a] = rows(any_engine, alerts.c.rule == "aqi_high")
    assert (a["status"], a["suppressed"]) == ("pending", f"mute:{window}")
    assert codes(any_engine, a["id"]) == ["alert_pending", "alert_muted"]
    [change] = tick(ev, redis_client, now + 40 * MIN)  # after the window
    assert change.alert["status"] == "firing"


def test_the_evaluation_counts_nothing_twice_when_a_batch_is_repeated(lifecycle, redis_client):
    pipe, _ev, engine = lifecycle
    now = now_ms()
    batch = [make_event(i, kind="fight", district="luohu", ts=now, severity=2) for i in range(2)]
    flush(pipe, redis_client, "security", batch)
    flush(pipe, redis_client, "security", batch)  # redelivered: stored once, counted once
    assert rows(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(store.alert_counts.c.n))).scalar_one() == 2


# --- anomaly: the window's count against the same hour of the week -------------------------------------------

ANOMALY = """\
rules:
  - id: theft_surge
    type: anomaly
    level: yellow
    scope: district
    kind: theft
    baseline: {weeks: 4, p: 0.001}
    say: {zh: "{place}盗窃 {value} 起，通常 {baseline} 起", en: "{place}: {value} thefts, usually {baseline}"}
"""


def history(engine, now: int, per_hour: dict[str, int], weeks: int = 4) -> None:
    """Write the hour rollups of thefts in the hours the anomaly baseline of ``now`` reads (the same hour of the
    week in the last ``weeks`` weeks, holidays set apart as the evaluator does)."""
    from sqlalchemy import insert

    from dashboard.core.holidays import baseline_hours
    from dashboard.storage.models import district_hours, rollup_hours

    hours, _basis = baseline_hours(now, weeks, TZ, load_city("shenzhen").holidays)
    with engine.begin() as conn:
        for hour in hours:
            conn.execute(insert(district_hours), [{"hour_ms": hour, "district": d, "domain": "security", "n": n,
                                                   "sev1": n, "sev2": 0, "sev3": 0, "sev4": 0}
                                                  for d, n in per_hour.items()])
            conn.execute(insert(rollup_hours), [{"hour_ms": hour, "district": d, "street": "", "domain": "security",
                                                 "kind": "theft", "n": n, "sev1": n, "sev2": 0, "sev3": 0, "sev4": 0,
                                                 "value_sum": 0, "value_n": 0} for d, n in per_hour.items() if n])


def thefts(district: str, n: int, at: int, first: int = 0) -> list[dict]:
    return [make_event(first + i, kind="theft", district=district, ts=at - i * 1000, severity=2) for i in range(n)]


@pytest.fixture
def anomaly(tmp_path, any_engine):
    city = pack(tmp_path, ANOMALY)
    ev = Evaluator(any_engine, city, TZ)
    return Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev), ev, any_engine


def test_anomaly_fires_on_a_surge_above_the_districts_own_hour_and_resolves(anomaly, redis_client):
    pipe, ev, engine = anomaly
    now = now_ms()
    # Futian usually has 6 thefts this hour (1 in 10 minutes); Luohu 60 (10 in 10 minutes); Yantian none.
    history(engine, now, {"440304": 6, "440303": 60, "440308": 0})
    if (now + 11 * MIN) // 3_600_000 != now // 3_600_000:  # the last tick's hour too, when it is the next one
        history(engine, now + 11 * MIN, {"440304": 6, "440303": 60, "440308": 0})
    flush(pipe, redis_client, "security", thefts("futian", 8, now) + thefts("luohu", 12, now, 100)
          + thefts("yantian", 4, now, 200))
    [change] = ev.tick(redis_client, now)
    a = change.alert
    assert (a["rule"], a["scope"], a["status"], a["value"], a["baseline"]) == ("theft_surge", "district:440304",
                                                                               "firing", 8, 1.0)
    assert a["title"] == "福田区盗窃 8 起，通常 1 起" and a["title_en"] == "Futian: 8 thefts, usually 1"
    # Luohu's 12 against its usual 10 is ordinary; Yantian's 4 against none is below the least count (5).
    assert ev.tick(redis_client, now + 1000) == []
    [done] = ev.tick(redis_client, now + 11 * MIN)  # the surge has left the 10-minute window
    assert done.alert["status"] == "resolved"


def test_a_quiet_district_does_not_fire_on_a_few_events_at_night(anomaly, redis_client):
    pipe, ev, engine = anomaly
    now = now_ms()
    history(engine, now, {"440308": 0, "440304": 1})
    flush(pipe, redis_client, "security", thefts("yantian", 4, now) + thefts("futian", 3, now, 100))
    assert ev.tick(redis_client, now) == []
    flush(pipe, redis_client, "security", thefts("yantian", 2, now, 300))  # 6 where none is usual: a surge
    [change] = ev.tick(redis_client, now + 1000)
    assert (change.alert["scope"], change.alert["value"], change.alert["baseline"]) == ("district:440308", 6, 0)


def test_overdispersed_weeks_do_not_fire_where_poisson_would_and_a_surge_still_does(tmp_path, pg_engine,
                                                                                      redis_client):
    from dashboard.core.alerts import poisson_tail
    from dashboard.core.holidays import baseline_hours
    from dashboard.storage.models import district_hours, rollup_hours

    city = pack(tmp_path, ANOMALY)
    ev, engine = Evaluator(pg_engine, city, TZ), pg_engine
    pipe = Pipeline(EventStore(engine, city), city.aliases, alerts=ev)
    now = now_ms()
    # Luohu's thefts this hour in the baseline's four weeks (holidays set apart, as the evaluator picks them):
    # 60, 140, 90, 150 -- a busy district whose weeks swing well beyond a Poisson count's.
    past, _basis = baseline_hours(now, 4, TZ, ev.holidays)
    with engine.begin() as conn:
        for hour, n in zip(past, (60, 140, 90, 150)):
            conn.execute(district_hours.insert().values(hour_ms=hour, district="440303", domain="security", n=n,
                                                        sev1=n, sev2=0, sev3=0, sev4=0))
            conn.execute(rollup_hours.insert().values(hour_ms=hour, district="440303", street="", domain="security",
                                                      kind="theft", n=n, sev1=n, sev2=0, sev3=0, sev4=0,
                                                      value_sum=0, value_n=0))
    # 35 in ten minutes where 18.3 is usual: improbable for a Poisson count (it would have fired), ordinary for
    # these weeks (a busy week's hour reads 150, 25 in ten minutes; 35 is about a 1-in-26 ten minutes).
    assert poisson_tail(35, 110 / 6) < 0.001
    flush(pipe, redis_client, "security", thefts("luohu", 35, now))
    assert ev.tick(redis_client, now) == []
    # A real surge: 80 in the window. Fires on the first tick after the batch, baseline said as the weeks' mean.
    flush(pipe, redis_client, "security", thefts("luohu", 45, now, 100))
    [change] = ev.tick(redis_client, now + 1000)
    a = change.alert
    assert (a["rule"], a["scope"], a["status"], a["value"], a["baseline"]) == ("theft_surge", "district:440303",
                                                                               "firing", 80, 18.3)


def test_a_holiday_is_judged_against_the_days_off_before_it(tmp_path, redis_client):
    from sqlalchemy import insert

    from dashboard.storage.db import make_engine, upgrade
    from dashboard.storage.models import district_hours, rollup_hours, rollups

    engine = make_engine(f"sqlite:///{tmp_path / 'holiday.db'}")  # hours months back: no partitions to make
    upgrade(engine)
    ev = Evaluator(engine, pack(tmp_path, ANOMALY), TZ)
    now = int(datetime(2026, 10, 2, 20, 30, tzinfo=ZoneInfo(TZ)).timestamp() * 1000)  # National Day, a Friday
    hour = now - now % 3_600_000

    def hour_row(at: int, n: int) -> None:
        with engine.begin() as conn:
            conn.execute(insert(district_hours).values(hour_ms=at, district="440304", domain="security", n=n, sev1=n,
                                                       sev2=0, sev3=0, sev4=0))
            conn.execute(insert(rollup_hours).values(hour_ms=at, district="440304", street="", domain="security",
                                                     kind="theft", n=n, sev1=n, sev2=0, sev3=0, sev4=0, value_sum=0,
                                                     value_n=0))

    # Fridays at 20:00 are busy (600 thefts: 100 in ten minutes; 25 September was a holiday, the four before it
    # are taken); the days off before it are quiet (6: 1 in ten minutes).
    for k in range(2, 6):
        hour_row(hour - k * 7 * 86_400_000, 600)
    for day in (1, 5, 6, 7):  # 1 October, and 27, 26, 25 September (Mid-Autumn): the last four days off
        hour_row(hour - day * 86_400_000, 6)
    with engine.begin() as conn:
        conn.execute(insert(rollups).values(minute_ms=now - now % MIN, district="440304", street="",
                                            domain="security", kind="theft", n=12, sev1=0, sev2=12, sev3=0, sev4=0,
                                            value_sum=0, value_n=0))
    # 12 thefts in ten minutes: nothing for an ordinary Friday evening, a surge for a holiday's.
    [change] = ev.tick(redis_client, now)
    assert (change.alert["scope"], change.alert["value"], change.alert["baseline"]) == ("district:440304", 12, 1.0)
    # The same 12 a week later, an ordinary Friday: judged by the Fridays before (2 October and 25
    # September were holidays: skipped; then 18, 11, 4 September), where 100 is usual: ordinary, resolved.
    later = now + 7 * 86_400_000
    with engine.begin() as conn:
        conn.execute(insert(rollups).values(minute_ms=later - later % MIN, district="440304", street="",
                                            domain="security", kind="theft", n=12, sev1=0, sev2=12, sev3=0, sev4=0,
                                            value_sum=0, value_n=0))
    [done] = ev.tick(redis_client, later)
    assert (done.alert["status"], done.alert["value"]) == ("resolved", 12)


def test_anomaly_says_nothing_without_a_baseline(anomaly, redis_client):
    pipe, ev, _engine = anomaly
    now = now_ms()
    flush(pipe, redis_client, "security", thefts("futian", 50, now))
    assert ev.tick(redis_client, now) == []  # no week of history yet: nothing to be improbable against


# --- faults: the rules never hold events back, and the tick redoes what a batch left undone ------------------

def test_a_fault_in_the_rules_stores_the_batch_without_them(pipeline, evaluator, pg_engine, redis_client,
                                                            monkeypatch):
    from dashboard.storage.models import events

    def broken(*_args):
        raise ZeroDivisionError("a bug in a rule")
    monkeypatch.setattr(evaluator, "_gather", broken)
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now_ms() - 11 * MIN)])
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1
    assert rows(pg_engine) == []


def test_the_tick_reconciles_what_a_failed_evaluation_after_a_batch_left(pipeline, evaluator, pg_engine,
                                                                         redis_client, monkeypatch):
    def down(*_args, **_kw):
        raise RuntimeError("the database went away after the batch committed")
    monkeypatch.setattr(store, "reconcile", down)
    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now - 11 * MIN)])  # logged, not raised
    flush(pipeline, redis_client, "security", [make_event(i, kind="fight", district="luohu", ts=now, severity=2)
                                               for i in range(3)])
    assert rows(pg_engine) == []
    monkeypatch.undo()
    got = {c.alert["rule"]: c.alert["status"] for c in tick(evaluator, redis_client, now + 1000)}
    assert got == {"aqi_high": "firing", "fights": "firing"}


def test_a_street_rule_watches_the_packs_streets_only(tmp_path, pg_engine, redis_client):
    rules = RULES.replace("  - id: fights\n    type: rate\n    level: yellow\n    scope: district",
                          "  - id: fights\n    type: rate\n    level: yellow\n    scope: street")
    city = pack(tmp_path, rules)
    pipe = Pipeline(EventStore(pg_engine, city), city.aliases, alerts=Evaluator(pg_engine, city, TZ))
    now = now_ms()
    fight = lambda n, street: make_event(n, kind="fight", district="futian", ts=now, street=street)  # noqa: E731
    flush(pipe, redis_client, "security", [fight(i, "莲花街道") for i in range(3)]
          + [fight(10 + i, f"junk-{i}") for i in range(3)] + [fight(20 + i, "nowhere") for i in range(3)])
    [a] = rows(pg_engine, alerts.c.rule == "fights")
    assert (a["scope"], a["district"], a["title"]) == ("street:440304:莲花街道", "440304", "福田区莲花街道 3 起打架")
    with pg_engine.connect() as conn:
        assert {r.scope for r in conn.execute(select(store.alert_counts.c.scope))} == {"street:440304:莲花街道"}


# --- the worker reconciles off its ingest thread --------------------------------------------------------------

def test_a_worker_pipeline_reconciles_in_its_own_thread_and_fires_once(pg_engine, city, redis_client, updates):
    ev = Evaluator(pg_engine, city, TZ)
    pipe = Pipeline(EventStore(pg_engine, city), city.aliases, alerts=ev, reconcile_in_background=True)
    now = now_ms()
    started = threading.Event()
    release = threading.Event()
    after = ev.after_batch

    def slow(touched, bus):  # the first reconcile is held until the ingest thread has gone on with more batches
        started.set()
        release.wait(10)
        return after(touched, bus)
    ev.after_batch = slow
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN)])
    assert started.wait(10)
    flush(pipe, redis_client, "security", [make_event(i, kind="fight", district="luohu", ts=now, severity=2)
                                           for i in range(3)])  # the ingest thread did not wait for the first
    assert rows(pg_engine) == []
    release.set()
    wait_for(lambda: {r["rule"]: r["status"] for r in rows(pg_engine)} == {"aqi_high": "firing", "fights": "firing"},
             message="both alerts fired by the reconcile thread")
    wait_for(lambda: sorted(a["rule"] for a in updates() if a["status"] == "firing") == ["aqi_high", "fights"],
             message="each published once")
    assert len(rows(pg_engine)) == 2


def test_a_failed_background_reconcile_is_logged_and_the_next_one_runs(pg_engine, city, redis_client, caplog):
    ev = Evaluator(pg_engine, city, TZ)
    pipe = Pipeline(EventStore(pg_engine, city), city.aliases, alerts=ev, reconcile_in_background=True)
    calls = []
    after = ev.after_batch

    def flaky(touched, bus):
        calls.append(sorted(touched))
        if len(calls) == 1:
            raise RuntimeError("the database went away after the batch committed")
        return after(touched, bus)
    ev.after_batch = flaky
    now = now_ms()
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN)])
    wait_for(lambda: len(calls) == 1 and "alert evaluation after a batch failed" in caplog.text, message="logged")
    flush(pipe, redis_client, "environment", [aqi(2, 190, now - 10 * MIN)])
    wait_for(lambda: [r["status"] for r in rows(pg_engine)] == ["firing"], message="the next batch's reconcile")


def test_an_evaluation_postgresql_rolls_back_for_a_deadlock_runs_again_at_once(pipeline, evaluator, pg_engine,
                                                                              redis_client, caplog, monkeypatch):
    """PostgreSQL breaks a lock cycle by rolling one transaction back (40P01): that evaluation runs again at
    once, so the alert fires with its batch rather than at the next tick, and nothing is logged as failed."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    move_values, calls = store.move_values, []

    def deadlocked_once(conn, moves):
        calls.append(len(moves))
        if len(calls) == 1:
            raise OperationalError("UPDATE alerts ...", {}, psycopg.errors.DeadlockDetected())
        return move_values(conn, moves)
    monkeypatch.setattr(store, "move_values", deadlocked_once)
    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 185, now)])
    assert len(calls) == 2
    assert [(r["rule"], r["status"]) for r in rows(pg_engine)] == [("aqi_high", "firing")]
    assert "failed" not in caplog.text


# --- a rule removed from the pack --------------------------------------------------------------------------------

def test_workers_loading_a_pack_without_a_rule_resolve_its_open_alerts_once(tmp_path, pipeline, pg_engine,
                                                                            redis_client, redis_url, updates):
    from dashboard.core.i18n import audit_text

    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 185, now)])  # fires
    flush(pipeline, redis_client, "environment", [aqi(3, 170, now, "nanshan")])  # pending
    opened = rows(pg_engine, alerts.c.rule == "aqi_high")
    assert sorted(r["status"] for r in opened) == ["firing", "pending"]
    firing = next(r for r in opened if r["status"] == "firing")
    with pg_engine.begin() as conn:  # an acknowledged one ends too
        store.acknowledge(conn, firing["id"], firing["version"], "chen", None, now)
    updates()  # what the firing published is not this test's
    # the pack without aqi_high, loaded by three workers at once
    without = RULES[RULES.index("  - id: fights"):]
    city2 = pack(tmp_path / "v2", "rules:\n" + without)
    assert "aqi_high" not in city2.alert_rules.by_id
    workers = [Evaluator(pg_engine, city2, TZ) for _ in range(3)]
    barrier, results, errors = threading.Barrier(3), [], []

    def load(ev):
        try:
            barrier.wait(5)
            results.append(ev.retire(redis_lib.Redis.from_url(redis_url)))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=load, args=(ev,)) for ev in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    assert sorted(c.alert["id"] for r in results for c in r) == sorted(r["id"] for r in opened)  # each once
    done = rows(pg_engine, alerts.c.rule == "aqi_high")
    assert [r["status"] for r in done] == ["resolved", "resolved"] and all(r["resolved_ms"] for r in done)
    for r in done:
        assert codes(pg_engine, r["id"])[-1] == "alert_retired"
        assert codes(pg_engine, r["id"]).count("alert_retired") == 1
    with pg_engine.connect() as conn:
        [step] = [e for e in store.trail(conn, done[0]["id"]) if e["code"] == "alert_retired"]
    assert audit_text(step["code"], step["params"], "zh") == "规则 aqi_high 已从预警规则中删除，预警解除"
    assert audit_text(step["code"], step["params"], "en") == \
        "rule aqi_high was removed from the alert rules; alert resolved"
    # (the channel is the server's, not the database's: other tests' deltas may pass by)
    mine = lambda: [x for x in updates() if x["status"] == "resolved" and x["rule"] == "aqi_high"]  # noqa: E731
    pushed = wait_for(lambda: len(mine()) >= 2 and mine(), message="the resolutions published")
    assert sorted(x["id"] for x in pushed) == sorted(r["id"] for r in opened)
    # the rules still in the pack are untouched, and a later tick of the new pack finds nothing more to end
    assert [c for c in tick(workers[0], redis_client, now + MIN) if c.alert["rule"] == "aqi_high"] == []


def test_the_tick_resolves_an_alert_whose_rule_left_the_pack(tmp_path, pipeline, pg_engine, redis_client):
    now = now_ms()
    flush(pipeline, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 185, now)])
    [a] = rows(pg_engine, alerts.c.rule == "aqi_high")
    city2 = pack(tmp_path / "v2", "rules:\n" + RULES[RULES.index("  - id: fights"):])
    changes = tick(Evaluator(pg_engine, city2, TZ), redis_client, now + MIN)
    assert [(c.alert["id"], c.alert["status"]) for c in changes] == [(a["id"], "resolved")]
    assert codes(pg_engine, a["id"]) == ["alert_firing", "alert_retired"]

