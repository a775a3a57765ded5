"""The rules' shared state in SQL (dashboard/storage/alerts.py): the batch's threshold observations and
per-minute counts merged by one statement each (on PostgreSQL, the rows as one JSON document), and the count
rules' holding places summed by the database, say the same on PostgreSQL and SQLite."""

from __future__ import annotations

from sqlalchemy import select

from dashboard.storage import alerts as store
from dashboard.storage.db import is_postgres
from dashboard.storage.models import alert_counts, alert_states

MIN = 60_000
T = 1_765_000_020_000


def _states(conn):
    return {(r.rule, r.scope): (r.last_ts_ms, r.value, r.since_ms) for r in conn.execute(select(alert_states))}


def _counts(conn):
    return {(r.rule, r.scope, r.minute_ms): (r.n, r.value_max) for r in conn.execute(select(alert_counts))}


def test_observations_merge_newest_wins_and_keep_a_whole_batch_s_start(any_engine):
    pg = is_postgres(any_engine)
    with any_engine.begin() as conn:
        store.add_observations(conn, [
            {"rule": "aqi", "scope": "district:440304", "last": T, "value": 210.5, "since": T - 5000, "whole": False},
            {"rule": "aqi", "scope": "city", "last": T, "value": 99.25, "since": None, "whole": False},
            {"rule": "speed", "scope": "street:440304:深南大道", "last": T, "value": 7.0, "since": T - 1000,
             "whole": True},
        ], postgres=pg)
    with any_engine.begin() as conn:
        store.add_observations(conn, [
            # a newer batch whose observations all meet: the stored start stays
            {"rule": "aqi", "scope": "district:440304", "last": T + 2000, "value": 230.0, "since": T + 1000,
             "whole": True},
            # an older batch (another worker's, late): changes nothing
            {"rule": "aqi", "scope": "city", "last": T - 9000, "value": 500.0, "since": T - 9000, "whole": True},
            # a newer one that breaks the run
            {"rule": "speed", "scope": "street:440304:深南大道", "last": T + 1, "value": 40.0, "since": None,
             "whole": False},
        ], postgres=pg)
    with any_engine.connect() as conn:
        assert _states(conn) == {
            ("aqi", "district:440304"): (T + 2000, 230.0, T - 5000),
            ("aqi", "city"): (T, 99.25, None),
            ("speed", "street:440304:深南大道"): (T + 1, 40.0, None),
        }


def test_counts_add_up_keep_the_largest_value_and_are_summed_per_window(any_engine):
    pg = is_postgres(any_engine)
    m0 = T - T % MIN
    for rows in ([{"rule": "fights", "scope": "district:440304", "minute": m0 - MIN, "n": 3, "vmax": None},
                  {"rule": "fights", "scope": "district:440304", "minute": m0, "n": 2, "vmax": 1.5},
                  {"rule": "crowd", "scope": "zone:stadium", "minute": m0, "n": 1, "vmax": 3.25}],
                 [{"rule": "fights", "scope": "district:440304", "minute": m0, "n": 4, "vmax": 0.5},
                  {"rule": "crowd", "scope": "zone:stadium", "minute": m0, "n": 1, "vmax": 4.75},
                  {"rule": "fights", "scope": "district:440303", "minute": m0, "n": 1, "vmax": None}]):
        with any_engine.begin() as conn:
            store.add_counts(conn, rows, postgres=pg)
    with any_engine.connect() as conn:
        assert _counts(conn) == {
            ("fights", "district:440304", m0 - MIN): (3, None),
            ("fights", "district:440304", m0): (6, 1.5),
            ("fights", "district:440303", m0): (1, None),
            ("crowd", "zone:stadium", m0): (2, 4.75),
        }
        # (rule, the window's first minute, its count): 9 in two minutes at 440304, 6 in the last one
        assert store.holding_counts(conn, [("fights", m0 - MIN, 9), ("crowd", m0, 3)], T, postgres=pg) == {
            ("fights", "district:440304")}
        assert store.holding_counts(conn, [("fights", m0, 6), ("crowd", m0, 2)], T, postgres=pg) == {
            ("fights", "district:440304"), ("crowd", "zone:stadium")}
        assert store.holding_counts(conn, [("fights", m0, 7)], T, postgres=pg) == set()
        assert store.holding_counts(conn, [], T, postgres=pg) == set()
