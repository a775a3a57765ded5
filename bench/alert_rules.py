"""Generate a city pack with N early-warning rules of the five types, a realistic mix, for ``bench.alerts``.

``python -m bench.alert_rules --rules 500 --out DIR`` writes DIR as a copy of the Shenzhen pack whose
``alerts.yaml`` holds the generated rules and whose ``zones.yaml`` holds the shipped zones and generated ones
(the pack loads as any other: ``PANORAMA_CITY=DIR``).

The mix, by share of the rules (of 500: 200 / 150 / 75 / 40 / 35):

* **threshold** 40 %: a measured kind (AQI, PM2.5, noise, water level, rainfall, discharge, speed, congestion,
  crowd density) for the whole city, per district (all, or a few named), per street of a district, or in a zone; ``for`` of 0 to
  10 minutes. Most (85 %) are set beyond what the feed normally reads (an alarm level: AQI above 200 where the
  generated feed reads 15-180), the rest inside the top 0.1-2 % of its readings, so that they fire now and then,
  as a noisy rule does;
* **rate** 30 %: a counted kind (accidents, fights, thefts, fires, complaints ...) city-wide, per district or street, in a
  5 to 30 minute window, the count set from the feed's expected volume (``--events-per-s``): most at 3 to 6
  times what the window normally holds, some near it;
* **geofence** 15 %: counted kinds inside a zone (crowd density above a level, intrusions, accidents);
* **silence** 8 %: a feed, or a district's feed, or a kind, silent for longer than 5 to 30 minutes;
* **anomaly** 7 %: a district's (or the city's) count of a kind or a domain against its own hour of the week.

Levels are drawn blue 30 %, yellow 35 %, orange 25 %, red 10 %; one in ten opens an incident (not city scope).
With ``marker=True`` one of the N is the benchmark's own marker rule (``bench_marker``): red, a threshold on
water level above 1,000,000 m in a zone off the coast where no generated event falls (``bench_marker``), firing
at once: ``bench.alerts`` publishes one event there to fire it and one to resolve it, and its title says the
value, which numbers the marker.
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections import defaultdict
from pathlib import Path

import yaml

from dashboard.core.city import PACKS_DIR, load_city

# kind: (domain, normal range of the generated feed's values (bench.ingest.KINDS), unit word zh, en,
#        the direction an alarm lies in)
MEASURED = {
    "aqi": ("environment", (15.0, 180.0), "空气质量指数", "AQI", ">"),
    "pm25": ("environment", (5.0, 120.0), "PM2.5", "PM2.5", ">"),
    "noise": ("environment", (35.0, 95.0), "噪声", "noise", ">"),
    "water_level": ("environment", (0.2, 4.5), "水位", "water level", ">"),
    "rainfall": ("environment", (0.0, 60.0), "降雨量", "rainfall", ">"),
    "pollution_discharge": ("environment", (0.5, 40.0), "排放浓度", "discharge", ">"),
    "speed": ("traffic", (5.0, 90.0), "平均车速", "average speed", "<"),
    "congestion": ("traffic", (1.0, 10.0), "拥堵指数", "congestion index", ">"),
    "crowd_density": ("security", (0.1, 4.0), "人群密度", "crowd density", ">"),
}
# kind: (domain, share of all events in bench.ingest's city mix: domain weight x kind weight)
COUNTED = {
    "accident": ("traffic", 0.45 * 0.10), "signal_fault": ("traffic", 0.45 * 0.10),
    "road_closure": ("traffic", 0.45 * 0.05), "theft": ("security", 0.20 * 0.20),
    "fight": ("security", 0.20 * 0.08), "intrusion": ("security", 0.20 * 0.12),
    "suspicious_vehicle": ("security", 0.20 * 0.20), "fire": ("incident", 0.01 * 0.15),
    "medical": ("incident", 0.01 * 0.25), "public_complaint": ("incident", 0.01 * 0.40),
    "flood": ("incident", 0.01 * 0.10), "gas_leak": ("incident", 0.01 * 0.07),
}
DOMAINS = ("traffic", "environment", "security", "incident")
LEVELS = (("blue", 30), ("yellow", 35), ("orange", 25), ("red", 10))
MIX = (("threshold", 40), ("rate", 30), ("geofence", 15), ("silence", 8), ("anomaly", 7))
MARKER_RULE = "bench_marker"
MARKER_ZONE = "bench_marker"
MARKER_BASE = 1_000_000  # a marker's value: this + its number (no generated event reads anything near it)
# Off the coast south of Nan'ao, about 25 km from any district's centre (events fall within ~5 km of theirs).
MARKER_POLYGON = [[114.60, 22.30], [114.62, 22.30], [114.62, 22.32], [114.60, 22.32]]
MARKER_POINT = {"lat": 22.31, "lon": 114.61}


def _counts(n: int, weights) -> list[int]:
    """Split ``n`` by ``weights`` into whole numbers that add up to ``n``."""
    total = sum(w for _k, w in weights)
    out = [int(n * w / total) for _k, w in weights]
    out[0] += n - sum(out)
    return out


def zones(city, rng: random.Random, per_district: int = 4) -> list[dict]:
    """Return generated zones: small squares near each district's centre, where the generated events fall."""
    out = []
    for d in city.districts:
        for i in range(per_district):
            side = rng.uniform(0.006, 0.014)
            lon = d.lon + rng.uniform(-0.02, 0.02) - side / 2
            lat = d.lat + rng.uniform(-0.02, 0.02) - side / 2
            out.append({"code": f"{d.slug}_area_{i + 1}", "name": f"{d.name}重点区域{i + 1}",
                        "name_en": f"{d.name_en} key area {i + 1}", "district": d.code,
                        "kind": rng.choice(["area", "station", "stadium", "port_of_entry", "road"]),
                        "polygon": [[round(lon, 5), round(lat, 5)], [round(lon + side, 5), round(lat, 5)],
                                    [round(lon + side, 5), round(lat + side, 5)],
                                    [round(lon, 5), round(lat + side, 5)]]})
    return out


