"""The store on PostgreSQL and SQLite: dedupe, additive rollups, incident joining, feed freshness."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.core.city import load_city
from dashboard.storage.models import district_minutes, events, feed_state, incident_reports, incidents, rollups
from dashboard.storage.events import EventStore
from feeds.schema import Event, parse_message
from feeds.publish import encode
from tests.helpers import make_event, write_from_two_workers

T0 = 1764117000000  # 2026-11-26 08:30 +08:00
ALIASES = load_city("shenzhen").aliases


def events_of(domain: str, evs: list[dict]) -> list[Event]:
    out = []
    for ev in evs:
        parsed = parse_message(encode(ev), domain, ALIASES)
        assert not parsed.rejects, parsed.rejects
        out.extend(parsed.events)
    return out


def scalar(engine, stmt):
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def test_dedupe_and_rollups(any_engine):
    store = EventStore(any_engine)
    evs = events_of("environment", [make_event(i, kind="aqi", value=float(i), severity=1 + i % 2, ts=T0 + i * 1000)
                                    for i in range(120)])
    first = store.write(evs + evs[:10], 1)
    again = store.write(evs[50:], 2)
    assert len(first.stored) == 120 and first.duplicates == 10
    assert len(again.stored) == 0 and again.duplicates == 70
    assert scalar(any_engine, select(func.count()).select_from(events)) == 120
    with any_engine.connect() as conn:
        rows = conn.execute(select(rollups).order_by(rollups.c.minute_ms)).mappings().all()
    # 120 events one second apart starting on a minute boundary: two whole minutes
    assert [(r["n"], r["sev1"], r["sev2"], r["value_n"]) for r in rows] == [(60, 30, 30, 60), (60, 30, 30, 60)]
    assert rows[0]["value_sum"] == sum(range(60)) and rows[1]["value_max"] == 119.0
    # the city-wide table counts the same events
    assert scalar(any_engine, select(func.sum(district_minutes.c.n))) == 120
    assert scalar(any_engine, select(func.sum(district_minutes.c.sev2))) == 60
    assert scalar(any_engine, select(feed_state.c.last_event_ms)) == T0 + 119_000
    assert scalar(any_engine, select(feed_state.c.last_received_ms)) == 1  # the second write stored nothing


def test_incidents_join_within_window_and_radius(any_engine):
    store = EventStore(any_engine)
    fire = dict(kind="fire", severity=3, lat=22.54, lon=114.05)
    store.write(events_of("incident", [make_event(1, ts=T0, **fire)]), 1)
    # a later batch: 5 minutes later, 300 m away -> the same fire, now critical
    store.write(events_of("incident", [make_event(2, ts=T0 + 300_000, **{**fire, "lat": 22.5427, "severity": 4})]), 2)
    # 40 minutes later -> a new incident; 5 km away -> another; another kind -> another
    store.write(events_of("incident", [make_event(3, ts=T0 + 2_400_000, **fire),
                                       make_event(4, ts=T0 + 360_000, **{**fire, "lat": 22.585}),
                                       make_event(5, ts=T0 + 360_000, **{**fire, "kind": "gas_leak"})]), 3)
    # a severity-3 traffic accident opens one too; a severity-2 one does not
    store.write(events_of("traffic", [make_event(6, kind="accident", severity=3, ts=T0),
                                      make_event(7, kind="accident", severity=2, ts=T0)]), 4)
    with any_engine.connect() as conn:
        rows = conn.execute(select(incidents).order_by(incidents.c.id)).mappings().all()
        links = conn.execute(select(func.count()).select_from(incident_reports)).scalar_one()
    got = [(r["kind"], r["reports"], r["severity"], r["version"]) for r in rows]
    assert got == [("fire", 2, 4, 2), ("fire", 1, 3, 1), ("fire", 1, 3, 1), ("gas_leak", 1, 3, 1),
                   ("accident", 1, 3, 1)]
    assert links == 6 and all(r["status"] == "open" for r in rows)


def test_two_writers_never_double_count(pg_engine):
    """Two workers writing overlapping batches concurrently: every event and count exactly once."""
    evs = events_of("traffic", [make_event(i, district=("futian", "nanshan")[i % 2], ts=T0 + i * 100)
                                for i in range(4000)])
    write_from_two_workers(lambda: EventStore(pg_engine), evs)
    assert scalar(pg_engine, select(func.count()).select_from(events)) == 4000
    assert scalar(pg_engine, select(func.sum(rollups.c.n))) == 4000


def test_deadlocks_and_a_missing_partition_are_retried_whichever_layer_raises_them():
    import psycopg
    from sqlalchemy.exc import OperationalError

    from dashboard.storage.events import _is_retryable

    # the COPY path's raw psycopg cursor raises the driver's error bare; SQLAlchemy wraps it in .orig
    assert _is_retryable(psycopg.errors.DeadlockDetected())
    assert _is_retryable(psycopg.errors.CheckViolation())  # no partition for the row's day
    assert _is_retryable(OperationalError("x", {}, psycopg.errors.SerializationFailure()))
    assert not _is_retryable(psycopg.errors.UniqueViolation())
    assert not _is_retryable(ValueError("x"))
