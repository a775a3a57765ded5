"""Gather what an ingest batch adds to the alert rules' state, each event meeting only the rules that may match it.

With hundreds of rules an event matches a handful: the rules that events feed (threshold, rate, geofence) are
indexed by the kind, district and domain an event has, once per such combination, so a batch costs its events
times the rules of their own kind and place, not times every rule (bench.alerts: 500 rules).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from operator import itemgetter
from typing import Iterable, Mapping

import numpy as np

from dashboard.core.alerts import AlertRule, Place, Zone

MINUTE_MS = 60_000
FED = ("threshold", "rate", "geofence")  # the rule types each stored event feeds
CACHE_LIMIT = 10_000  # (kind, district, domain) combinations remembered; kinds are a feed's free text
VECTOR_MIN = 64  # a group of at least this many events is tested against a zone in one numpy call


@dataclass
class Seen:
    """Where a batch touched a rule: the place and what its events said of it."""

    place: Place
    domain: str | None
    lat: float | None = None
    lon: float | None = None
    meets: bool = True  # a threshold's: the batch's newest observation there meets the condition


class _Spec:
    """A rule as the gather asks it, made once per rule: what its events are selected by, its window in ms."""

    __slots__ = ("rule", "id", "threshold", "window_ms", "op", "sel")

    def __init__(self, rule: AlertRule):
        self.rule, self.id = rule, rule.id
        self.threshold = rule.type == "threshold"
        self.window_ms = None if self.threshold else rule.window.total_seconds() * 1000
        self.op = (rule.op, rule.value) if not self.threshold and rule.op is not None else None
        # The selection of a group's events the rule counts at: shared by every rule of the same scope and filter.
        self.sel = (("zone", rule.zone, self.threshold, self.op) if rule.scope == "zone"
                    else (rule.scope, self.threshold, self.op))


class RuleIndex:
    """The rules events feed, looked up by an event's kind, district and domain, with their places made once."""

    def __init__(self, rules: Iterable[AlertRule], zones: Mapping[str, Zone] | None = None):
        self.zones = zones or {}
        self._by_kind: dict[str | None, list[AlertRule]] = defaultdict(list)  # None: a rule of any kind
        for r in rules:
            if r.type in FED:
                for k in dict.fromkeys(r.kind or (None,)):
                    self._by_kind[k].append(r)
        self._specs: dict[str, _Spec] = {}
        self._places: dict[tuple, Place] = {}  # the places events were counted at, made once (frozen, shared)
        self._cache: dict[tuple, tuple[AlertRule, ...]] = {}
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
              ) -> tuple[tuple[_Spec, ...], tuple[tuple[Zone, tuple[_Spec, ...]], ...]]:
        """Return ``candidates`` split in two: the rules of no zone, and those of each zone with its zone (a batch
        asks once per zone whether its events come near it, not once per rule)."""
        key = (kind, district, domain)
        hit = self._split.get(key)
        if hit is None:
            specs = [self._spec(r) for r in self.candidates(kind, district, domain)]
            by_zone: dict[str, list[_Spec]] = defaultdict(list)
            for sp in specs:
                if sp.rule.scope == "zone":
                    by_zone[sp.rule.zone].append(sp)
            hit = (tuple(sp for sp in specs if sp.rule.scope != "zone"),
                   tuple((self.zones[z], tuple(sps)) for z, sps in by_zone.items()))
            if len(self._split) < CACHE_LIMIT:
                self._split[key] = hit
        return hit

    def place(self, how: str, district: str | None, name: str | None = None) -> Place:
        """Return the place of a scope (``city``, ``district``, ``street`` with its name, ``zone`` with its
        code), made once: a batch touches the same few hundred places every time."""
        key = (how, district, name)
        got = self._places.get(key)
        if got is None:
            if how == "city":
                got = Place("city")
            elif how == "district":
                got = Place(f"district:{district}", district)
            elif how == "street":
                got = Place(f"street:{district}:{name}", district, street=name)
            else:
                got = Place(f"zone:{name}", district, name)
            if len(self._places) < CACHE_LIMIT:
                self._places[key] = got
        return got

    def _spec(self, rule: AlertRule) -> _Spec:
        sp = self._specs.get(rule.id)
        if sp is None or sp.rule is not rule:
            sp = self._specs[rule.id] = _Spec(rule)
        return sp

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

    __slots__ = ("idx", "ts", "values", "evs", "runs", "box", "xy", "zoned", "kept", "whole", "valued", "streets")

    def __init__(self, idx: list[int], ts: list[int], values: list, evs: list):
        self.idx, self.ts, self.values, self.evs = idx, ts, values, evs
        self.runs: dict[tuple, list[tuple[str, Place, _Run]]] = {}
        self.box: tuple[float, float, float, float] | None = None
        self.xy: tuple[np.ndarray, np.ndarray] | None = None  # the events' lon and lat (NaN: none)
        self.zoned: dict[str, list[int]] = {}  # zone -> the events inside it, asked once whatever the rules' filters
        self.kept: dict[tuple, list[int] | None] = {}  # (valued, op) -> the events kept (None: all of them)
        self.whole: dict[tuple, _Run] = {}  # (valued, op) -> the run of those events
        self.valued: bool | None = None  # whether any event of the group has a value
        self.streets: dict[str, list[int]] | None = None  # known street -> the events on it, made when first asked

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

    def on_streets(self, known) -> dict[str, list[int]]:
        """Return the group's events by street, of the streets the pack knows (a street it does not know is a
        feed's free text: it must not grow the rules' state), made once per group whatever the rules' filters."""
        if self.streets is None:
            streets: dict[str, list[int]] = {}
            for j, ev in enumerate(self.evs):
                street = ev.street
                if street and street in known:
                    js = streets.get(street)
                    if js is None:
                        streets[street] = [j]
                    else:
                        js.append(j)
            self.streets = streets
        return self.streets

    def inside(self, zone: Zone) -> list[int]:
        """Return the group's events inside ``zone``, asked once per zone whatever the rules' filters: one
        vectorised test for a large group, event by event for a small one (numpy's cost per call is more
        than a few events')."""
        got = self.zoned.get(zone.code)
        if got is None:
            evs = self.evs
            if len(evs) < VECTOR_MIN:
                got = [j for j, ev in enumerate(evs) if zone.contains(ev.lat, ev.lon)]
            else:
                if self.xy is None:
                    nan = float("nan")
                    self.xy = (np.array([nan if e.lon is None or e.lat is None else e.lon for e in evs], dtype=float),
                               np.array([nan if e.lon is None or e.lat is None else e.lat for e in evs], dtype=float))
                got = np.flatnonzero(zone.contains_many(*self.xy)).tolist()
            self.zoned[zone.code] = got
        return got


