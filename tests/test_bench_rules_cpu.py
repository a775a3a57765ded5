"""bench.rules_cpu's wall-clock parts: each part timed while the block runs, every method given back after it."""

from __future__ import annotations

from bench.rules_cpu import PARTS, timed_parts
from dashboard.storage import alerts as alert_store


def test_timed_parts_times_each_call_and_gives_every_method_back():
    before = {(owner, name): owner.__dict__[name] for _label, owner, name in PARTS}
    times: dict[str, float] = {}
    with timed_parts(times):
        assert all(owner.__dict__[name] is not f for (owner, name), f in before.items())
        assert alert_store.add_counts(None, []) is None  # no rows: the real function returns before using conn
        assert alert_store.add_counts(None, []) is None
    assert list(times) == ["    counts upsert"] and times["    counts upsert"] > 0
    assert {(owner, name): owner.__dict__[name] for (owner, name) in before} == before
    assert alert_store.add_counts(None, []) is None and list(times) == ["    counts upsert"]  # no longer timed
