"""A district's risk, 0–100: how far it stands above its own seasonal baseline, raised by its open alerts.

The same hour of the week over the last weeks (hour rollups) says what a window usually holds; how improbable
the window's count is under it (a Poisson tail, ``core.alerts.poisson_tail``, as the anomaly rules) is the
surprise ``S = -log10 P(X >= x)``, mapped to 0–100 so a colour means the same at 3 a.m. and at rush hour.
docs/alerts.md ("The risk score") says why each choice.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from dashboard.core.alerts import poisson_tail
from dashboard.core.channels import DOMAINS
from dashboard.core.city import District
from dashboard.storage.models import alerts, district_hours

HOUR_MS = 3_600_000
WEEK_MS = 7 * 86_400_000
WEEKS = 4  # the baseline: the same span 1..4 weeks back
MIN_WEEKS = 2  # fewer past spans the system was running for: no baseline (as the anomaly rules)
FLOOR = 1.0  # the least expected count (as the anomaly rules' floor): a quiet night's one event is not news
SURPRISE_70 = 3.0  # S = 3 (p = 0.001, the anomaly rules' default) reads 70, the orange line
TAU = SURPRISE_70 / math.log(1 / 0.3)
MAX_SURPRISE = 300.0  # past this a tail underflows; the score is 100 long before
# An open alert of the district holds its risk at least this high: red reads red whatever the counts say.
LEVEL_FLOOR = {"red": 90.0, "orange": 70.0, "yellow": 50.0, "blue": 30.0}
OPEN_STATUSES = ("firing", "acknowledged")
BASIS_BASELINE, BASIS_POPULATION = "baseline", "population"
# The fallback with no baseline (and the briefings' figure): weight of one event of each severity, a critical
# event weighing as much as fifty routine ones ...
SEVERITY_WEIGHT = (0.0, 0.1, 0.5, 2.0, 5.0)
# ... and the weighted events per hour per 100,000 residents at which it reads 63 (1 - 1/e).
PRESSURE_SCALE = 200.0
# How long a process's pages and API reuse a risk they computed (RiskCache): a live page polls about this often,
# and the map's colour moves on whole points, not on one more event within seconds.
FRESH_MS = 5_000


def pressure_score(sev: tuple[int, int, int, int], minutes: int, population: int) -> float:
    """Map a window's severity counts to a 0–100 pressure, per resident and per hour, saturating smoothly.

    The risk before baselines: it reads 2–10 in an ordinary city, so it is only the fallback where no baseline
    exists yet (a new installation), and the briefings' per-district figure.
    """
    weighted = sum(SEVERITY_WEIGHT[i + 1] * n for i, n in enumerate(sev))
    per_hour_per_100k = weighted * (60 / minutes) * (100_000 / max(population, 1))
    return round(100.0 * (1.0 - math.exp(-per_hour_per_100k / PRESSURE_SCALE)), 1)


def notable(block: list[int] | tuple[int, ...]) -> int:
    """Return the events of a rollup block ``[n, sev1, sev2, sev3, sev4]`` that count for risk: minor and up.

    Severity 1 is the routine reading (a speed loop, an AQI station on a clean day), which arrives at the rate
    the sensors report, not the rate trouble does; a pollution episode's readings turn severity 2 and count.
    """
    return int(block[2]) + int(block[3]) + int(block[4])


def surprise(x: int, samples: list[float]) -> float:
    """Return -log10 P(X >= x) under the baseline ``samples`` (one count per past week), 0 at or under it.

    Quasi-Poisson: where the weeks vary more than a Poisson count would (var > mean), the count and the mean
    are both divided by that dispersion, so a busy feed's ordinary 10 % swing is not read as a surge.
    """
    mu = sum(samples) / len(samples)
    phi = 1.0
    if len(samples) >= 2 and mu > 0:
        var = sum((s - mu) ** 2 for s in samples) / (len(samples) - 1)
        phi = max(1.0, var / mu)
    p = poisson_tail(round(x / phi), max(mu / phi, FLOOR))
    return MAX_SURPRISE if p <= 0 else min(MAX_SURPRISE, -math.log10(p))


def score(s: float) -> float:
    """Map a surprise to 0–100, saturating: S 1 → 33, 2 → 55, 3 (p 0.001) → 70, 6 → 91."""
    return round(100.0 * (1.0 - math.exp(-max(0.0, s) / TAU)), 1)


def raised(value: float, levels: Iterable[str]) -> float:
    """Return the risk held up by the levels of the district's open alerts (red ≥ 90, orange ≥ 70, ...)."""
    return max([value, *(LEVEL_FLOOR.get(level, 0.0) for level in levels)])