def _places(g: _Group, spec: _Spec, index: RuleIndex, known_streets: Mapping[str, frozenset[str]],
            district: str) -> list[tuple[str, Place, _Run]]:
    """Return the places the group's events count at for a rule, each (scope, place, the events counted there).

    What ``place_of`` says event by event, made once per group and kind of selection: runs without a value
    filter are shared by every rule of the same scope (the street runs by every street rule, say), and the
    district's and the city's run of the same filter is one run.
    """
    rule, valued, op = spec.rule, spec.threshold, spec.op
    out: list[tuple[str, Place, _Run]] = []
    if rule.scope in ("district", "city"):
        js = g.filtered(rule, valued, op)
        if js is None or js:
            run = g.whole.get((valued, op))
            if run is None:
                run = g.whole[(valued, op)] = g.run(js)
            place = index.place(rule.scope, district)
            out.append((place.scope, place, run))
    elif rule.scope == "street":
        kept = g.filtered(rule, valued, op)
        keep = None if kept is None else set(kept)
        for st, js in g.on_streets(known_streets.get(district, ())).items():
            if keep is not None:
                js = [j for j in js if j in keep]
                if not js:
                    continue
            place = index.place("street", district, st)
            out.append((place.scope, place, g.run(js if len(js) < len(g.evs) else None)))
    else:
        zone = index.zones[rule.zone]
        if g.near(zone):
            inside = g.inside(zone)
            if inside:
                kept = g.filtered(rule, valued, op)
                js = inside if kept is None else sorted(set(inside).intersection(kept))
                if js:
                    place = index.place("zone", zone.district, zone.code)
                    out.append((place.scope, place, g.run(js)))
    g.runs[spec.sel] = out
    return out


