"""Drive a simulated fleet: every unit of the city pack reports its place on ``feeds:units``; patrol cars patrol
near their base, a unit the dispatch desk sends drives to its incident, and one released goes back to base.

The simulator learns of assignments the way any subscriber would: from the ``units`` of ``panorama:updates``
deltas (messages.DeltaUnit: its task and, when just sent, the incident's place as ``target``).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass

import orjson

from dashboard.core import messages
from dashboard.core.channels import DEFAULT_PREFIX, UPDATES_CHANNEL, units_feed

log = logging.getLogger(__name__)
KMH = {"motorcycle": 45.0, "patrol_car": 40.0, "traffic_car": 40.0, "ambulance": 45.0, "fire_engine": 35.0,
       "ladder_truck": 30.0, "rescue_vehicle": 35.0}  # city speeds with lights on; others 30
PATROLS = ("patrol_car", "traffic_car", "motorcycle", "patrol_van")  # these move about when available
PATROL_KM = 1.5  # how far from its base a patrol wanders
PER_MESSAGE = 400  # reports per message: ~110 bytes each, under the 64 KiB limit
KM_PER_DEG = 111.32


@dataclass
class Vehicle:
    """One unit as the simulator drives it."""

    unit: str
    kind: str
    lat: float
    lon: float
    base: tuple[float, float]
    target: tuple[float, float] | None = None
    heading: float = 0.0


class FleetSimulator:
    """Move the city pack's units and report them every ``every_s`` seconds (staggered), at ``speed``x."""

    def __init__(self, fleet: list[dict], *, every_s: float = 5.0, speed: float = 1.0, seed: int = 17,
                 off_duty: float = 0.08):
        self.rng = random.Random(seed)
        self.every_s = every_s
        self.speed = speed
        self.vehicles = {u["unit"]: Vehicle(u["unit"], u["kind"], u["lat"], u["lon"], (u["lat"], u["lon"]))
                         for u in fleet if u.get("lat") is not None}
        # a share of the fleet is off shift when the simulation starts: reported so once
        self._first_status = {v: "off_duty" for v in self.vehicles if self.rng.random() < off_duty}
        self._lock = threading.Lock()

    def learn(self, raw: bytes) -> int:
        """Take a ``panorama:updates`` delta: a unit sent gets its target, a released one heads back to base."""
        try:
            delta = messages.read_delta(raw)
        except ValueError:
            return 0
        n = 0
        with self._lock:
            for u in delta.get("units") or ():
                v = self.vehicles.get(u.get("unit")) if isinstance(u, dict) else None
                if v is None:
                    continue
                target = u.get("target")
                if u.get("task_id") is not None and isinstance(target, list) and len(target) == 2:
                    v.target = (float(target[0]), float(target[1]))
                    n += 1
                elif u.get("task_id") is None and u.get("status") in ("available", "off_duty"):
                    v.target = None
        return n

    def step(self, dt_s: float) -> None:
        """Move every vehicle by ``dt_s`` simulated seconds."""
        with self._lock:
            for v in self.vehicles.values():
                goal = v.target or (None if v.kind in PATROLS else v.base)
                if goal is None:  # patrolling: a slow turn now and then, pulled back towards its base
                    v.heading += self.rng.gauss(0, 0.4)
                    if _km(v.lat, v.lon, *v.base) > PATROL_KM:
                        v.heading = math.atan2(v.base[0] - v.lat, v.base[1] - v.lon)
                    km = KMH.get(v.kind, 30.0) * 0.5 * dt_s / 3600
                    v.lat += math.sin(v.heading) * km / KM_PER_DEG
                    v.lon += math.cos(v.heading) * km / (KM_PER_DEG * math.cos(math.radians(v.lat)))
                    continue
                left = _km(v.lat, v.lon, *goal)
                km = min(left, KMH.get(v.kind, 30.0) * dt_s / 3600)
                if left > 1e-6:
                    f = km / left
                    v.lat += (goal[0] - v.lat) * f
                    v.lon += (goal[1] - v.lon) * f

    def reports(self, now_ms: int, slot: int, slots: int) -> list[dict]:
        """Return the reports of the vehicles whose turn it is (``slot`` of ``slots`` in one reporting period)."""
        out = []
        with self._lock:
            for i, v in enumerate(self.vehicles.values()):
                if i % slots != slot:
                    continue
                r = {"unit": v.unit, "ts": now_ms, "lat": round(v.lat, 6), "lon": round(v.lon, 6)}
                status = self._first_status.pop(v.unit, None)
                if status is not None:
                    r["status"] = status
                out.append(r)
        return out

    def run(self, redis, stop: threading.Event, *, prefix: str = DEFAULT_PREFIX, tick_s: float = 0.5,
            listen: bool = True) -> int:
        """Report until ``stop`` is set, learning assignments from the updates channel; return reports sent."""
        listener = threading.Thread(target=self._listen, args=(redis, stop), name="fleet-listen", daemon=True)
        if listen:
            listener.start()
        slots = max(1, round(self.every_s / tick_s))
        channel, sent, slot = units_feed(prefix), 0, 0
        last = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            self.step((now - last) * self.speed)
            last = now
            batch = self.reports(int(time.time() * 1000), slot, slots)
            slot = (slot + 1) % slots
            for i in range(0, len(batch), PER_MESSAGE):
                redis.publish(channel, orjson.dumps(batch[i:i + PER_MESSAGE]))
            sent += len(batch)
            stop.wait(tick_s)
        return sent

    def _listen(self, redis, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pubsub = redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(UPDATES_CHANNEL)
                while not stop.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is not None and msg["type"] == "message":
                        self.learn(msg["data"])
            except Exception as err:  # noqa: BLE001 - the fleet goes on reporting; assignments resume on reconnect
                log.warning("fleet simulator: updates channel lost (%s); retrying", err)
                stop.wait(2.0)


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return an equirectangular distance in km: within a city, as good as the great circle."""
    dx = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2)) * KM_PER_DEG
    return math.hypot(dx, (lat2 - lat1) * KM_PER_DEG)
