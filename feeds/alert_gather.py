"""Gather what an ingest batch adds to the alert rules' state, each event meeting only the rules that may match it.

With hundreds of rules an event matches a handful: the rules that events feed (threshold, rate, geofence) are
indexed by the kind, district and domain an event has, once per such combination, so a batch costs its events
times the rules of their own kind and place, not times every rule (bench.alerts: 500 rules).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from dashboard.core.alerts import AlertRule, Place, Zone

MINUTE_MS = 60_000
FED = ("threshold", "rate", "geofence")  # the rule types each stored event feeds
CACHE_LIMIT = 10_000  # (kind, district, domain) combinations remembered; kinds are a feed's free text


@dataclass
class Seen:
    """Where a batch touched a rule: the place and what its events said of it."""

    place: Place
    domain: str | None
    lat: float | None = None
    lon: float | None = None
    meets: bool = True  # a threshold's: the batch's newest observation there meets the condition


class RuleIndex:
    """The rules events feed, looked up by an event's kind, district and domain, with their places made once."""

    def __init__(self, rules: Iterable[AlertRule], zones: Mapping[str, Zone] | None = None):
        self.zones = zones or {}
        self._by_kind: dict[str | None, list[AlertRule]] = defaultdict(list)  # None: a rule of any kind
        for r in rules:
            if r.type in FED:
                for k in dict.fromkeys(r.kind or (None,)):
                    self._by_kind[k].append(r)
        self._cache: dict[tuple, tuple[AlertRule, ...]] = {}
        self._places: dict[tuple, Place] = {}
        self._split: dict[tuple, tuple] = {}

    def candidates(self, kind: str, district: str | None, domain: str | None) -> tuple[AlertRule, ...]:
        """Return the rules an event of this kind, district and domain may feed (its place decides the rest)."""
        key = (kind, district, domain)
        hit = self._cache.get(key)
        if hit is None:
            hit = tuple(r for r in self._by_kind.get(kind, []) + self._by_kind.get(None, [])
                        if (r.domain is None or r.domain == domain)
                        and (r.districts is None or district in r.districts))
            if len(self._cache) < CACHE_LIMIT:
                self._cache[key] = hit
        return hit

    def split(self, kind: str, district: str | None, domain: str | None
              ) -> tuple[tuple[AlertRule, ...], tuple[tuple[Zone, tuple[AlertRule, ...]], ...]]:
        """Return ``candidates`` split in two: the rules of no zone, and those of each zone with its zone (a batch
        asks once per zone whether its events come near it, not once per rule)."""
        key = (kind, district, domain)
        hit = self._split.get(key)
        if hit is None:
            rules = self.candidates(kind, district, domain)
            by_zone: dict[str, list[AlertRule]] = defaultdict(list)
            for r in rules:
                if r.scope == "zone":
                    by_zone[r.zone].append(r)
            hit = (tuple(r for r in rules if r.scope != "zone"),
                   tuple((self.zones[z], tuple(rs)) for z, rs in by_zone.items()))
            if len(self._split) < CACHE_LIMIT:
                self._split[key] = hit
        return hit

    def __bool__(self) -> bool:
        return bool(self._by_kind)


def _vmax(values: list, lo: int, hi: int) -> float | None:
    """Return the largest value of ``values[lo:hi]`` that is not None (None when there is none)."""
    return max(filter(_not_none, values[lo:hi]), default=None)


def _not_none(v) -> bool:
    return v is not None


class _Run:
    """Some events of one group (kind, district, domain) at one place, in event-time order, split by minute."""

    __slots__ = ("idx", "ts", "values", "evs", "_minutes", "valued")

    def __init__(self, idx: list[int], ts: list[int], values: list, evs: list, valued: bool):
        self.idx, self.ts, self.values, self.evs, self.valued = idx, ts, values, evs, valued
        self._minutes: list[tuple[int, int, int, float | None]] | None = None

    @property
    def minutes(self) -> list[tuple[int, int, int, float | None]]:
        """(minute, first, past the last, max value) of each minute the run's events fall in, made when asked:
        by bisection of the sorted times, a run of a few minutes costs a few steps whatever its length."""
        if self._minutes is None:
            ts, out, lo, n = self.ts, [], 0, len(self.ts)
            while lo < n:
                minute = ts[lo] - ts[lo] % MINUTE_MS
                hi = bisect_left(ts, minute + MINUTE_MS, lo, n)
                out.append((minute, lo, hi, _vmax(self.values, lo, hi) if self.valued else None))
                lo = hi
            self._minutes = out
        return self._minutes