def past_spans(start: int, end: int, first_hour: int | None, weeks: int = WEEKS) -> list[tuple[int, int]]:
    """Return the same span ``k`` weeks back (k = 1..weeks), each only if the system was running by then."""
    if first_hour is None:
        return []
    return [(start - k * WEEK_MS, end - k * WEEK_MS) for k in range(1, weeks + 1) if start - k * WEEK_MS >= first_hour]


@dataclass(frozen=True)
class Baseline:
    """A span's baseline: how many past weeks it rests on, and each (district, domain)'s notable events in
    each of them (a place absent from ``samples`` had none in any)."""

    weeks: int
    samples: dict[tuple[str, str], list[float]]

    def of(self, district: str, domain: str) -> list[float]:
        """Return the place's count in each past week, zeros where it had none."""
        return self.samples.get((district, domain)) or [0.0] * self.weeks


def baselines(conn: Connection, spans: Mapping[int, tuple[int, int]], weeks: int = WEEKS,
              cache: dict | None = None) -> dict[int, Baseline | None]:
    """Return, for each window (its minutes: its span ``[start, end)``), the notable events of each (district,
    domain) in the same span of each past week the system was running for; None for a window with fewer than
    ``MIN_WEEKS`` of them.

    Two reads of the hour rollups. Windows under a week: every span and week a filtered sum over just those
    hours, a partial hour at an edge counted pro rata. A week and longer (whole hours, ending with the current
    one): the days back from the window's end summed once per district and domain, and each week's span added
    up from its days here, so 30 days times four weeks is one pass over the rows, not four. Those days end with
    the current hour, so a builder that passes a ``cache`` (a dict it keeps: the gateway) reads them once an
    hour: past weeks' rollups do not change, bar a backfill of week-old events, seen within the hour.
    """
    h = district_hours.c
    first = conn.execute(select(func.min(h.hour_ms))).scalar()
    past = {key: past_spans(s, e, first, weeks) for key, (s, e) in spans.items()}
    past = {key: p for key, p in past.items() if len(p) >= MIN_WEEKS}
    out: dict[int, Baseline | None] = {key: None for key in spans}
    for key, p in past.items():
        out[key] = Baseline(len(p), {})
    short = {key: p for key, p in past.items() if key < WEEK_MINUTES}
    long = {key: p for key, p in past.items() if key >= WEEK_MINUTES}
    if short:
        _short_spans(conn, short, out)
    if long:
        _long_spans(conn, long, spans, out, cache)
    return out


WEEK_MINUTES = 7 * 1440
DAY_MS = 86_400_000


