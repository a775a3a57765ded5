"""Answer the read side from rollups: the city and district summaries of SPEC section 6."""

from __future__ import annotations

from sqlalchemy import func, select, union_all
from sqlalchemy.engine import Connection

from dashboard.core.city import City, District
from dashboard.core.clock import iso
from dashboard.storage.models import district_hours, district_minutes, feed_state, rollup_hours, rollups
from dashboard.core.channels import DOMAINS
from dashboard.storage.risk import RiskCache, district_risks

WINDOWS = {"15m": 15, "1h": 60, "24h": 1440, "7d": 7 * 1440, "30d": 30 * 1440}
# Windows this long or longer read the hour rollups (kept for years), in whole hours; shorter ones the minutes.
HOURLY_MINUTES = 7 * 1440
MINUTE_MS, HOUR_MS = 60_000, 3_600_000


def parse_window(value: str | None) -> int:
    """Return the minutes of a window name (15m, 1h, 24h, 7d, 30d); None means 1h."""
    if value is None:
        return 60
    if value not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    return WINDOWS[value]


def step_ms(minutes: int) -> int:
    """Return the rollup step a window of this length reads: an hour for 7 days and longer, else a minute."""
    return HOUR_MS if minutes >= HOURLY_MINUTES else MINUTE_MS


def window_bounds(now_ms: int, minutes: int) -> tuple[int, int]:
    """Return [start, end) in ms: whole steps (minutes, or hours for long windows), the current one last,
    so rollups count exactly."""
    step = step_ms(minutes)
    end = now_ms - now_ms % step + step
    return end - minutes * 60_000, end


def _empty_counts() -> dict[str, int]:
    return {d: 0 for d in DOMAINS}


def _window(now_ms: int, minutes: int, tz: str) -> dict:
    start, end = window_bounds(now_ms, minutes)
    return {"start": iso(start, tz), "end": iso(end, tz), "minutes": minutes}


