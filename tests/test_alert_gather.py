"""The grouped gather of an ingest batch (feeds/alert_gather.py) adds exactly what asking ``place_of`` for every
event and every rule adds: the same threshold observations, per-minute counts and places touched.

Pure logic: the rules are the 500 of bench.alert_rules (every type, scope and filter) and the shipped ones, the
events the generated feed's, with the cases a grouping could get wrong put in on purpose."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import orjson
import pytest

from bench.alert_rules import MARKER_POINT, write_pack
from bench.ingest import generate_events
from dashboard.core.alerts import place_of
from dashboard.core.city import load_city
from dashboard.storage.events import StoredEvent
from feeds import alert_gather
from feeds.alert_gather import RuleIndex, gather
from feeds.schema import parse_message

MIN = 60_000


def reference(rules, stored, received_ms, zones, known_streets):
    """The per-event, per-rule gather the grouped one replaces (feeds/alerting.py before bench.alerts)."""
    by_kind = defaultdict(list)
    for r in rules:
        if r.type in ("threshold", "rate", "geofence"):
            for k in r.kind or (None,):
                by_kind[k].append(r)
    obs, adds, touched = defaultdict(list), {}, {}
    for s in stored:
        ev = s.event
        for rule in by_kind.get(ev.kind, []) + by_kind.get(None, []):
            place = place_of(rule, ev, zones)
            if place is None:
                continue
            if place.street is not None and place.street not in known_streets.get(ev.district, ()):
                continue
            key = (rule.id, place.scope)
            if rule.type == "threshold":
                obs[key].append((s.ts_ms, float(ev.value)))
            else:
                if s.ts_ms < received_ms - rule.window.total_seconds() * 1000:
                    continue
                acc = adds.setdefault((rule.id, place.scope, s.ts_ms - s.ts_ms % MIN), [0, None])
                acc[0] += 1
                if ev.value is not None:
                    acc[1] = ev.value if acc[1] is None else max(acc[1], ev.value)
            touched[key] = (place, ev.domain, ev.lat, ev.lon)
    by_id = {r.id: r for r in rules}
    rows = []
    for (rule_id, scope), seen in obs.items():
        rule, since = by_id[rule_id], None
        for ts, value in seen:
            since = (since if since is not None else ts) if rule.meets(value) else None
        rows.append({"rule": rule_id, "scope": scope, "last": seen[-1][0], "value": seen[-1][1], "since": since,
                     "whole": since is not None and since == seen[0][0]})
    return rows, [{"rule": r, "scope": sc, "minute": m, "n": n, "vmax": v} for (r, sc, m), (n, v) in adds.items()], \
        touched


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return load_city(str(write_pack(tmp_path_factory.mktemp("pack") / "pack", 500)))


def batch(city, n: int, seed: int, now: int) -> list[StoredEvent]:
    """``n`` generated events over the last 40 minutes (some older than a window), with hard cases mixed in."""
    rng = random.Random(seed)
    out = []
    for i, (domain, ev) in enumerate(generate_events(n, seed, 60, mix="city")):
        ev = dict(ev, domain=domain, ts=now - rng.randint(0, 40 * MIN))
        r = rng.random()
        if r < 0.05:
            ev["street"] = "无名路"  # a street the pack does not know
        elif r < 0.08 and "value" in ev:
            del ev["value"], ev["unit"]  # a measured kind without a value
        elif r < 0.10:
            ev.update(MARKER_POINT, kind="water_level", domain="environment", value=1_000_000 + i, unit="m")
        elif r < 0.20:  # a point inside a zone
            zone = rng.choice(list(city.alert_rules.zones.values()))
            (x0, y0), (x1, y1) = zone.polygon[0], zone.polygon[2]
            ev.update(lon=rng.uniform(min(x0, x1), max(x0, x1)), lat=rng.uniform(min(y0, y1), max(y0, y1)))
        if rng.random() < 0.05 and out:
            ev["ts"] = out[-1].ts  # the same time as another event
        parsed = parse_message(orjson.dumps(ev), ev["domain"], city.aliases)
        assert parsed.events, parsed.rejects
        out.append(parsed.events[0])
    events = sorted(out, key=lambda e: e.ts)  # EventStore hands them over in event-time order
    return [StoredEvent(i, e, e.ts) for i, e in enumerate(events)]


def normal(rows, counts, touched):
    return (sorted(rows, key=lambda r: (r["rule"], r["scope"])),
            sorted(counts, key=lambda r: (r["rule"], r["scope"], r["minute"])),
            {k: (s.place, s.domain, s.lat, s.lon) if not isinstance(s, tuple) else s for k, s in touched.items()})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_grouped_gather_adds_what_every_event_and_rule_add(city, seed):
    rules = city.alert_rules
    now = 1_765_000_000_000
    stored = batch(city, 3000, seed, now)
    got = gather(RuleIndex(rules.rules, rules.zones), stored, now, city.known_streets, rules.by_id)
    want = reference(rules.rules, stored, now, rules.zones, city.known_streets)
    got, want = normal(*got), normal(*want)
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert got[2] == want[2]
    # and the batch exercised what it should: thresholds, counts, late events, every scope, the marker
    assert len(want[0]) > 50 and len(want[1]) > 200
    assert {k[1].split(":")[0] for k in want[2]} == {"city", "district", "street", "zone"}
    assert ("bench_marker", "zone:bench_marker") in want[2]


def test_the_shipped_rules_too(tmp_path):
    city = load_city("shenzhen")
    rules = city.alert_rules
    now = 1_765_000_000_000
    stored = batch(load_city(str(write_pack(tmp_path / "p", 500))), 2000, 9, now)
    got = gather(RuleIndex(rules.rules, rules.zones), stored, now, city.known_streets, rules.by_id)
    assert normal(*got) == normal(*reference(rules.rules, stored, now, rules.zones, city.known_streets))


def test_a_rule_of_several_kinds_orders_their_observations_as_the_batch_does(tmp_path):
    pack = write_pack(tmp_path / "p", 0)
    (pack / "alerts.yaml").write_text("""rules:
  - {id: wet, type: threshold, level: blue, scope: city, kind: [rainfall, water_level], op: ">", value: 2,
     say: {zh: "{value}", en: "{value}"}}
