"""Publish a simulated day of a city's events to the feeds, or replay a recorded one."""

from __future__ import annotations

import argparse
import bisect
import contextlib
import math
import os
import random
import signal
import threading
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from dashboard.core import bus
from dashboard.core.city import load_city
from feeds import scenario
from dashboard.core.channels import DEFAULT_PREFIX, DOMAINS
from feeds.fleet import FleetSimulator
from feeds.publish import publish_many

BUCKET_MS = 60_000  # events are drawn one simulated minute at a time, each minute from its own seed
LOOKBACK_MS = 6 * 60_000  # the later callers about a fire ring up to 6 minutes after the first
CACHE_BUCKETS = 16  # minutes kept: a tick needs its own minutes and the 6 before them
MAX_BATCH = 250  # events per message
MAX_BYTES = 60_000  # per message, under the 64 KiB limit
JITTER = 0.03  # degrees around a district's centre
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)


class Simulator:
    """Generate a seeded, realistic day of a city's events and publish it on a scaled clock.

    ``rate`` is the average number of events per second of simulated time over a day; the
    actual rate follows the day's shape of ``feeds.scenario`` (rush hours, night lull, the
    afternoon rainstorm). The same seed gives the same events, ids included, however the
    time is cut into windows.
    """

    def __init__(self, city, *, rate: float = 20.0, speed: float = 1.0, seed: int | None = None,
                 start: datetime | None = None, tz: str | None = None,
                 episodes: list[tuple[str, float, float]] = ()):
        if rate < 0 or not speed > 0:
            raise ValueError(f"rate must be >= 0 and speed > 0 (got rate={rate}, speed={speed})")
        self.city = city
        self.rate = rate
        self.speed = speed
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
        self.tz = ZoneInfo(tz or city.timezone)  # the city's zone unless PANORAMA_TZ says otherwise
        self.start = _aware(start, self.tz) if start is not None else datetime.now(self.tz)
        self._cum_pop = list(accumulate(d.population for d in city.districts))
        self._hotspots = [h for h in scenario.HOTSPOTS if h[0] in city.by_code]
        self._storms: dict[date, scenario.Storm] = {}
        self._cache: OrderedDict[int, tuple[list[int], list[tuple[str, dict]]]] = OrderedDict()
        self._lock = threading.Lock()
        # (episode, from ms, to ms): trouble laid over the day, minutes after the start (feeds.scenario.EPISODES)
        start_ms = int(self.start.timestamp() * 1000)
        self.episodes = [(scenario.EPISODES[name], start_ms + int(at_min * 60_000),
                          start_ms + int((at_min + minutes) * 60_000)) for name, at_min, minutes in episodes]

    def storm(self, day: date) -> scenario.Storm:
        """Return the rainstorm of a local date (the same for the same seed)."""
        if day not in self._storms:
            self._storms[day] = scenario.storm_for(day, self.seed, self.tz, list(self.city.by_code))
        return self._storms[day]

    def events_between(self, t0: datetime, t1: datetime) -> list[tuple[str, dict]]:
        """Pure: the (domain, event-dict) pairs whose simulated time falls in [t0, t1)."""
        a_us = (_aware(t0, self.tz) - _EPOCH) // _US
        b_us = (_aware(t1, self.tz) - _EPOCH) // _US
        if b_us <= a_us:
            return []
        first = (a_us // 1000 - BUCKET_MS - LOOKBACK_MS) // BUCKET_MS + 1
        found = []
        for b in range(first, (b_us // 1000) // BUCKET_MS + 1):
            keys, events = self._bucket(b)
            lo, hi = bisect.bisect_left(keys, a_us), bisect.bisect_left(keys, b_us)
            found.extend(zip(keys[lo:hi], events[lo:hi]))
        found.sort(key=lambda pair: pair[0])
        # Copies, so that a caller that edits an event cannot change what the cache holds.
        return [(domain, dict(event)) for _, (domain, event) in found]

    def _bucket(self, b: int) -> tuple[list[int], list[tuple[str, dict]]]:
        """Return one simulated minute's events (with their later fire calls), sorted, memoised."""
        with self._lock:
            if b in self._cache:
                self._cache.move_to_end(b)
                return self._cache[b]
        rng = random.Random(f"{self.seed}:{b}")
        mid = _local(b * BUCKET_MS + BUCKET_MS // 2, self.tz)
        storm = self.storm(mid.date())
        rows: list[tuple[int, tuple[str, dict]]] = []
        for kind, mult in scenario.kind_rates(_hour(mid), storm.rain(mid), storm.wet(mid)):
            for _ in range(_poisson(rng, self.rate * mult * BUCKET_MS / 1000)):
                rows.extend(self._make(kind, rng, b * BUCKET_MS + rng.randrange(BUCKET_MS), storm))
        rows = self._episodes(rows, b, rng)
        rows.sort(key=lambda row: row[0])
        for n, (_, (_, event)) in enumerate(rows):
            event["id"] = f"sim-{self.seed}-{b}-{n}"
        result = ([ms * 1000 for ms, _ in rows], [pair for _, pair in rows])
        with self._lock:
            self._cache[b] = result
            while len(self._cache) > CACHE_BUCKETS:
                self._cache.popitem(last=False)
        return result

    def _episodes(self, rows: list, b: int, rng: random.Random) -> list:
        """Lay the episodes running in minute ``b`` over its events: a dead feed's go, an episode's readings come
        (and the regular readings of its kinds at its place read like them, or they would contradict it)."""
        lo, hi = b * BUCKET_MS, (b + 1) * BUCKET_MS
        for ep, start, end in self.episodes:
            a, z = max(lo, start), min(hi, end)
            if a >= z:
                continue
            if ep.drop:
                rows = [r for r in rows if not (r[1][0] == ep.domain and a <= r[0] < z)]
                continue
            place = self._episode_place(ep)
            for ms, event in rows:
                _domain, ev = event
                if a <= ms < z and ev["kind"] in ep.kinds and self._at(ep, ev):
                    ev["value"] = round(rng.uniform(*ep.value), 1)
                    ev["title"] = ep.title.format(place=place[1], value=f"{ev['value']:g}")
            for ms, ev in scenario.episode_events(ep, rng, a, z, place):
                rows.append((ms, (ep.domain, {"id": "", "ts": _rfc3339(_local(ms, self.tz)), **ev})))
        return rows

    def _episode_place(self, ep) -> tuple:
        if ep.zone is not None:
            zone = self.city.alert_rules.zones[ep.zone]
            return zone.district, zone.name, zone.polygon
        d = self.city.by_code[ep.district]
        j = JITTER / 3
        return d.code, d.name, ((d.lon - j, d.lat - j), (d.lon + j, d.lat - j), (d.lon + j, d.lat + j),
                                (d.lon - j, d.lat + j))

    def _at(self, ep, ev: dict) -> bool:
        if ep.zone is not None:
            return self.city.alert_rules.zones[ep.zone].contains(ev.get("lat"), ev.get("lon"))
        return ev["district"] == ep.district

    def _make(self, kind: scenario.Kind, rng: random.Random, ms: int, storm) -> list[tuple[int, tuple[str, dict]]]:
        """Return one event of a kind at epoch ms (a fire may come with later callers)."""
        ts = _local(ms, self.tz)
        place = None
        if kind.kind == "crowd_density" and self._hotspots and rng.random() < 0.6:
            code, street, place, lat, lon = rng.choice(self._hotspots)
            district = self.city.by_code[code]
            lat, lon = lat + rng.uniform(-0.002, 0.002), lon + rng.uniform(-0.002, 0.002)
        else:
            district = rng.choices(self.city.districts, cum_weights=self._cum_pop)[0]
            street = rng.choice(district.streets).name if district.streets else district.name
            lat = district.lat + rng.uniform(-JITTER, JITTER)
            lon = district.lon + rng.uniform(-JITTER, JITTER)
        spot = scenario.Spot(district.code, district.name.removesuffix("区"), street, _hour(ts),
                             storm.rain(ts), storm.wet(ts), storm, place)
        event = {"id": "", "ts": _rfc3339(ts), "domain": kind.domain, "kind": kind.kind,
                 "district": district.code, "street": street, "lat": round(lat, 5), "lon": round(lon, 5),
                 **scenario.build(kind.kind, rng, spot)}
        out = [(ms, (kind.domain, event))]
        if kind.kind == "fire" and rng.random() < 0.6:
            # Neighbours call too: same fire, same street, a few minutes later, a few metres away.
            for _ in range(rng.randint(1, 4)):
                later = ms + rng.randrange(30_000, LOOKBACK_MS)
                call = dict(event, ts=_rfc3339(_local(later, self.tz)), source=rng.choice(["119", "110", "12345"]),
                            lat=round(lat + rng.uniform(-0.0015, 0.0015), 5),
                            lon=round(lon + rng.uniform(-0.0015, 0.0015), 5),
                            title=event["title"].removesuffix("火情") + rng.choice(scenario.FIRE_CALLS))
                out.append((later, (kind.domain, call)))
        return out

    def run(self, redis, stop: threading.Event, *, transport: str = "pubsub", prefix: str = DEFAULT_PREFIX,
            duration: float | None = None, tick: float = 0.2) -> int:
        """Publish in real time (simulated clock = start + elapsed*speed) until stop is set or duration (wall seconds) passes; return events published."""
        wall0 = time.monotonic()
        clock = self.start
        sent = 0
        while not stop.is_set():
            elapsed = time.monotonic() - wall0
            done = duration is not None and elapsed >= duration
            now = self.start + timedelta(seconds=(duration if done else elapsed) * self.speed)
            events = self.events_between(clock, now)
            clock = now
            if events:
                publish_many(redis, batches(events), transport, prefix)
                sent += len(events)
            if done:
                break
            stop.wait(tick if duration is None else min(tick, max(0.0, duration - elapsed)))
        return sent


def batches(events: list[tuple[str, dict]]) -> list[tuple[str, list[dict]]]:
    """Group events by domain into messages of at most MAX_BATCH events and MAX_BYTES bytes."""
    by_domain: dict[str, list[dict]] = {}
    for domain, event in events:
        by_domain.setdefault(domain, []).append(event)
    out = []
    for domain, items in by_domain.items():
        batch, size = [], 2
        for event in items:
            n = len(orjson.dumps(event)) + 1
            if batch and (len(batch) >= MAX_BATCH or size + n > MAX_BYTES):
                out.append((domain, batch))
                batch, size = [], 2
            batch.append(event)
            size += n
        out.append((domain, batch))
    return out


def replay(redis, path, *, transport="pubsub", prefix=DEFAULT_PREFIX, speed: float = 1.0,
           stop: threading.Event | None = None) -> int:
    """Publish the events of a JSON-lines file (one event per line, with a `domain` field) keeping their relative timing scaled by speed (speed 0 = as fast as possible)."""
    stop = stop or threading.Event()
    wall0 = time.monotonic()
    pending: list[tuple[str, dict]] = []
    sent = 0

    def flush() -> None:
        nonlocal pending, sent
        if pending:
            publish_many(redis, batches(pending), transport, prefix)
            sent, pending = sent + len(pending), []

    for due, domain, event in _timeline(Path(path), speed):
        while not stop.is_set() and (wait := due - (time.monotonic() - wall0)) > 0:
            if pending:
                flush()
            else:
                stop.wait(min(wait, 0.5))
        if stop.is_set():
            break
        pending.append((domain, event))
        if len(pending) >= 5000:
            flush()
    flush()
    return sent


def _timeline(path: Path, speed: float):
    """Yield (wall seconds from the start, domain, event) for each line of a JSON-lines file."""
    first = due = None
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            event = orjson.loads(line)
            domain = event.get("domain") if isinstance(event, dict) else None
            if domain not in DOMAINS:
                raise ValueError(f"{path}:{lineno}: an event with a known `domain` expected")
            t = _epoch_seconds(event.get("ts"))
            if t is not None:
                first = t if first is None else first
                # Out-of-order lines are sent at once rather than making time run backwards.
                due = max(due or 0.0, (t - first) / speed if speed > 0 else 0.0)
            yield due or 0.0, domain, event


def main(argv=None) -> int:
    """Run the simulator (or a replay) from the command line."""
    parser = argparse.ArgumentParser(prog="python -m feeds.simulate", description=__doc__)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--rate", type=float, default=20.0,
                        help="average events per simulated second over a day (default 20: at --speed 1 about "
                             "4/s of wall time at 03:00, 39/s at 08:30, 20/s at an average hour)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="simulated seconds per wall second (default 1); above 1, start in the past (--start): "
                             "ingest rejects events more than 5 minutes ahead of its clock (future_ts)")
    parser.add_argument("--seed", type=int, help="seed for a reproducible day (ids sim-<seed>-...)")
    parser.add_argument("--transport", choices=("pubsub", "stream"), default="pubsub")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="feed name prefix (default feeds)")
    parser.add_argument("--duration", type=float, help="stop after this many wall seconds (default: run until ^C)")
    parser.add_argument("--start", type=datetime.fromisoformat,
                        help="simulated start, ISO date-time (default now; without an offset, city time)")
    parser.add_argument("--city", default=os.environ.get("PANORAMA_CITY", "shenzhen"), help="city pack name or folder")
    parser.add_argument("--replay", metavar="FILE.jsonl", help="publish a recorded file instead of simulating")
    parser.add_argument("--dump", metavar="FILE.jsonl", help="write the events of --duration to a file, don't publish")
    parser.add_argument("--no-units", dest="units", action="store_false",
                        help="do not drive the city's fleet on <prefix>:units (feeds/fleet.py)")
    parser.add_argument("--episode", action="append", default=[], type=_episode, metavar="NAME[@MIN[+MIN]]",
                        help="lay an episode over the day for the alert rules to catch: "
                             f"{', '.join(scenario.EPISODES)}; starting MIN simulated minutes after the start "
                             "(default 1), lasting +MIN (default 20); repeatable")
    args = parser.parse_args(argv)
    if args.dump and args.duration is None:
        parser.error("--dump needs --duration")
    if not args.replay and not args.speed > 0:
        parser.error("--speed must be > 0 (0 means as fast as possible only with --replay)")
    stop = threading.Event()
    with _stop_on_signals(stop):
        if args.replay:
            redis = bus.connect(args.redis_url)
            print(f"replaying {args.replay} at x{args.speed} to {args.transport} {args.prefix}:<domain> on "
                  f"{bus.redacted(args.redis_url)}")
            n = replay(redis, args.replay, transport=args.transport, prefix=args.prefix, speed=args.speed, stop=stop)
            print(f"replayed {n} events")
            return 0
        city = load_city(args.city)
        sim = Simulator(city, rate=args.rate, speed=args.speed, seed=args.seed, start=args.start, tz=city.timezone,
                        episodes=args.episode)
        head = f"{city.name_en} from {sim.start.isoformat(timespec='seconds')}, rate {sim.rate}/s, x{sim.speed}, seed {sim.seed}"
        if args.dump:
            n, t, end = 0, sim.start, sim.start + timedelta(seconds=args.duration * sim.speed)
            with open(args.dump, "wb") as f:
                while t < end:  # ten simulated minutes at a time: a whole day would not fit in memory
                    events = sim.events_between(t, t := min(t + timedelta(minutes=10), end))
                    f.writelines(orjson.dumps(event) + b"\n" for _, event in events)
                    n += len(events)
            print(f"dumped {n} events ({head}, {args.duration:g} s) to {args.dump}")
            return 0
        redis = bus.connect(args.redis_url)
        print(f"simulating {head} -> {args.transport} {args.prefix}:<domain> on {bus.redacted(args.redis_url)}")
        if args.units and city.units:  # the fleet reports in real time beside the events (feeds/fleet.py)
            fleet = FleetSimulator(city.units, seed=sim.seed)
            threading.Thread(target=fleet.run, args=(redis, stop), kwargs={"prefix": args.prefix}, name="fleet",
                             daemon=True).start()
            print(f"driving {len(fleet.vehicles)} units -> {args.prefix}:units")
        wall0 = time.monotonic()
        n = sim.run(redis, stop, transport=args.transport, prefix=args.prefix, duration=args.duration)
        wall = max(time.monotonic() - wall0, 1e-9)
        print(f"published {n} events in {wall:.1f} s ({n / wall:.1f}/s), simulated clock reached "
              f"{(sim.start + timedelta(seconds=wall * sim.speed)).isoformat(timespec='seconds')}")
    return 0


def _episode(text: str) -> tuple[str, float, float]:
    """Parse ``NAME[@START[+MINUTES]]`` (simulated minutes after the start) for --episode."""
    name, _, rest = text.partition("@")
    at, _, minutes = rest.partition("+")
    if name not in scenario.EPISODES:
        raise argparse.ArgumentTypeError(f"unknown episode {name!r}: one of {', '.join(scenario.EPISODES)}")
    try:
        start, length = float(at or 1), float(minutes or 20)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad episode {text!r}: NAME@START+MINUTES, e.g. jam@5+15") from None
    if start < 0 or length <= 0:
        raise argparse.ArgumentTypeError(f"bad episode {text!r}: START >= 0 and MINUTES > 0")
    return name, start, length


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """Set stop on SIGINT / SIGTERM while inside (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _aware(t: datetime, tz) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def _local(ms: int, tz) -> datetime:
    return (_EPOCH + ms * _MS).astimezone(tz)


def _hour(t: datetime) -> float:
    return t.hour + t.minute / 60 + t.second / 3600


def _rfc3339(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _epoch_seconds(ts) -> float | None:
    """Return a feed timestamp (RFC 3339 or epoch ms) as epoch seconds, or None."""
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return ts / 1000
    if isinstance(ts, str):
        with contextlib.suppress(ValueError):
            t = datetime.fromisoformat(ts)
            return t.timestamp() if t.tzinfo else None
    return None


def _poisson(rng: random.Random, lam: float) -> int:
    """Draw a Poisson count (a normal approximation above lambda 50)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


if __name__ == "__main__":
    raise SystemExit(main())