class _Group:
    """The batch's events of one kind, district and domain, and their runs by place, made when first asked."""

    __slots__ = ("idx", "ts", "values", "evs", "runs", "box", "zoned", "kept", "whole", "valued")

    def __init__(self):
        self.idx: list[int] = []
        self.ts: list[int] = []
        self.values: list = []
        self.evs: list = []
        self.runs: dict[tuple, list[tuple[Place, _Run]]] = {}
        self.box: tuple[float, float, float, float] | None = None
        self.zoned: dict[str, list[int]] = {}  # zone -> the events inside it, asked once whatever the rules' filters
        self.kept: dict[tuple, list[int] | None] = {}  # (valued, op) -> the events kept (None: all of them)
        self.whole: dict[tuple, _Run] = {}  # (valued, op) -> the run of those events
        self.valued: bool | None = None  # whether any event of the group has a value

    def has_values(self) -> bool:
        if self.valued is None:
            self.valued = any(v is not None for v in self.values)
        return self.valued

    def run(self, js: list[int] | None) -> _Run:
        if js is None:  # every event of the group: its own lists, nothing copied
            return _Run(self.idx, self.ts, self.values, self.evs, self.has_values())
        values = [self.values[j] for j in js]
        return _Run([self.idx[j] for j in js], [self.ts[j] for j in js], values, [self.evs[j] for j in js],
                     self.has_values())

    def filtered(self, rule: AlertRule, valued: bool, op: tuple | None) -> list[int] | None:
        """Return the events a rule's value filter keeps (None: all): those with a value for a threshold, those
        meeting ``op`` for a count rule with one; made once per group and filter."""
        key = (valued, op)
        if key in self.kept:
            return self.kept[key]
        if valued:
            js = [j for j, v in enumerate(self.values) if v is not None]
        elif op is not None:
            js = [j for j, v in enumerate(self.values) if v is not None and rule.meets(v)]
        else:
            js = None
        if js is not None and len(js) == len(self.values):
            js = None
        self.kept[key] = js
        return js

    def near(self, zone: Zone) -> bool:
        """Tell whether any of the group's points may fall in ``zone`` (their bounding boxes meet)."""
        if self.box is None:
            lons = [e.lon for e in self.evs if e.lon is not None and e.lat is not None]
            lats = [e.lat for e in self.evs if e.lon is not None and e.lat is not None]
            self.box = (min(lons), min(lats), max(lons), max(lats)) if lons else (1.0, 1.0, -1.0, -1.0)
        x0, y0, x1, y1 = self.box
        zx0, zy0, zx1, zy1 = zone.box
        return x0 <= zx1 and zx0 <= x1 and y0 <= zy1 and zy0 <= y1


def _places(g: _Group, rule: AlertRule, zones: Mapping[str, Zone], known_streets: Mapping[str, frozenset[str]],
            district: str) -> list[tuple[Place, _Run]]:
    """Return the places the group's events count at for ``rule``, each with the events that count there.

    What ``place_of`` says event by event, made once per group and kind of selection: runs without a value
    filter are shared by every rule of the same scope (the street runs by every street rule, say), and the
    district's and the city's run of the same filter is one run.
    """
    valued = rule.type == "threshold"
    op = (rule.op, rule.value) if rule.type != "threshold" and rule.op is not None else None
    if rule.scope == "zone":
        sel: tuple = ("zone", rule.zone, valued, op)
    else:
        sel = (rule.scope, valued, op)
    got = g.runs.get(sel)
    if got is not None:
        return got
    out: list[tuple[Place, _Run]] = []
    if rule.scope in ("district", "city"):
        js = g.filtered(rule, valued, op)
        if js is None or js:
            run = g.whole.get((valued, op))
            if run is None:
                run = g.whole[(valued, op)] = g.run(js)
            place = Place("city") if rule.scope == "city" else Place(f"district:{district}", district)
            out.append((place, run))
    elif rule.scope == "street":
        js = g.filtered(rule, valued, op)
        streets: dict[str, list[int]] = {}
        known = known_streets.get(district, ())
        evs = g.evs
        for j in range(len(evs)) if js is None else js:
            street = evs[j].street
            if street and street in known:  # a street the pack does not know: free text
                streets.setdefault(street, []).append(j)  # must not grow the rules' state
        out = [(Place(f"street:{district}:{st}", district, street=st), g.run(js)) for st, js in streets.items()]
    else:
        zone = zones[rule.zone]
        if g.near(zone):
            inside = g.zoned.get(zone.code)
            if inside is None:
                inside = g.zoned[zone.code] = [j for j, ev in enumerate(g.evs) if zone.contains(ev.lat, ev.lon)]
            if inside:
                kept = g.filtered(rule, valued, op)
                js = inside if kept is None else sorted(set(inside).intersection(kept))
                if js:
                    out.append((Place(f"zone:{zone.code}", zone.district, zone.code), g.run(js)))
    g.runs[sel] = out
    return out