class Volume:
    """Events/s of each kind at each place of the generated feed, measured on a sample of it (bench.ingest's
    generator, the city mix): districts are weighted by population, streets and zones are uneven."""

    def __init__(self, city, events_per_s: float, zone_codes: list[str], sample: int = 40_000):
        from bench.ingest import generate_events
        from dashboard.core.city import load_city as _load

        zones = {code: z for code, z in _load(str(city.path)).zones.items() if code in zone_codes} \
            if zone_codes else {}
        aliases = city.aliases
        self.per: dict[tuple, float] = defaultdict(float)
        unit = events_per_s / sample
        for _domain, ev in generate_events(sample, 7, 3600, mix="city"):
            d, k = aliases.get(ev["district"], ev["district"]), ev["kind"]
            self.per[("city", k)] += unit
            self.per[("district", k, d)] += unit
            if ev.get("street"):
                self.per[("street", k, d, ev["street"])] += unit
            for code, z in zones.items():
                if z.contains(ev.get("lat"), ev.get("lon")):
                    self.per[("zone", k, code)] += unit

    def busiest(self, rule: dict, kind: str) -> float:
        """Return the events/s of ``kind`` at the busiest place of ``rule``'s scope (and districts)."""
        scope, districts = rule["scope"], rule.get("districts")
        if scope == "zone":
            return self.per.get(("zone", kind, rule["zone"]), 0.0)
        rates = [v for key, v in self.per.items() if key[0] == scope and key[1] == kind
                 and (scope == "city" or districts is None or key[2] in districts)]
        return max(rates, default=0.0)


def _duration(minutes: float) -> str:
    return "PT0S" if minutes <= 0 else f"PT{int(minutes)}M"


