"""Bound a filtered page of a district's events to the minutes that the rollups say hold its matches.

Filtered by kind, street, domain or severity, a page over a busy day would read the district's events one by one
until it is full: all of the day for a filter that matches nothing. The rollups count every event under its
minute (its hour, for the 7- and 30-day windows), district, street, domain, kind and severity, so a walk reads
from them which minutes hold matches, nearest first and only as many as fill the page, then reads the events of
those minutes alone (migration 0008 indexes the rollups for it). A rollup count is a bound from above (a street
or kind the city pack does not know is counted under OTHER; a title is not in the rollups at all): when the
minutes hold fewer rows than counted the walk goes on past them, asking for twice as many each time. The rows
are the unpruned statement's, in its order: the minutes are read in the page's time order and none is skipped.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from dashboard.storage.models import district_hours, district_minutes, rollup_hours, rollups
from dashboard.storage.queries import HOURLY_MINUTES, HOUR_MS, MINUTE_MS

SEVERITIES = (1, 2, 3, 4)
FIRST_CHUNK = 16  # buckets read from the rollups in one go; doubled while they hold too few events
# Two spans are read as one when the district's events between them are this few: reading them through the
# index costs less than another statement (a round trip and its planning).
JOIN_ROWS = 500
JOIN_BUCKETS = 30  # a longer gap is never counted: at a city's volume it holds far more than JOIN_ROWS
# Events statements a batch of buckets sends at most; the walk then asks the rollups again from the last span
# read. (Joining the emptiest gaps instead read whole hours of a district at 20 million events a day: a gap
# longer than JOIN_BUCKETS is never counted, so "the emptiest" was any of them; 1.0 s for a rare kind by
# -severity, bench.drilldown.)
MAX_RANGES = 32


@dataclass(frozen=True)
class Bound:
    """A page's filters as the rollups see them: conditions on a rollup table and the severities kept.

    ``conditions`` take a rollup table and return a condition on its columns; ``columns`` are those they read
    of street and kind (the per-district rollups, without them, serve the others).
    """

    conditions: tuple[Callable, ...] = ()
    columns: frozenset[str] = field(default_factory=frozenset)
    severities: tuple[int, ...] = SEVERITIES
    # The events' own index (district, kind, time; migration 0026) selects exactly the page's events: an exact
    # kind and nothing the index leaves to be sifted (a street, a severity floor, a title).
    indexed: bool = False

    def narrows(self) -> bool:
        """Tell whether the bound leaves out any event at all (if not, pruning by it only costs)."""
        return bool(self.conditions) or self.severities != SEVERITIES


def source(bound: Bound, window_ms: int) -> tuple:
    """Return the rollup table, its time column and its step for a window: minutes, hours from 7 days on."""
    hourly = window_ms >= HOURLY_MINUTES * MINUTE_MS
    if bound.columns:
        table, column = (rollup_hours, "hour_ms") if hourly else (rollups, "minute_ms")
    else:
        table, column = (district_hours, "hour_ms") if hourly else (district_minutes, "minute_ms")
    return table, table.c[column], HOUR_MS if hourly else MINUTE_MS


def matches(conn: Connection, bound: Bound, district: str, lo: int, hi: int, window_ms: int) -> int:
    """Return how many events in [lo, hi) the rollups count under ``bound``: an upper bound of its matches."""
    if not bound.severities:
        return 0
    table, when, step = source(bound, window_ms)
    stmt = select(func.coalesce(func.sum(_measure(table, bound)), 0)).where(
        table.c.district == district, when >= lo - lo % step, when < hi, *(c(table) for c in bound.conditions))
    return int(conn.execute(stmt).scalar_one())


def _measure(table, bound: Bound):
    """Return a rollup row's count of the events of ``bound``'s severities."""
    if bound.severities == SEVERITIES:
        return table.c.n
    return sum((table.c[f"sev{s}"] for s in bound.severities[1:]), table.c[f"sev{bound.severities[0]}"])


def busy_buckets(conn: Connection, bound: Bound, district: str, lo: int, hi: int, window_ms: int,
                 descending: bool, want: int) -> list[tuple[int, int]]:
    """Return (start, matching events) of the buckets in [lo, hi) that hold matches, nearest first (the latest
    when ``descending``), as many as hold ``want`` events, or all of them when they hold fewer."""
    if not bound.severities:
        return []  # a severity filter no severity passes
    table, when, _ = source(bound, window_ms)
    total = func.sum(_measure(table, bound))
    stmt = (select(when, total).where(table.c.district == district, *(c(table) for c in bound.conditions))
            .group_by(when).having(total > 0).order_by(when.desc() if descending else when.asc()))
    out, held, chunk = [], 0, FIRST_CHUNK
    while held < want and lo < hi:
        rows = conn.execute(stmt.where(when >= lo, when < hi).limit(chunk)).all()
        for start, n in rows:
            if held >= want:
                break
            out.append((int(start), int(n)))
            held += int(n)
        if len(rows) < chunk:
            break
        lo, hi = (lo, int(rows[-1][0])) if descending else (int(rows[-1][0]) + 1, hi)
        chunk *= 2
    return out


def ranges(starts: list[int], step: int) -> list[tuple[int, int]]:
    """Return the buckets starting at ``starts`` as [from, to) time ranges, neighbours joined, oldest first."""
    spans: list[list[int]] = []
    for start in sorted(starts):
        if spans and spans[-1][1] == start:
            spans[-1][1] = start + step
        else:
            spans.append([start, start + step])
    return [(a, b) for a, b in spans]


def gap_rows(conn: Connection, district: str, spans: list[tuple[int, int]], window_ms: int) -> list[int]:
    """Return how many of the district's events lie in each gap between ``spans``, from the per-district
    rollups; a gap longer than JOIN_BUCKETS buckets is not counted (it reads as too many to join)."""
    table, when, step = source(Bound(), window_ms)
    gaps = [JOIN_ROWS + 1] * (len(spans) - 1)
    short = [i for i in range(len(gaps)) if spans[i + 1][0] - spans[i][1] <= JOIN_BUCKETS * step]
    if not short:
        return gaps  # matches far apart, as in a busy day: nothing to count
    c = table.c
    arms = [and_(c.district == district, when >= spans[i][1], when < spans[i + 1][0]) for i in short]
    totals = conn.execute(select(when, func.sum(c.n)).where(or_(*arms)).group_by(when)).all()
    for i in short:
        gaps[i] = 0
    starts = [a for a, _ in spans[1:]]
    for bucket, n in totals:
        gaps[bisect_right(starts, int(bucket))] += int(n)  # the gap that ends at the next span's start
    return gaps


def join(spans: list[tuple[int, int]], gaps: list[int]) -> list[tuple[int, int]]:
    """Return ``spans`` with the gaps of at most JOIN_ROWS events read too."""
    out, first = [], 0
    for last in [*(i for i, n in enumerate(gaps) if n > JOIN_ROWS), len(spans) - 1]:
        out.append((spans[first][0], spans[last][1]))
        first = last + 1
    return out


def walk(conn: Connection, district: str, start: int, end: int, descending: bool, need: int, bound: Bound,
         read: Callable[[int, int, int], list], after_ms: int | None = None) -> list:
    """Return up to ``need`` rows, in time order, of the events in [start, end) that ``read`` selects, reading
    only the buckets in which the rollups count matches of ``bound``.

    ``read(lo, hi, n)`` runs the page's own statement over [lo, hi) (a span of buckets) for at most ``n``
    rows; ``after_ms`` is the time of the cursor's row, where the walk starts.
    """
    _, _, step = source(bound, end - start)
    lo, hi = start - start % step, end
    if after_ms is not None:  # the cursor's own bucket still holds rows after it
        bucket = after_ms - after_ms % step
        lo, hi = (lo, min(hi, bucket + step)) if descending else (max(lo, bucket), hi)
    rows: list = []
    want = need
    while len(rows) < need and lo < hi:
        buckets = busy_buckets(conn, bound, district, lo, hi, end - start, descending, want)
        if not buckets:
            break
        spans = ranges([b for b, _ in buckets], step)
        if len(spans) > 1:
            spans = join(spans, gap_rows(conn, district, spans, end - start))
        # One statement a span, nearest first, bounded by the span alone: an OR of ranges, or a span's bounds
        # beside the window's, would be read as one range from the window's edge by SQLite.
        nearest = list(reversed(spans)) if descending else spans
        for a, b in nearest[:MAX_RANGES]:
            rows += read(max(a, start), min(b, end), need - len(rows))
            if len(rows) >= need:
                return rows
        if len(nearest) > MAX_RANGES:  # the rest of the batch: asked of the rollups again, past the last span read
            a, b = nearest[MAX_RANGES - 1]
            lo, hi = (lo, a) if descending else (b, hi)
            want = need - len(rows)
            continue
        last = buckets[-1][0]
        lo, hi = (lo, last) if descending else (last + step, hi)
        want *= 2  # the counts were above the rows: ask for more at once, so the walk takes few steps
    return rows
