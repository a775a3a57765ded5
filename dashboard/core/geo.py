"""Measure on the sphere: straight-line distances, the square around a circle, the circle itself."""

from __future__ import annotations

import math

EARTH_M = 6_371_000.0
RING_POINTS = 73  # a closed polygon every 5 degrees


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance between two points in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(min(1.0, a)))


def box_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) of the square holding the circle of ``radius_m`` around a point."""
    dlat = math.degrees(radius_m / EARTH_M)
    dlon = dlat / max(0.01, math.cos(math.radians(lat)))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def ring(lat: float, lon: float, radius_m: float) -> tuple[list[float], list[float]]:
    """Return the lats and lons of the circle of ``radius_m`` around a point."""
    west, south, east, north = box_around(lat, lon, radius_m)
    dlat, dlon = north - lat, east - lon
    angles = [2 * math.pi * i / (RING_POINTS - 1) for i in range(RING_POINTS)]
    return [lat + dlat * math.sin(a) for a in angles], [lon + dlon * math.cos(a) for a in angles]
