"""Fit a least-squares growth slope to memory samples, with a 95 % confidence interval, and judge it."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

MIB = 2**20
HOUR_S = 3600.0
DAY_S = 86400.0


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile, by the Cornish-Fisher expansion about the normal one (A&S 26.7.5).

    scipy is not a dependency; for df >= 4 this is within 0.3 % of the exact value, which is far below the
    uncertainty of a memory slope.
    """
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def fit(points: list[tuple[float, float]], per_s: float = DAY_S) -> dict | None:
    """(seconds, value) points -> slope per ``per_s`` seconds with its standard error and 95 % CI.

    Memory samples taken seconds apart are not independent (a cache that fills for a minute lifts several in a
    row), and ordinary least squares would then understate the error. The standard error is widened for the
    lag-1 autocorrelation r of the residuals, as for an AR(1) series: by sqrt((1 + r) / (1 - r)), with
    n_eff = n (1 - r) / (1 + r) independent samples for the t quantile. None with fewer than 4 points.
    """
    if len(points) < 4:
        return None
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    n = len(x)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if sxx == 0:
        return None
    slope = float(xc @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * xc
    se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    r1 = float(resid[1:] @ resid[:-1] / (resid @ resid)) if float(resid @ resid) > 0 else 0.0
    r1 = min(max(r1, 0.0), 0.95)  # negative r would narrow the interval: not taken
    widen = math.sqrt((1 + r1) / (1 - r1))
    n_eff = max(3.0, n * (1 - r1) / (1 + r1))
    half = t_quantile(0.975, n_eff - 2) * se * widen
    return {"slope": slope * per_s, "se": se * widen * per_s, "lo": (slope - half) * per_s,
            "hi": (slope + half) * per_s, "n": n, "n_eff": round(n_eff, 1), "r1": round(r1, 2),
            "span_s": float(x[-1] - x[0])}


def mib_fit(points: list[tuple[float, float]]) -> dict | None:
    """(seconds, bytes) -> the fit in MiB per hour and per day (CI per day), rounded for reports."""
    f = fit(points, DAY_S)
    if f is None:
        return None
    day = f["slope"] / MIB
    return {"mib_per_h": round(day / 24, 2), "mib_per_day": round(day, 1),
            "ci95_mib_per_day": [round(f["lo"] / MIB, 1), round(f["hi"] / MIB, 1)],
            "se_mib_per_day": round(f["se"] / MIB, 1), "n": f["n"], "n_eff": f["n_eff"], "r1": f["r1"],
            "span_min": round(f["span_s"] / 60, 1)}


def judge(f: dict | None, budget_mib_per_day: float) -> str:
    """'meets' when the CI's upper bound is within the budget, 'exceeds' when its lower bound is above it,
    else 'undecided' (the run is too short or too noisy to tell)."""
    if f is None:
        return "undecided"
    lo, hi = f["ci95_mib_per_day"]
    if hi <= budget_mib_per_day:
        return "meets"
    if lo > budget_mib_per_day:
        return "exceeds"
    return "undecided"
