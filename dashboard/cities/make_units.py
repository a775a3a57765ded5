"""Write a city pack's units.yaml: a response fleet per district, each unit based at a point inside its district."""

# Script-only dependency (not in requirements.txt): shapely >= 2.0.
# Usage: python dashboard/cities/make_units.py [pack]   (default: shenzhen; writes <pack>/units.yaml)
# The fleet sizes follow the shape of a city's services (more patrol cars than ladder trucks); the bases are
# deterministic random points inside each district's boundary, illustrative, not real stations. Edit freely:
# units are seeded into the database from this file once, then edited in the app (POST /api/units).

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from shapely.geometry import Point, shape

HERE = Path(__file__).parent
# department -> [(kind, per district, id prefix, name, name_en)]
FLEET = {
    "police": [("patrol_car", 8, "pc", "巡逻车", "Patrol car")],
    "traffic_police": [("traffic_car", 3, "tp", "交警巡逻车", "Traffic patrol car"),
                       ("motorcycle", 2, "tm", "交警摩托", "Traffic motorcycle")],
    "fire": [("fire_engine", 4, "fe", "消防车", "Fire engine"), ("ladder_truck", 1, "lt", "云梯车", "Ladder truck"),
             ("rescue_vehicle", 1, "rv", "抢险救援车", "Rescue vehicle")],
    "health": [("ambulance", 5, "am", "救护车", "Ambulance")],
    "emergency": [("rescue_team", 1, "et", "应急救援队", "Emergency team")],
    "water": [("pump_truck", 1, "wp", "排涝车", "Pump truck")],
    "urban_mgmt": [("patrol_van", 1, "um", "城管巡查车", "Urban management van")],
}


def main(pack: str = "shenzhen") -> None:
    """Write ``<pack>/units.yaml``."""
    rng = random.Random(17)
    features = json.loads((HERE / pack / "boundaries.geojson").read_text(encoding="utf-8"))["features"]
    lines = ["# Response units (SPEC section 11), written by dashboard/cities/make_units.py: per district a fleet of",
             "# each department's vehicles and teams, based at points inside the district (illustrative, not real",
             "# stations). Seeded into the database once (a unit already there is left as the app has it).",
             "units:"]
    for f in features:
        geom, code, slug = shape(f["geometry"]), f["id"], f["properties"]["name_en"].lower().replace("'", "")
        minx, miny, maxx, maxy = geom.bounds
        for dep, kinds in FLEET.items():
            for kind, n, prefix, name, name_en in kinds:
                for i in range(1, n + 1):
                    while True:
                        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
                        if geom.contains(p):
                            break
                    lines.append(f"  - {{unit: {prefix}-{slug}-{i:02d}, department: {dep}, kind: {kind}, "
                                 f"name: {f['properties']['name']}{name}{i}号, name_en: \"{name_en} {slug.title()} "
                                 f"{i}\", district: \"{code}\", lat: {p.y:.5f}, lon: {p.x:.5f}}}")
    (HERE / pack / "units.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