def gather(index: RuleIndex, stored: list, received_ms: int, known_streets: Mapping[str, frozenset[str]],
           by_id: Mapping[str, AlertRule]) -> tuple[list[dict], list[dict], dict[tuple[str, str], Seen]]:
    """Return what a batch adds: threshold observations, per-minute counts, and the (rule, scope) pairs touched.

    ``stored`` are the batch's new events in event-time order (``StoredEvent``: ``event`` and ``ts_ms``). The
    events are grouped by kind, district and domain first, so each rule is asked once per group, not per event,
    and a group no rule may want is not looked at again; the result is what asking ``place_of`` for every event
    and rule gives (tests/test_alert_gather.py).
    """
    evs = [s.event for s in stored]
    times = [s.ts_ms for s in stored]
    vals = [ev.value for ev in evs]
    keyed: dict[tuple, list[int]] = {}
    for i, ev in enumerate(evs):
        key = (ev.kind, ev.district, ev.domain)
        js = keyed.get(key)
        if js is None:
            keyed[key] = [i]
        else:
            js.append(i)
    threshold: dict[tuple[str, str], list[_Run]] = defaultdict(list)
    adds: dict[tuple[str, str, int], list] = {}
    last: dict[tuple[str, str], tuple[int, Place, object]] = {}  # key -> (position, place, newest event)
    for (kind, district, domain), idx in keyed.items():
        plain, zoned = index.split(kind, district, domain)
        if not plain and not zoned:
            continue
        if len(idx) == 1:
            i = idx[0]
            g = _Group(idx, [times[i]], [vals[i]], [evs[i]])
        else:  # picked by one C call each (itemgetter), not an interpreted loop per event
            pick = itemgetter(*idx)
            g = _Group(idx, list(pick(times)), list(pick(vals)), list(pick(evs)))
        todo = plain
        if zoned:
            todo = list(plain)
            for zone, specs in zoned:
                if g.near(zone):  # most groups come near no zone: their zones' rules are not asked at all
                    todo += specs
        for spec in todo:
            places = g.runs.get(spec.sel)
            if places is None:
                places = _places(g, spec, index, known_streets, district)
            if not places:
                continue
            rule_id = spec.id
            if spec.threshold:
                for scope, place, run in places:
                    key = (rule_id, scope)
                    threshold[key].append(run)
                    i = run.idx[-1]
                    prev = last.get(key)
                    if prev is None or prev[0] < i:
                        last[key] = (i, place, run.evs[-1])
                continue
            cutoff = received_ms - spec.window_ms
            for scope, place, run in places:
                ts = run.ts
                if ts[-1] < cutoff:
                    continue  # late events outside the window change nothing now
                for minute, lo, hi, vmax in run.minutes:
                    if ts[hi - 1] < cutoff:
                        continue
                    if ts[lo] < cutoff:
                        lo = bisect_left(ts, cutoff, lo, hi)
                        vmax = _vmax(run.values, lo, hi) if run.valued else None
                    at = (rule_id, scope, minute)
                    acc = adds.get(at)
                    if acc is None:
                        adds[at] = [hi - lo, vmax]
                    else:
                        acc[0] += hi - lo
                        if vmax is not None:
                            acc[1] = vmax if acc[1] is None else max(acc[1], vmax)
                # the run's newest event counted: its last minute always is once its newest is in the window
                key = (rule_id, scope)
                i = run.idx[-1]
                prev = last.get(key)
                if prev is None or prev[0] < i:
                    last[key] = (i, place, run.evs[-1])
    touched = {key: Seen(place, ev.domain, ev.lat, ev.lon) for key, (_i, place, ev) in last.items()}
    rows = []
    for (rule_id, scope), runs in threshold.items():
        rule = by_id[rule_id]
        meets = rule.meets
        if len(runs) == 1:
            run = runs[0]
            ts, values = run.ts, run.values
            k = len(ts)
            while k > 0 and meets(values[k - 1]):  # the newest run of observations that meet the condition
                k -= 1
            since, first, newest = (ts[k] if k < len(ts) else None), ts[0], (ts[-1], values[-1])
        else:  # several kinds (or, for the city, districts) feed one place: their events in the batch's order
            since, first, newest = _merged(runs, meets)
        rows.append({"rule": rule_id, "scope": scope, "last": newest[0], "value": float(newest[1]), "since": since,
                     "whole": since is not None and since == first})
        touched[(rule_id, scope)].meets = since is not None
    return rows, [{"rule": r, "scope": sc, "minute": m, "n": n, "vmax": v}
                  for (r, sc, m), (n, v) in adds.items()], touched


def _merged(runs: list[_Run], meets) -> tuple[int | None, int, tuple[int, float]]:
    """Return (since, the first time, (the newest time, its value)) of several runs' observations taken in the
    batch's order, without merging them: the newest run of observations that meet the condition starts after
    the newest one that does not, whichever run holds it (the batch is in event-time order, so position and
    time agree)."""
    broken = -1  # the batch position of the newest observation that does not meet the condition
    for run in runs:
        values, k = run.values, len(run.values)
        while k > 0 and meets(values[k - 1]):
            k -= 1
        if k > 0 and run.idx[k - 1] > broken:
            broken = run.idx[k - 1]
    since_at = first_at = newest_at = None  # (position, time[, value]) of each
    for run in runs:
        idx = run.idx
        if first_at is None or idx[0] < first_at[0]:
            first_at = (idx[0], run.ts[0])
        if newest_at is None or idx[-1] > newest_at[0]:
            newest_at = (idx[-1], run.ts[-1], run.values[-1])
        j = bisect_left(idx, broken + 1)
        if j < len(idx) and (since_at is None or idx[j] < since_at[0]):
            since_at = (idx[j], run.ts[j])
    return (None if since_at is None else since_at[1]), first_at[1], (newest_at[1], newest_at[2])