""", encoding="utf-8")
    city = load_city(str(pack))
    rules = city.alert_rules
    now = 1_765_000_000_000
    evs = [("rainfall", 5, now - 3000), ("water_level", 1, now - 2000), ("rainfall", 3, now - 1000),
           ("water_level", 4, now)]
    stored = []
    for i, (kind, value, ts) in enumerate(evs):
        raw = orjson.dumps({"id": f"e{i}", "ts": ts, "kind": kind, "district": "futian", "severity": 1,
                            "title": "t", "value": value})
        stored.append(StoredEvent(i, parse_message(raw, "environment", city.aliases).events[0], ts))
    rows, _counts, touched = gather(RuleIndex(rules.rules, rules.zones), stored, now, city.known_streets,
                                    rules.by_id)
    # rainfall 5, water 1 (breaks the run), rainfall 3, water 4: the newest run began with rainfall 3
    assert rows == [{"rule": "wet", "scope": "city", "last": now, "value": 4.0, "since": now - 1000,
                     "whole": False}]
    assert touched[("wet", "city")].lat is None and touched[("wet", "city")].domain == "environment"


def test_the_index_offers_an_event_only_the_rules_of_its_kind_district_and_domain(city):
    index = RuleIndex(city.alert_rules.rules, city.alert_rules.zones)
    for kind, district, domain in [("aqi", "440304", "environment"), ("accident", "440303", "traffic"),
                                   ("unknown_kind", "440304", "traffic")]:
        got = index.candidates(kind, district, domain)
        assert got == index.candidates(kind, district, domain)  # remembered
        for r in city.alert_rules.rules:
            fed = r.type in ("threshold", "rate", "geofence")
            matches = ((r.kind is None or kind in r.kind) and (r.domain is None or r.domain == domain)
                       and (r.districts is None or district in r.districts))
            assert (r in got) == (fed and matches), r.id
    assert index.candidates("unknown_kind", "440304", "traffic") == ()


@pytest.mark.parametrize("vector_min", [1, 10**9])
def test_a_zone_tested_in_one_call_or_event_by_event_adds_the_same(city, monkeypatch, vector_min):
    """A large group is tested against a zone in one numpy call (``Zone.contains_many``), a small one event by
    event: with every group taken either way, the batch adds what the per-event reference adds."""
    monkeypatch.setattr(alert_gather, "VECTOR_MIN", vector_min)
    rules = city.alert_rules
    now = 1_765_000_000_000
    stored = batch(city, 3000, 7, now)
    got = gather(RuleIndex(rules.rules, rules.zones), stored, now, city.known_streets, rules.by_id)
    want = reference(rules.rules, stored, now, rules.zones, city.known_streets)
    assert normal(*got) == normal(*want)
    assert any(k[1].startswith("zone:") for k in want[2])


def test_contains_many_says_what_contains_says_of_each_point(city):
    rng = random.Random(5)
    for zone in city.alert_rules.zones.values():
        x0, y0, x1, y1 = zone.box
        points = [(rng.uniform(x0 - 0.01, x1 + 0.01), rng.uniform(y0 - 0.01, y1 + 0.01)) for _ in range(200)]
        points += [tuple(p) for p in zone.polygon]  # the corners: on the edge, so inside
        points += [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(zone.polygon, zone.polygon[1:])]
        points += [(None, y0), (x0, None), (None, None)]
        lons = np.array([np.nan if x is None or y is None else x for x, y in points], dtype=float)
        lats = np.array([np.nan if x is None or y is None else y for x, y in points], dtype=float)
        got = zone.contains_many(lons, lats).tolist()
        assert got == [zone.contains(y, x) for x, y in points], zone.code
        assert any(got) and not all(got)


def test_a_city_threshold_starts_its_newest_run_after_the_newest_breaking_observation_of_any_district(tmp_path):
    """Several districts' runs of one city rule are read without merging them: the newest run of meeting
    observations starts after the newest one that does not meet, whichever district it was in."""
    pack = write_pack(tmp_path / "p", 0)
    (pack / "alerts.yaml").write_text("""rules:
  - {id: loud, type: threshold, level: blue, scope: city, kind: noise, op: ">", value: 70,
     say: {zh: "{value}", en: "{value}"}}