def generate(n: int = 500, *, seed: int = 20261206, events_per_s: float = 1000.0, marker: bool = True,
             zone_codes: list[str] | None = None, city=None) -> list[dict]:
    """Return ``n`` rules (dicts as alerts.yaml holds them) in the mix above; ``zone_codes`` they may name."""
    rng = random.Random(seed)
    city = city or load_city("shenzhen")
    codes = [d.code for d in city.districts]
    streets = [(d.code, s.name) for d in city.districts for s in d.streets]
    zone_codes = list(zone_codes or [])
    levels = [lv for lv, w in LEVELS for _ in range(w)]
    rules: list[dict] = []
    if marker:
        rules.append({"id": MARKER_RULE, "type": "threshold", "level": "red", "scope": "zone", "zone": MARKER_ZONE,
                      "kind": "water_level", "op": ">", "value": MARKER_BASE - 1, "for": "PT0S",
                      "say": {"zh": "{place}基准标记 {value}", "en": "{place}: bench marker {value}"}})
    per_type = dict(zip([t for t, _w in MIX], _counts(n - len(rules), MIX)))

    def common(i: int, kind_type: str) -> dict:
        level = rng.choice(levels)
        return {"id": f"{kind_type}_{i:03d}", "level": level}

    def place(rule: dict, allow_zone: bool = True) -> None:
        r = rng.random()
        if r < 0.05:
            rule["scope"] = "city"  # the whole city's readings or count (fires anywhere)
        elif r < 0.45:
            rule["scope"] = "district"
            if rng.random() < 0.4:
                rule["districts"] = rng.sample(codes, rng.randint(1, 3))
        elif r < 0.8 or not (allow_zone and zone_codes):
            rule["scope"] = "street"
            rule["districts"] = [rng.choice(streets)[0]]
        else:
            rule["scope"] = "zone"
            rule["zone"] = rng.choice(zone_codes)

    def finish(rule: dict, what_zh: str, what_en: str) -> dict:
        if rng.random() < 0.1 and rule.get("scope") != "city":
            rule["opens_incident"] = True
        if rng.random() < 0.05:
            rule["mute"] = ["01:00-05:00"]
        rule["say"] = {"zh": "{place}" + what_zh, "en": "{place}: " + what_en}
        return rule

    for i in range(per_type["threshold"]):
        kind = rng.choice(list(MEASURED))
        domain, (lo, hi), zh, en, op = MEASURED[kind]
        rule = {**common(i, "threshold"), "type": "threshold", "kind": kind, "op": op}
        place(rule)
        if rng.random() < 0.85:  # an alarm level beyond the normal readings
            value = hi * rng.uniform(1.1, 1.6) if op == ">" else lo * rng.uniform(0.2, 0.8)
        else:  # inside the top (or bottom) 0.1-2 % of the readings: fires now and then
            q = rng.uniform(0.001, 0.02) * (hi - lo)
            value = hi - q if op == ">" else lo + q
        rule["value"] = round(value, 2)
        rule["for"] = _duration(rng.choice([0, 1, 2, 5, 5, 10, 10, 10]) if rng.random() > 0.1 else 0)
        rules.append(finish(rule, f"{zh} {{value}}", f"{en} {{value}}"))

    volume = Volume(city, events_per_s, zone_codes)
    for i in range(per_type["rate"]):
        kind = rng.choice(list(COUNTED))
        rule = {**common(i, "rate"), "type": "rate", "kind": kind}
        place(rule, allow_zone=False)
        window = rng.choice([5, 10, 15, 30])
        # what the window holds at the rule's busiest place (the shipped pack's counts are set the same way)
        expected = volume.busiest(rule, kind) * window * 60
        factor = rng.uniform(3, 6) if rng.random() < 0.9 else rng.uniform(1.0, 1.3)
        rule.update(count=max(3, int(expected * factor)), window=f"PT{window}M",
                    **({"for": "PT2M"} if rng.random() < 0.3 else {}))
        rules.append(finish(rule, f"{window} 分钟内 {{value}} 起", f"{{value}} reports within {window} minutes"))

    for i in range(per_type["geofence"]):
        rule = {**common(i, "geofence"), "type": "geofence", "scope": "zone",
                "zone": rng.choice(zone_codes) if zone_codes else MARKER_ZONE}
        share = 1.0
        if rng.random() < 0.5:
            value = round(rng.uniform(3.5, 3.95), 2)
            rule.update(kind="crowd_density", op=">=", value=value)
            share = (4.0 - value) / 3.9  # of the crowd readings (0.1-4.0) reach it
        else:
            rule["kind"] = rng.choice(["intrusion", "accident", "fight", "theft", "suspicious_vehicle"])
        window = rng.choice([5, 10, 15])
        expected = volume.busiest(rule, rule["kind"]) * share * window * 60
        factor = rng.uniform(3, 6) if rng.random() < 0.9 else rng.uniform(1.0, 1.3)
        rule.update(count=max(3, int(expected * factor)), window=f"PT{window}M")
        if rng.random() < 0.3:
            rule["for"] = "PT2M"
        rules.append(finish(rule, f"{window} 分钟内 {{value}} 次", f"{{value}} times within {window} minutes"))

    for i in range(per_type["silence"]):
        domain = rng.choice(DOMAINS)
        rule = {**common(i, "silence"), "type": "silence", "domain": domain,
                "gap": _duration(rng.choice([5, 10, 15, 30]))}
        r = rng.random()
        if r < 0.4:
            rule["scope"] = "city"
        else:
            rule["scope"] = "district"
            if rng.random() < 0.5:
                rule["districts"] = rng.sample(codes, rng.randint(1, 3))
        if r > 0.8:
            kinds = [k for k, (dom, _s) in COUNTED.items() if dom == domain] or \
                [k for k, v in MEASURED.items() if v[0] == domain]
            rule["kind"] = rng.choice(kinds)
        if rule["scope"] == "city":
            rule.pop("opens_incident", None)
        rule = finish(rule, "数据源 {value} 分钟无数据", "feed silent for {value} minutes")
        if rule["scope"] == "city":
            rule.pop("opens_incident", None)
        rules.append(rule)

    for i in range(per_type["anomaly"]):
        rule = {**common(i, "anomaly"), "type": "anomaly", "scope": "district" if rng.random() < 0.8 else "city",
                "baseline": {"weeks": rng.choice([2, 3, 4]), "p": 0.001}}
        if rng.random() < 0.6:
            rule["kind"] = rng.choice(list(COUNTED))
        else:
            rule["domain"] = rng.choice(DOMAINS)
        rule = finish(rule, " {value} 起，同期通常 {baseline} 起", "{value}, usually {baseline}")
        if rule["scope"] == "city":
            rule.pop("opens_incident", None)
        rules.append(rule)
    return rules