def gather(index: RuleIndex, stored: list, received_ms: int, known_streets: Mapping[str, frozenset[str]],
           by_id: Mapping[str, AlertRule]) -> tuple[list[dict], list[dict], dict[tuple[str, str], Seen]]:
    """Return what a batch adds: threshold observations, per-minute counts, and the (rule, scope) pairs touched.

    ``stored`` are the batch's new events in event-time order (``StoredEvent``: ``event`` and ``ts_ms``). The
    events are grouped by kind, district and domain first, so each rule is asked once per group, not per event;
    the result is what asking ``place_of`` for every event and rule gives (tests/test_alert_gather.py).
    """
    groups: dict[tuple, _Group] = {}
    for i, s in enumerate(stored):
        ev = s.event
        key = (ev.kind, ev.district, ev.domain)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group()
        g.idx.append(i)
        g.ts.append(s.ts_ms)
        g.values.append(ev.value)
        g.evs.append(ev)
    zones = index.zones
    threshold: dict[tuple[str, str], list[_Run]] = defaultdict(list)
    adds: dict[tuple[str, str, int], list] = {}
    last: dict[tuple[str, str], tuple[int, Place, object]] = {}  # key -> (position, place, newest event)
    for (kind, district, domain), g in groups.items():
        plain, zoned = index.split(kind, district, domain)
        todo = list(plain)
        for zone, rules in zoned:
            if g.near(zone):  # most groups come near no zone: their zones' rules are not asked at all
                todo += rules
        for rule in todo:
            cutoff = None if rule.type == "threshold" else received_ms - rule.window.total_seconds() * 1000
            for place, run in _places(g, rule, zones, known_streets, district):
                key = (rule.id, place.scope)
                if cutoff is None:
                    threshold[key].append(run)
                    j = len(run.ts) - 1
                else:
                    j = -1
                    for minute, lo, hi, vmax in run.minutes:
                        if run.ts[hi - 1] < cutoff:
                            continue  # late events outside the window change nothing now
                        if run.ts[lo] < cutoff:
                            lo = bisect_left(run.ts, cutoff, lo, hi)
                            vmax = _vmax(run.values, lo, hi) if run.valued else None
                        acc = adds.setdefault((rule.id, place.scope, minute), [0, None])
                        acc[0] += hi - lo
                        if vmax is not None:
                            acc[1] = vmax if acc[1] is None else max(acc[1], vmax)
                        j = hi - 1
                    if j < 0:
                        continue
                if key not in last or last[key][0] < run.idx[j]:
                    last[key] = (run.idx[j], place, run.evs[j])
    touched = {key: Seen(place, ev.domain, ev.lat, ev.lon) for key, (_i, place, ev) in last.items()}
    rows = []
    for (rule_id, scope), runs in threshold.items():
        rule = by_id[rule_id]
        if len(runs) == 1:
            ts, values = runs[0].ts, runs[0].values
        else:  # several kinds (or, for the city, districts) feed one place: their events in the batch's order
            merged = sorted((i, t, v) for r in runs for i, t, v in zip(r.idx, r.ts, r.values))
            ts, values = [m[1] for m in merged], [m[2] for m in merged]
        k = len(ts)
        while k > 0 and rule.meets(values[k - 1]):  # the newest run of observations that meet the condition
            k -= 1
        since = ts[k] if k < len(ts) else None
        rows.append({"rule": rule_id, "scope": scope, "last": ts[-1], "value": float(values[-1]), "since": since,
                     "whole": since is not None and since == ts[0]})
        touched[(rule_id, scope)].meets = since is not None
    return rows, [{"rule": r, "scope": sc, "minute": m, "n": n, "vmax": v}
                  for (r, sc, m), (n, v) in adds.items()], touched