""", encoding="utf-8")
    city = load_city(str(pack))
    rules = city.alert_rules
    now = 1_765_000_000_000
    cases = {  # (district, value) in batch order -> the position the newest meeting run starts at (None: none)
        "broken in another district": ([("futian", 80), ("luohu", 60), ("futian", 75), ("nanshan", 90)], 2),
        "all meet": ([("futian", 80), ("luohu", 71), ("nanshan", 90)], 0),
        "the newest breaks": ([("futian", 80), ("luohu", 71), ("nanshan", 10)], None),
        "broken twice": ([("luohu", 10), ("futian", 80), ("nanshan", 20), ("luohu", 99), ("futian", 98)], 3),
    }
    for name, (evs, start) in cases.items():
        stored = []
        for i, (district, value) in enumerate(evs):
            ts = now - (len(evs) - i) * 1000
            raw = orjson.dumps({"id": f"e{i}", "ts": ts, "kind": "noise", "district": district, "severity": 1,
                                "title": "t", "value": value})
            stored.append(StoredEvent(i, parse_message(raw, "environment", city.aliases).events[0], ts))
        since = None if start is None else stored[start].ts_ms
        whole = start == 0
        rows, _counts, touched = gather(RuleIndex(rules.rules, rules.zones), stored, now, city.known_streets,
                                        rules.by_id)
        assert rows == [{"rule": "loud", "scope": "city", "last": stored[-1].ts_ms, "value": float(evs[-1][1]),
                         "since": since, "whole": whole}], name
        assert normal(rows, [], {})[0] == normal(*reference(rules.rules, stored, now, rules.zones,
                                                              city.known_streets))[0], name
        assert touched[("loud", "city")].meets is (since is not None), name