def write_pack(out: str | Path, n: int = 500, *, seed: int = 20261206, events_per_s: float = 1000.0,
               marker: bool = True) -> Path:
    """Write a copy of the Shenzhen pack with ``n`` generated rules and the zones they name; return its path.

    ``n`` 0 writes the pack with no alerts.yaml at all: no rule, the baseline of the same run.
    """
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(PACKS_DIR / "shenzhen", out)
    city = load_city(str(out))
    if n <= 0:
        (out / "alerts.yaml").unlink()
        return out
    rng = random.Random(seed + 1)
    shipped = yaml.safe_load((out / "zones.yaml").read_text(encoding="utf-8"))["zones"]
    made = zones(city, rng)
    if marker:
        made.append({"code": MARKER_ZONE, "name": "基准标记海域", "name_en": "Bench marker sea area",
                     "district": city.districts[0].code, "kind": "area", "polygon": MARKER_POLYGON})
    (out / "zones.yaml").write_text(yaml.safe_dump({"zones": shipped + made}, allow_unicode=True, sort_keys=False),
                                    encoding="utf-8")
    rules = generate(n, seed=seed, events_per_s=events_per_s, marker=marker,
                     zone_codes=[z["code"] for z in shipped + made if z["code"] != MARKER_ZONE], city=city)
    (out / "alerts.yaml").write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True, sort_keys=False),
                                     encoding="utf-8")
    load_city(str(out)).alert_rules  # noqa: B018 - validate now: a broken generator fails here, by line
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.alert_rules", description=__doc__.split("\n\n")[0])
    p.add_argument("--rules", type=int, default=500, help="how many rules (0: a pack with none)")
    p.add_argument("--out", required=True, help="the pack folder to write (replaced)")
    p.add_argument("--seed", type=int, default=20261206)
    p.add_argument("--events-per-s", type=float, default=1000.0, help="the feed's volume the counts are set from")
    p.add_argument("--no-marker", action="store_true", help="no bench_marker rule")
    args = p.parse_args(argv)
    path = write_pack(args.out, args.rules, seed=args.seed, events_per_s=args.events_per_s, marker=not args.no_marker)
    rules = load_city(str(path)).alert_rules.rules
    by_type: dict[str, int] = {}
    for r in rules:
        by_type[r.type] = by_type.get(r.type, 0) + 1
    print(f"{path}: {len(rules)} rules " + ", ".join(f"{k} {v}" for k, v in by_type.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