def _short_spans(conn: Connection, past: dict[int, list[tuple[int, int]]], out: dict[int, Baseline | None]) -> None:
    h = district_hours.c
    n = h.sev2 + h.sev3 + h.sev4
    cols, order, edges, ranges = [], [], {}, []
    for key, p in past.items():
        for i, (a, b) in enumerate(p):
            ranges.append(and_(h.hour_ms >= a - a % HOUR_MS, h.hour_ms < b))
            lo, hi = -(-a // HOUR_MS) * HOUR_MS, b - b % HOUR_MS
            if lo < hi:
                cols.append(func.sum(n).filter(h.hour_ms >= lo, h.hour_ms < hi))
                order.append((key, i))
            for hour in {a - a % HOUR_MS, hi}:  # the partial hours at the edges, weighed here
                weight = (min(hour + HOUR_MS, b) - max(hour, a)) / HOUR_MS
                if weight > 0 and (hour < lo or hour >= hi):
                    edges.setdefault(hour, []).append((key, i, weight))
    sums: dict[tuple[str, str], dict[tuple[int, int], float]] = {}
    if cols:
        for district, domain, *values in conn.execute(select(h.district, h.domain, *cols).where(or_(*ranges))
                                                      .group_by(h.district, h.domain)):
            sums[(district, domain)] = {at: float(v or 0) for at, v in zip(order, values)}
    if edges:
        for district, domain, hour, v in conn.execute(select(h.district, h.domain, h.hour_ms, n).where(
                h.hour_ms.in_(sorted(edges)))):
            place = sums.setdefault((district, domain), {})
            for key, i, weight in edges[hour]:
                place[(key, i)] = place.get((key, i), 0.0) + float(v) * weight
    for place, by in sums.items():
        for key, p in past.items():
            out[key].samples[place] = [by.get((key, i), 0.0) for i in range(len(p))]


def _long_spans(conn: Connection, past: dict[int, list[tuple[int, int]]], spans: Mapping[int, tuple[int, int]],
                out: dict[int, Baseline | None], cache: dict | None) -> None:
    h = district_hours.c
    # Such a window is whole hours ending with the current one (queries.window_bounds): its end is the next
    # hour, and day j back from it is [end - (j+1) days, end - j days); week k's span is days 7k .. 7k+L-1.
    end = spans[min(past)][1]
    end = end - end % HOUR_MS + (HOUR_MS if end % HOUR_MS else 0)
    oldest = max(len(p) for p in past.values())
    days = max(past) // 1440
    day = (end - 1 - h.hour_ms) // DAY_MS  # integer division on both databases
    key = (end, oldest, days)
    by_day: dict[tuple[str, str], dict[int, float]] | None = (cache or {}).get(key)
    if by_day is None:
        rows = conn.execute(select(h.district, h.domain, day, func.sum(h.sev2 + h.sev3 + h.sev4)).where(
            h.hour_ms >= end - (7 * oldest + days) * DAY_MS, h.hour_ms < end - WEEK_MS)
            .group_by(h.district, h.domain, day))
        by_day = {}
        for district, domain, j, v in rows:
            by_day.setdefault((district, domain), {})[int(j)] = float(v or 0)
        if cache is not None:  # only the current hour's: what a builder holds stays one entry
            cache.clear()
            cache[key] = by_day
    for key, p in past.items():
        start, stop = spans[key]
        elapsed = (stop - start) / (end - start)  # the observed window stops now, inside its last hour
        length = key // 1440
        for place, d in by_day.items():
            out[key].samples[place] = [elapsed * sum(d.get(j, 0.0) for j in range(7 * k, 7 * k + length))
                                       for k in range(1, len(p) + 1)]


def open_levels(conn: Connection, at_ms: int) -> dict[str, list[str]]:
    """Return the levels of the alerts open (firing or acknowledged) at ``at_ms``, per district.

    Read as of ``at_ms`` (fired by then, not resolved by then), so a replayed minute is raised by the alerts of
    that minute; live, that is the alerts firing and acknowledged now.
    """
    a = alerts.c
    rows = conn.execute(select(a.district, a.level).where(
        a.district.isnot(None), a.fired_ms.isnot(None), a.fired_ms <= at_ms,
        or_(a.status.in_(OPEN_STATUSES), and_(a.resolved_ms.isnot(None), a.resolved_ms > at_ms))))
    out: dict[str, list[str]] = {}
    for district, level in rows:
        out.setdefault(district, []).append(level)
    return out


def district_risks(conn: Connection, districts: Iterable[District], now_ms: int,
                   windows: Mapping[int, tuple[int, Mapping[tuple[str, str], list[int]]]],
                   cache: "dict | RiskCache | None" = None) -> dict[int, tuple[str, dict[str, float]]]:
    """Return each window's basis and every district's risk in it.

    ``windows`` maps a window's minutes to its start and its counts ``{(district, domain): [n, sev1..sev4]}``
    (``queries.window_counts``' blocks); the window runs to ``now_ms``, and so does its baseline, week by week.
    The surprise is the highest of the district's four domains (a surge of fights is not drowned by a steady
    stream of traffic reports). With no baseline: the population pressure, basis ``population``. ``cache``: a
    dict, see ``baselines``; a ``RiskCache`` (a process's, on its Services): the answer it kept is reused while
    fresh and the open alerts are the same.
    """
    districts = list(districts)
    levels = open_levels(conn, now_ms)
    if isinstance(cache, RiskCache):
        key = (tuple(sorted(windows)), tuple(d.code for d in districts))
        kept = cache.fresh(key, now_ms, levels)
        if kept is not None:
            return kept
        out = _risks(conn, districts, now_ms, windows, cache.baselines, levels)
        cache.keep(key, now_ms, levels, out)
        return out
    return _risks(conn, districts, now_ms, windows, cache, levels)


def _risks(conn: Connection, districts: list[District], now_ms: int, windows: Mapping, cache: dict | None,
           levels: dict[str, list[str]]) -> dict[int, tuple[str, dict[str, float]]]:
    bases = baselines(conn, {m: (start, now_ms) for m, (start, _) in windows.items()}, cache=cache)
    zero = [0, 0, 0, 0, 0]
    out = {}
    for minutes, (_, counts) in windows.items():
        base = bases[minutes]
        risks = {}
        for d in districts:
            if base is not None:
                s = max(surprise(notable(counts.get((d.code, dom), zero)), base.of(d.code, dom)) for dom in DOMAINS)
                value = score(s)
            else:
                sev = [sum(counts.get((d.code, dom), zero)[i] for dom in DOMAINS) for i in range(1, 5)]
                value = pressure_score(tuple(sev), minutes, d.population)
            risks[d.code] = raised(value, levels.get(d.code, ()))
        out[minutes] = (BASIS_BASELINE if base is not None else BASIS_POPULATION, risks)
    return out


@dataclass
class RiskCache:
    """The risks a process's pages and API computed, reused for ``fresh_ms`` while the open alerts are the same
    (an alert firing or resolving anywhere changes them: the next read computes afresh), and the long windows'
    baselines (``baselines``' hourly cache). One per process, on its Services; safe across request threads."""

    fresh_ms: int = FRESH_MS
    baselines: dict = field(default_factory=dict)
    computed: int = 0  # how many answers were computed rather than reused (tests, and a reader of the figures)
    _kept: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fresh(self, key: tuple, now_ms: int, levels: dict[str, list[str]]) -> dict | None:
        """Return the answer kept for ``key`` if it is fresh at ``now_ms`` and the open alerts are ``levels``."""
        with self._lock:
            kept = self._kept.get(key)
        if kept is None:
            return None
        at, seen, out = kept
        return out if 0 <= now_ms - at < self.fresh_ms and seen == _levels_key(levels) else None

    def keep(self, key: tuple, now_ms: int, levels: dict[str, list[str]], out: dict) -> None:
        """Keep an answer computed at ``now_ms`` with these open alerts."""
        with self._lock:
            self.computed += 1
            self._kept[key] = (now_ms, _levels_key(levels), out)


def _levels_key(levels: Mapping[str, list[str]]) -> tuple:
    return tuple(sorted((d, tuple(sorted(lv))) for d, lv in levels.items()))