def rollup_parts(start: int, end: int) -> list[tuple]:
    """Split [start, end) into what the street-and-kind rollups answer it from: the whole hours inside it
    from the hour rollups and the minutes at either edge from the minute rollups, as (table, time column,
    from, to). A 24-hour window then reads 23 hours and at most 120 minutes, not 1,440 minutes."""
    h0, h1 = -(-start // HOUR_MS) * HOUR_MS, end // HOUR_MS * HOUR_MS
    if h1 - h0 < HOUR_MS:
        return [(rollups, rollups.c.minute_ms, start, end)]
    parts = [(rollups, rollups.c.minute_ms, start, h0)] if start < h0 else []
    parts.append((rollup_hours, rollup_hours.c.hour_ms, h0, h1))
    if h1 < end:
        parts.append((rollups, rollups.c.minute_ms, h1, end))
    return parts


def district_source(minutes: int):
    """Return the per-district rollup table a window reads and its time column."""
    return ((district_hours, district_hours.c.hour_ms) if minutes >= HOURLY_MINUTES
            else (district_minutes, district_minutes.c.minute_ms))


def grouped(conn: Connection, start: int, end: int, *keys, district: str | None = None):
    """Return the street-and-kind rollups' sums (n, sev1..sev4) over [start, end) grouped by ``keys``."""
    parts = []
    for table, when, lo, hi in rollup_parts(start, end):
        t = table.c
        part = select(*(getattr(t, k) for k in keys), t.n, t.sev1, t.sev2, t.sev3, t.sev4).where(when >= lo, when < hi)
        parts.append(part if district is None else part.where(t.district == district))
    rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    cols = [rows.c[k] for k in keys]
    return conn.execute(select(*cols, *(func.sum(rows.c[c]) for c in ("n", "sev1", "sev2", "sev3", "sev4")))
                        .group_by(*cols)).all()


def window_counts(conn: Connection, now_ms: int, windows: tuple[int, ...]) -> dict[int, dict]:
    """Count events by district and domain in each window, and in the window before it: one scan of the
    minute rollups for the short windows, one of the hour rollups for the long ones.

    Returns ``{minutes: {"cur": {(district, domain): [n, sev1..sev4]}, "prev": {domain: n},
    "prev_by": {(district, domain): n}}}`` (``prev_by``: a district centre's own previous window).
    """
    out = {m: {"cur": {}, "prev": _empty_counts(), "prev_by": {}} for m in windows}
    for hourly in (False, True):
        group = tuple(m for m in windows if (m >= HOURLY_MINUTES) == hourly)
        if not group:
            continue
        table, when = district_source(group[0])
        t = table.c
        end = window_bounds(now_ms, group[0])[1]
        cols = []
        for minutes in group:
            start, prev_start = end - minutes * 60_000, end - 2 * minutes * 60_000
            cur = when >= start
            cols += [func.sum(c).filter(cur) for c in (t.n, t.sev1, t.sev2, t.sev3, t.sev4)]
            cols.append(func.sum(t.n).filter(when >= prev_start, when < start))
        since = end - 2 * max(group) * 60_000
        rows = conn.execute(select(t.district, t.domain, *cols)
                            .where(when >= since, when < end)
                            .group_by(t.district, t.domain)).all()
        for district, domain, *sums in rows:
            if domain not in DOMAINS:
                continue
            for i, minutes in enumerate(group):
                block = [int(x or 0) for x in sums[i * 6:(i + 1) * 6]]
                out[minutes]["cur"][(district, domain)] = block[:5]
                out[minutes]["prev"][domain] += block[5]
                out[minutes]["prev_by"][(district, domain)] = block[5]
    return out


def _district_entry(d: District, counts: dict[str, int], risk: float) -> dict:
    return {**d.as_ref(), "counts": counts, "risk": risk}


def summary(conn: Connection, city: City, minutes: int, now_ms: int, tz: str, risk: RiskCache | None = None) -> dict:
    """Return the city now: totals and each district's counts and risk in the window."""
    counts = {d.code: _empty_counts() for d in city.districts}
    totals = _empty_counts()
    cur = window_counts(conn, now_ms, (minutes,))[minutes]["cur"]
    for (district, domain), (n, *_) in cur.items():
        totals[domain] += n
        if district in counts:
            counts[district][domain] += n
    _, risks = district_risks(conn, city.districts, now_ms, {minutes: (window_bounds(now_ms, minutes)[0], cur)},
                              risk)[minutes]
    return {
        "window": _window(now_ms, minutes, tz),
        "generated_at": iso(now_ms, tz),
        "totals": totals,
        "districts": [_district_entry(d, counts[d.code], risks[d.code]) for d in city.districts],
    }


def district_summary(conn: Connection, city: City, district: District, minutes: int, now_ms: int, tz: str) -> dict:
    """Return one district now: its counts and risk, its streets and its kinds in the window.

    Streets and kinds the city pack does not know are summed under ``other_streets`` and ``other_kinds``
    (ingest already counts them so; rows from before it did are folded here), so the answer's size is
    bounded by the pack, whatever publishers write.
    """
    start, end = window_bounds(now_ms, minutes)
    totals = _empty_counts()
    blocks: dict[tuple[str, str], list[int]] = {}  # per domain, as window_counts': what the risk reads
    name_of = {s.name: s.name for s in district.streets} | {s.code: s.name for s in district.streets if s.code}
    streets: dict[str, dict[str, int]] = {s.name: _empty_counts() for s in district.streets}
    other_streets, other_kinds = _empty_counts(), _empty_counts()
    kinds: dict[tuple[str, str], int] = {}
    for street, domain, kind, n, s1, s2, s3, s4 in grouped(conn, start, end, "street", "domain", "kind",
                                                            district=district.code):
        if domain not in totals:
            continue
        totals[domain] += n
        block = blocks.setdefault((district.code, domain), [0, 0, 0, 0, 0])
        blocks[(district.code, domain)] = [a + b for a, b in zip(block, (n, s1, s2, s3, s4))]
        if street:
            (streets[name_of[street]] if street in name_of else other_streets)[domain] += n
        if kind in city.kinds:
            kinds[(domain, kind)] = kinds.get((domain, kind), 0) + n
        else:
            other_kinds[domain] += n
    names_en = {s.name: s.name_en for s in district.streets}
    risk = district_risks(conn, (district,), now_ms, {minutes: (start, blocks)})[minutes][1][district.code]
    return {
        "window": _window(now_ms, minutes, tz),
        "generated_at": iso(now_ms, tz),
        "district": {**_district_entry(district, totals, risk), "population": district.population},
        "totals": totals,
        "streets": [{"name": name, "name_en": names_en.get(name, ""), "counts": c} for name, c in streets.items()],
        "other_streets": other_streets,
        "kinds": [{"domain": dom, "kind": k, "count": n}
                  for (dom, k), n in sorted(kinds.items(), key=lambda kv: -kv[1])],
        "other_kinds": other_kinds,
    }


RATE_MINUTES = 5


def feed_freshness(conn, now_ms: int, stale_after: dict[str, int]) -> dict[str, dict]:
    """Return each domain's last-event age, recent rate and whether it is stale."""
    last = {row.domain: row.last_received_ms for row in conn.execute(select(feed_state))}
    end = now_ms - now_ms % 60_000 + 60_000
    since = end - RATE_MINUTES * 60_000
    dm = district_minutes.c
    # Bounded above too: minutes still to come (clock skew, rows from before ts was bounded) are no rate yet.
    rates = dict(conn.execute(select(dm.domain, func.sum(dm.n)).where(dm.minute_ms >= since, dm.minute_ms < end)
                              .group_by(dm.domain)).all())
    out = {}
    for domain in DOMAINS:
        age = None if domain not in last else max(0.0, round((now_ms - last[domain]) / 1000, 1))
        out[domain] = {
            "last_event_age_s": age,
            "rate_per_min": round((rates.get(domain) or 0) / RATE_MINUTES, 2),
            "stale": stale(domain, age, stale_after),
        }
    return out


def stale(domain: str, age: float | None, stale_after: dict[str, int]) -> bool:
    """Tell whether a feed silent for ``age`` seconds (None: never heard) reads stale."""
    return age is None or age > stale_after.get(domain, 300)
