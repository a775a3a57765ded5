"""Evaluate the city's alert rules: from what each ingest batch stored, and on a tick that one worker at a time runs.

Exactly once across any number of ingest workers (docs/alerts.md):

* an event is stored by exactly one worker (the events table's dedupe), and the rules' state it feeds (a
  threshold's newest observation, a rate's per-minute count) is written in that same transaction, so each event
  counts once, and only if it is stored;
* the state lives in SQL (``alert_states``, ``alert_counts``), merged by additive or newest-wins upserts, so
  batches of different workers add up whatever order they commit in;
* an alert's every change is a conditional write (``dashboard.storage.alerts.reconcile``): the unique partial
  index allows one open alert per rule and place, and each transition names the status it leaves, so two
  workers reconciling the same alert at once make each change once.

The tick (every ``TICK_MS``, under a Redis lease so normally one worker runs it) promotes pending alerts whose
duration has passed, resolves what stopped holding without a new event (a rate's window moving on), watches
the silence rules, and re-does whatever a failed post-batch evaluation left undone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from dashboard.core import messages
from dashboard.core.alerts import AlertRule, Baseline, Place, anomaly_tail, parse_scope, say
from dashboard.core.bus import BUS_ERRORS
from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.city import SPEC_KINDS, City
from dashboard.core.holidays import baseline_hours
from dashboard.core.rosters import alert_department
from dashboard.core.clock import now_ms
from dashboard.storage import alerts as store
from dashboard.storage.db import is_postgres, lock_conflict
from dashboard.storage.models import district_hours, district_minutes, feed_state, rollup_hours, rollups
from feeds.alert_gather import RuleIndex, Seen, gather

log = logging.getLogger(__name__)
TICK_MS = 2000
LEASE_KEY = "panorama:alerts:tick"
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
WEEK_MS = 7 * 86_400_000
ANOMALY_WINDOW_MS = 10 * MINUTE_MS  # an anomaly rule's window unless it names one
# An evaluation PostgreSQL rolled back to break a lock cycle with another worker's (rare: moves never wait, and
# status changes go in (rule, scope) order) runs again at once rather than waiting for the tick.
again_on_lock_conflict = retry(retry=retry_if_exception(lock_conflict), stop=stop_after_attempt(4),
                               wait=wait_random_exponential(multiplier=0.02, max=0.5), reraise=True)
COUNTED = ("rate", "geofence")  # the rule types whose state is per-minute counts
_DOMAIN_OF_KIND = {k: d for d, kinds in SPEC_KINDS.items() for k in kinds}


class Evaluator:
    """One city's alert rules against one database; any number of them (workers, threads) may run at once."""

    def __init__(self, engine: Engine, city: City, tz: str, *, clock=now_ms):
        self.engine, self.city, self.tz, self.clock = engine, city, tz, clock
        self.rules = city.alert_rules
        self.policies = city.notification_policies  # whom a firing tells (queued with the change: the outbox)
        self.postgres = is_postgres(engine)
        self.by_id = {r.id: r for r in self.rules.rules}
        # A count rule's window in ms and its count, by rule (``_count_specs``, every batch and tick).
        self._counted = {r.id: (int(r.window.total_seconds() * 1000), r.count) for r in self.rules.rules
                         if r.type in COUNTED}
        # The rules events feed, by an event's kind, district and domain (each event meets only those).
        self.index = RuleIndex(self.rules.rules, self.rules.zones)
        self.silence_rules = [r for r in self.rules.rules if r.type == "silence"]
        self.anomaly_rules = [r for r in self.rules.rules if r.type == "anomaly"]
        self.holidays = city.holidays  # an anomaly baseline sets them apart (core.holidays.baseline_hours)
        self._baseline_cache: tuple | None = None  # (the hour and rules it is for, the baseline rows): _baseline_rows
        # How far back a count rule looks: its window, and its duration before that (held since when?).
        spans = [(r.window + r.for_).total_seconds() * 1000 for r in self.rules.rules
                 if r.window is not None and r.type != "anomaly"]
        self.max_window_ms = int(max(spans, default=0))
        self.started_ms = clock()

    @property
    def active(self) -> bool:
        """Tell whether there is any rule to evaluate."""
        return bool(self.by_id)

    # --- in the ingest batch's transaction ----------------------------------------------------------------

    def record(self, conn: Connection, stored: list, received_ms: int) -> dict[tuple[str, str], Seen]:
        """Write what the batch's new events add to the rules' state; return the (rule, scope) pairs touched.

        Runs inside the events' transaction: a fault of the rules' own (not the database's) is logged and
        the batch stored without them, never held back by them.
        """
        try:
            rows, counts, touched = self._gather(stored, received_ms)
        except Exception:  # noqa: BLE001 - the events matter more than the rules evaluated from them
            log.exception("alert rules: could not evaluate a batch of %d events; stored without", len(stored))
            return {}
        store.add_observations(conn, rows, postgres=self.postgres)
        store.add_counts(conn, counts, postgres=self.postgres)
        return touched

    def _gather(self, stored: list, received_ms: int) -> tuple[list[dict], list[dict], dict]:
        """Return what a batch adds: threshold observations, per-minute counts, the places touched."""
        return gather(self.index, stored, received_ms, self.city.known_streets, self.by_id)

    # --- after the batch commits, and on the tick --------------------------------------------------------------

    @again_on_lock_conflict
    def after_batch(self, touched: dict[tuple[str, str], Seen], bus: redis.Redis | None) -> list[store.Change]:
        """Bring the alerts a batch touched in line with their conditions; publish the changes."""
        if not touched:
            return []
        now = self.clock()
        with self.engine.begin() as conn:
            silences = store.active_silences(conn, now)
            opened = {(r["rule"], r["scope"]): r for r in store.open_alerts(conn, {k[0] for k in touched})}
            # A threshold place can newly hold only where the batch's newest observation meets the condition
            # (``Seen.meets``; a newer one from another worker is that worker's to reconcile, and the tick's);
            # a count place where its window's sum, summed by the database, reaches the count.
            found = store.states(conn, [k for k, seen in touched.items() if (seen.meets or k in opened)
                                        and self.by_id[k[0]].type == "threshold"])
            holding = store.holding_counts(conn, self._count_specs({k[0] for k in touched}, now), now,
                                           postgres=self.postgres)
            buckets = self._buckets(conn, now, {k[0] for k in touched if k in holding or (
                k in opened and self.by_id[k[0]].type in COUNTED)})
            # Nothing open and nothing to open at most of the places a batch touches: only the others are asked.
            due = {k for k in touched if k in opened or k in holding}
            due.update(k for k, st in found.items() if k in touched and st["since_ms"] is not None
                       and self.by_id[k[0]].type == "threshold")
            changes, moves = [], []
            for rule_id, scope in sorted(due):
                cond = self._condition(conn, self.by_id[rule_id], scope, now, found, touched[(rule_id, scope)],
                                       buckets)
                changes += store.reconcile(conn, cond, now, tz=self.tz, silences=silences,
                                           open_row=opened.get((rule_id, scope)), known=True, postgres=self.postgres,
                                           policies=self.policies, centres=self.city.centres, moves=moves)
            store.move_values(conn, moves)
            self.escalate(conn, changes, now)
        self.publish(bus, changes, now)
        return changes

    @again_on_lock_conflict
    def tick(self, bus: redis.Redis | None, at_ms: int | None = None) -> list[store.Change]:
        """Re-evaluate every open alert, every holding condition and the silence rules; publish the changes."""
        now = self.clock() if at_ms is None else at_ms
        changes: list[store.Change] = []
        with self.engine.begin() as conn:
            silences = store.active_silences(conn, now)
            every = store.open_alerts(conn)
            changes += store.retire(conn, [r for r in every if r["rule"] not in self.by_id], now)
            opened = {(r["rule"], r["scope"]): r for r in every if r["rule"] in self.by_id}
            found = store.states(conn, [k for k in opened if self.by_id[k[0]].type == "threshold"])
            keys = set(opened) | {k for k, st in found.items() if st["since_ms"] is not None and k[0] in self.by_id}
            keys |= store.holding_counts(conn, self._count_specs(self.by_id, now), now, postgres=self.postgres)
            totals = self._buckets(conn, now, {k[0] for k in keys if self.by_id[k[0]].type in COUNTED})
            conds = [self._condition(conn, self.by_id[r], s, now, found, None, totals) for r, s in sorted(keys)
                     if self.by_id[r].type not in ("silence", "anomaly")]
            conds += self._silences(conn, now, opened)
            conds += self._anomalies(conn, now, opened)
            moves: list[dict] = []  # the open alerts' moving values: one statement for the tick (store.move_values)
            for cond in conds:
                changes += store.reconcile(conn, cond, now, tz=self.tz, silences=silences,
                                           open_row=opened.get((cond.rule.id, cond.scope)), known=True,
                                           postgres=self.postgres, policies=self.policies, centres=self.city.centres,
                                           moves=moves)
            store.move_values(conn, moves)
            self.escalate(conn, changes, now)
            if self.max_window_ms:
                store.prune_counts(conn, now - self.max_window_ms - 2 * MINUTE_MS)
        self.publish(bus, changes, now)
        return changes

    def retire(self, bus: redis.Redis | None) -> list[store.Change]:
        """Resolve the open alerts of rules this pack no longer has (a worker loading its rules does this, and
        every tick after it); publish the changes."""
        now = self.clock()
        with self.engine.begin() as conn:
            changes = store.retire(conn, [r for r in store.open_alerts(conn) if r["rule"] not in self.by_id], now)
        self.publish(bus, changes, now)
        return changes

    def escalate(self, conn: Connection, changes: list[store.Change], now: int) -> None:
        """Start the duty escalation of each alert these changes fired, in their transaction (only the writer of
        a change gets it back, so each firing escalates once however many workers evaluate)."""
        for c in changes:
            a = c.alert
            if a["status"] != "firing" or a["fired_ms"] != now:
                continue
            rule = self.by_id.get(a["rule"])
            kind = (rule.kind or (None,))[0] if rule is not None else None
            department = alert_department(self.city.rosters, rule.notify if rule else None, self.city.rules,
                                          domain=a["domain"], kind=kind, district=a["district"],
                                          severity=rule.severity if rule else 1, at_ms=now)
            store.escalate(conn, self.city.rosters, a, department, now)

    def _count_specs(self, rule_ids, now: int) -> list[tuple[str, int, int]]:
        """Return (rule, its window's first minute, its count) of the count rules among ``rule_ids``."""
        out = []
        counted = self._counted
        for rule_id in rule_ids:
            got = counted.get(rule_id)
            if got is not None:
                start = now - got[0]
                out.append((rule_id, start - start % MINUTE_MS, got[1]))
        return out

    def _buckets(self, conn: Connection, now: int, rules=None) -> dict[tuple[str, str], dict[int, int]]:
        """Return each count rule's matching events per scope and minute, as far back as its window and duration."""
        out: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        if not self.max_window_ms or (rules is not None and not rules):
            return {}
        for (rule_id, scope, minute), (n, _vmax) in store.counts(conn, now - self.max_window_ms, rules).items():
            if rule_id in self.by_id and self.by_id[rule_id].type in COUNTED:
                out[(rule_id, scope)][minute] = n
        return out

    def _condition(self, conn: Connection, rule: AlertRule, scope: str, now: int, found: dict,
                   seen: Seen | None, totals: dict | None = None) -> store.Condition:
        place = seen.place if seen is not None else parse_scope(scope)
        district = place.district
        if place.zone is not None:
            district = self.rules.zones[place.zone].district
        domain = (seen.domain if seen else None) or rule.domain or _DOMAIN_OF_KIND.get((rule.kind or ("",))[0])
        lat, lon = (seen.lat, seen.lon) if seen else (None, None)
        if place.zone is not None:
            zone = self.rules.zones[place.zone]
            lon = sum(p[0] for p in zone.polygon) / len(zone.polygon)
            lat = sum(p[1] for p in zone.polygon) / len(zone.polygon)
        elif lat is None and district in self.city.by_code:
            lat, lon = self.city.by_code[district].lat, self.city.by_code[district].lon
        if rule.type == "threshold":
            st = found.get((rule.id, scope))
            holding, since, value = (st is not None and st["since_ms"] is not None,
                                     st["since_ms"] if st else None, st["value"] if st else None)
        else:
            if totals is None:
                totals = self._buckets(conn, now, [rule.id])
            buckets = totals.get((rule.id, scope), {})
            n = _window_sum(buckets, now, rule)
            holding, since, value = n >= rule.count, _held_since(buckets, now, rule), float(n)
        return self._make(rule, scope, district, place.zone, domain, holding, since, value, lat, lon, place)

    def _make(self, rule, scope, district, zone, domain, holding, since, value, lat, lon, place,
              baseline: float | None = None) -> store.Condition:
        zh, en = self.place_names(place, district)
        return store.Condition(rule=rule, scope=scope, district=district, zone=zone, domain=domain, holding=holding,
                               since_ms=since, value=value, lat=lat, lon=lon, baseline=baseline,
                               title=say(rule, "zh", value=value, baseline=baseline, place=zh),
                               title_en=say(rule, "en", value=value, baseline=baseline, place=en))

    def _anomalies(self, conn: Connection, now: int, opened: dict | None = None) -> list[store.Condition]:
        """Return the anomaly rules' conditions: the window's count against the same hour in the baseline's past
        hours (hour rollups; the same hour of the week, holidays set apart: ``core.holidays.baseline_hours``),
        improbable under a negative binomial with those hours' own mean and variance (docs/alerts.md).

        No condition where no baseline exists yet (fewer than two of those hours were ingested at all): an open
        alert there is left as it is rather than resolved on no evidence. ``opened``: the open alerts by (rule,
        scope); a place with none whose condition does not hold gives no condition (there is nothing to do).

        Four reads for every rule together (the minutes and the hours, of kinds and of domains), summed per rule
        here: one pair of queries per rule cost the tick ~70 statements at 500 rules.
        """
        if not self.anomaly_rules:
            return []
        specs = []
        for rule in self.anomaly_rules:
            base = rule.baseline or Baseline()
            window = int(rule.window.total_seconds() * 1000) if rule.window else ANOMALY_WINDOW_MS
            specs.append((rule, base, window))
        kinds = sorted({k for r, _b, _w in specs for k in (r.kind or ())})
        domains = sorted({r.domain for r, _b, _w in specs if not r.kind and r.domain})
        chosen, hour_n = self._baseline_rows(conn, now, {base.weeks for _r, base, _w in specs}, kinds, domains)
        start = now - max(w for _r, _b, w in specs)
        start -= start % MINUTE_MS
        minute_n = _rollup_rows(conn, kinds, domains, start, now)
        out_conds: list[store.Condition] = []
        for rule, base, window in specs:
            ran = chosen[base.weeks]
            if len(ran) < min(2, base.weeks):
                continue
            first = now - window
            first -= first % MINUTE_MS
            observed: dict[str | None, int] = defaultdict(int)
            history: dict[str | None, dict[int, int]] = defaultdict(lambda: dict.fromkeys(ran, 0))
            for district, minutes in _rows_of(minute_n, rule):
                observed[district] += sum(n for m, n in minutes.items() if first <= m <= now)
            for district, per_hour in _rows_of(hour_n, rule):
                past = history[district]
                for h in ran:
                    past[h] += per_hour.get(h, 0)
            if rule.scope == "city":
                city = dict.fromkeys(ran, 0)
                for past in history.values():
                    for h, n in past.items():
                        city[h] += n
                places = {None: (sum(observed.values()), city)}
            else:
                places = {d: (observed.get(d, 0), history.get(d, {})) for d in rule.districts or self.city.by_code}
            for district, (x, counts) in places.items():
                surprise = anomaly_tail(x, [counts.get(h, 0) for h in ran], window / HOUR_MS, base.floor)
                holding = x >= base.min_count and surprise.p < base.p
                scope = "city" if district is None else f"district:{district}"
                if not holding and opened is not None and (rule.id, scope) not in opened:
                    continue
                out_conds.append(self._make(rule, scope, district, None, rule.domain or _DOMAIN_OF_KIND.get(
                    (rule.kind or ("",))[0]), holding, None, float(x), None, None, parse_scope(scope),
                    baseline=round(surprise.expected, 1)))
        return out_conds

    def _baseline_rows(self, conn: Connection, now: int, weeks: set[int], kinds: list[str], domains: list[str]
                       ) -> tuple[dict[int, list[int]], dict]:
        """Return the anomaly baselines' hours per ``weeks`` (those the system ran in) and their hour rollups
        (``_rollup_rows``' shape), read once an hour: past hours do not change (a backfill of weeks-old events
        reaches the baseline in the next hour, as the risk score's long windows)."""
        key = (now - now % HOUR_MS, tuple(sorted(weeks)), tuple(kinds), tuple(domains))
        if self._baseline_cache is not None and self._baseline_cache[0] == key:
            return self._baseline_cache[1]
        chosen: dict[int, list[int]] = {}
        for w in weeks:
            past, _basis = baseline_hours(now, w, self.tz, self.holidays)
            # The hours the system was ingesting anything then: a district silent in them counts as zero.
            chosen[w] = sorted(set(conn.execute(select(district_hours.c.hour_ms).where(
                district_hours.c.hour_ms.in_(past)).distinct()).scalars())) if past else []
        hours_all = sorted({h for ran in chosen.values() for h in ran})
        got = (chosen, _rollup_rows(conn, kinds, domains, None, None, hours_all))
        self._baseline_cache = (key, got)
        return got

    def _silences(self, conn: Connection, now: int, opened: dict | None = None) -> list[store.Condition]:
        """Return the silence rules' conditions: a feed (or a district's, or a kind's) quiet for over its gap.

        Three reads for every rule together (the feeds' newest events, and the newest minute per district and
        domain, and per kind), looked up per rule here. ``opened`` as for ``_anomalies``.
        """
        if not self.silence_rules:
            return []
        lookbacks = {r.id: max(3 * int(r.gap.total_seconds() * 1000), 3_600_000) for r in self.silence_rules}
        oldest = now - max(lookbacks.values())
        domains = sorted({r.domain for r in self.silence_rules})
        feeds = dict(conn.execute(select(feed_state.c.domain, feed_state.c.last_event_ms)
                                  .where(feed_state.c.domain.in_(domains))).all())
        newest: dict[tuple, int] = {}  # (district, domain, kind or None) -> the newest minute within the lookback
        if any(not r.kind and not (r.scope == "city") for r in self.silence_rules):
            for d, dom, m in conn.execute(select(district_minutes.c.district, district_minutes.c.domain,
                                                 func.max(district_minutes.c.minute_ms)).where(
                    district_minutes.c.domain.in_(domains), district_minutes.c.minute_ms >= oldest)
                    .group_by(district_minutes.c.district, district_minutes.c.domain)):
                newest[(d, dom, None)] = m
        kinds = sorted({k for r in self.silence_rules for k in (r.kind or ())})
        if kinds:
            for d, dom, k, m in conn.execute(select(rollups.c.district, rollups.c.domain, rollups.c.kind,
                                                    func.max(rollups.c.minute_ms)).where(
                    rollups.c.kind.in_(kinds), rollups.c.minute_ms >= oldest)
                    .group_by(rollups.c.district, rollups.c.domain, rollups.c.kind)):
                newest[(d, dom, k)] = m
        out = []
        for rule in self.silence_rules:
            gap = int(rule.gap.total_seconds() * 1000)
            lookback = lookbacks[rule.id]
            if rule.scope == "city" and rule.kind is None:
                # The newest event's own time, as /api/health's freshness reads it: a backlog replayed late
                # is judged by when its events happened, not when they arrived.
                last = feeds.get(rule.domain)
                # Never seen: silent since this process began watching (a new install does not fire at once).
                lasts = {None: last if last is not None else self.started_ms}
            else:
                seen: dict[str, int] = {}
                for (d, dom, k), m in newest.items():
                    if dom == rule.domain and m >= now - lookback and (k in rule.kind if rule.kind else k is None):
                        seen[d] = max(seen.get(d, m + MINUTE_MS), m + MINUTE_MS)
                unseen = max(now - lookback, self.started_ms)  # nothing within the lookback
                if rule.scope == "city":
                    lasts = {None: max(seen.values(), default=unseen)}
                else:
                    codes = rule.districts or tuple(self.city.by_code)
                    lasts = {d: seen.get(d, unseen) for d in codes}
            for district, last in lasts.items():
                scope = "city" if district is None else f"district:{district}"
                silent = now - last
                if silent <= gap and opened is not None and (rule.id, scope) not in opened:
                    continue
                out.append(self._make(rule, scope, district, None, rule.domain, silent > gap, last + gap,
                                      float(silent // MINUTE_MS), None, None, parse_scope(scope)))
        return out

    def place_names(self, place: Place, district: str | None) -> tuple[str, str]:
        """Return the place of an alert named in Chinese and English."""
        if place.zone is not None:
            zone = self.rules.zones[place.zone]
            return zone.name, zone.name_en
        d = self.city.by_code.get(district or "")
        if d is None:
            return self.city.name, self.city.name_en
        if place.street:
            return (f"{d.name}{self.city.street_name(d.code, place.street, 'zh')}",
                    f"{self.city.street_name(d.code, place.street, 'en')}, {d.name_en}")
        return d.name, d.name_en

    def publish(self, bus: redis.Redis | None, changes: list[store.Change], at_ms: int) -> None:
        """Publish committed alert changes (and the incidents they opened) on ``panorama:updates``."""
        if not changes or bus is None:
            return
        incidents = [messages.incident_view(c.incident, self.tz, domain=True) for c in changes if c.incident]
        msg = messages.encode_delta(at_ms, incidents=incidents,
                                    alerts=[messages.alert_view(c.alert, self.tz, None) for c in changes])
        try:
            bus.publish(UPDATES_CHANNEL, msg)
        except BUS_ERRORS:
            log.warning("could not publish %d alert change(s); the screens' next read shows them", len(changes))


def _rollup_rows(conn: Connection, kinds: list[str], domains: list[str], lo: int | None, hi: int | None,
                 hours: list[int] | None = None) -> dict:
    """Return rollup counts of these kinds (``rollups``, ``rollup_hours``) and domains (``district_minutes``,
    ``district_hours``) per minute from ``lo`` to ``hi``, or per hour of ``hours``, indexed for ``_rows_of``:
    {("kind", kind) or ("domain", domain): [(district, domain, {minute or hour: n})]}."""
    out: dict[tuple, list] = defaultdict(list)
    by_minute = hours is None
    for table, keys in (((rollups if by_minute else rollup_hours), kinds),
                        ((district_minutes if by_minute else district_hours), domains)):
        if not keys or (not by_minute and not hours):
            continue
        at = table.c.minute_ms if by_minute else table.c.hour_ms
        by_kind = "kind" in table.c
        cols = [table.c.district, table.c.domain] + ([table.c.kind] if by_kind else [])
        where = [(table.c.kind if by_kind else table.c.domain).in_(keys),
                 at.between(lo, hi) if by_minute else at.in_(hours)]
        cells: dict[tuple, dict[int, int]] = defaultdict(dict)
        for row in conn.execute(select(*cols, at, func.sum(table.c.n)).where(*where).group_by(*cols, at)):
            cells[(row[0], row[1], row[2] if by_kind else None)][row[-2]] = int(row[-1] or 0)
        for (district, domain, kind), counts in cells.items():
            out[("kind", kind) if by_kind else ("domain", domain)].append((district, domain, counts))
    return out


def _rows_of(rows: dict, rule: AlertRule):
    """Yield (district, counts) of the rollup rows (``_rollup_rows``) that count for an anomaly rule."""
    if rule.kind:
        for kind in dict.fromkeys(rule.kind):
            for district, domain, counts in rows.get(("kind", kind), ()):
                if rule.domain is None or rule.domain == domain:
                    yield district, counts
    else:
        for district, _domain, counts in rows.get(("domain", rule.domain), ()):
            yield district, counts


def _window_sum(buckets: dict[int, int], at: int, rule: AlertRule) -> int:
    """Return the matching events of a count rule's window ending at ``at`` (event time, whole minutes: the
    minute the window's start falls in counts, so at most a minute more than the window)."""
    start = at - int(rule.window.total_seconds() * 1000)
    start -= start % MINUTE_MS
    return sum(n for minute, n in buckets.items() if start <= minute <= at)


def _held_since(buckets: dict[int, int], now: int, rule: AlertRule) -> int | None:
    """Return since when (event time, to the minute) a count rule's condition has held without a break, looking
    back as far as its duration needs; None when it does not hold now."""
    if _window_sum(buckets, now, rule) < rule.count:
        return None
    since, at, oldest = now, now - MINUTE_MS, now - int(rule.for_.total_seconds() * 1000)
    while at >= oldest and _window_sum(buckets, at, rule) >= rule.count:
        since, at = at, at - MINUTE_MS
    return oldest if at < oldest else since


class Reconciler:
    """Run ``Evaluator.after_batch`` off the ingest thread: the next batch is read and parsed while the last one's
    alerts are brought in line, and what several batches touched while one reconcile ran is one reconcile.

    Nothing of exactly-once rests on it: every change is a conditional write, and what a worker that stops (or
    dies) before reconciling leaves undone, the tick redoes (it re-evaluates every holding condition).
    """

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self._lock = threading.Lock()
        self._pending: dict = {}
        self._bus = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, touched: dict, bus: redis.Redis | None) -> None:
        """Queue the places a committed batch touched (merged with those still waiting)."""
        with self._lock:
            self._pending.update(touched)
            self._bus = bus
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alert-reconcile", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                touched, self._pending, bus = self._pending, {}, self._bus
            if not touched:
                continue
            try:
                self.evaluator.after_batch(touched, bus)
            except Exception:  # noqa: BLE001 - the events are stored and acknowledged; the alert tick redoes this
                log.exception("alert evaluation after a batch failed; the next tick reconciles")


class AlertTicker:
    """Run ``Evaluator.tick`` every ``every_ms`` in whichever worker holds the Redis lease; until stopped."""

    def __init__(self, evaluator: Evaluator, connect, stop_event: threading.Event, every_ms: int = TICK_MS,
                 owner: str = ""):
        self.evaluator, self.connect, self.stop_event, self.every_ms = evaluator, connect, stop_event, every_ms
        self.owner = owner or f"{id(self)}"
        self.ticks = 0
        self._thread: threading.Thread | None = None

    def tick_once(self, bus: redis.Redis) -> list[store.Change] | None:
        """Run one tick if this worker takes the lease (None: another has it)."""
        # The lease only saves work: reconcile is safe when two ticks overlap (a Redis failover, a slow tick).
        if not bus.set(LEASE_KEY, self.owner, nx=True, px=max(1, int(self.every_ms * 0.9))):
            return None
        self.ticks += 1
        return self.evaluator.tick(bus)

    def _run(self) -> None:
        bus = None
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                bus = bus or self.connect()
                self.tick_once(bus)
            except BUS_ERRORS:
                log.warning("alert tick: Redis unavailable; retrying", exc_info=True)
                bus = None
            except Exception:  # noqa: BLE001 - a database blip must not end the ticker
                log.exception("alert tick failed; retrying")
            self.stop_event.wait(max(0.05, self.every_ms / 1000 - (time.monotonic() - started)))

    def start(self) -> "AlertTicker":
        """Start the ticker thread."""
        self._thread = threading.Thread(target=self._run, name="alert-ticker", daemon=True)
        self._thread.start()
        return self


def start_alert_ticker(services, stop_event: threading.Event, every_ms: int = TICK_MS) -> AlertTicker | None:
    """Start the alert ticker of a worker on ``services`` (None when the city has no alert rules)."""
    evaluator = Evaluator(services.engine, services.city, services.config["PANORAMA_TZ"], clock=services.clock)
    try:  # the rules are loaded: the alerts of rules gone from the pack end now (the tick redoes a failure here)
        evaluator.retire(services.connect_bus())
    except Exception:  # noqa: BLE001 - a database or Redis blip at start must not stop the worker
        log.exception("alert rules: could not resolve the alerts of removed rules; the tick retries")
    if not evaluator.active:
        return None
    return AlertTicker(evaluator, services.connect_bus, stop_event, every_ms).start()
