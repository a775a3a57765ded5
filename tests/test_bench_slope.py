"""bench.slope: the soak's growth slopes, their confidence interval and the verdict against a budget."""

from __future__ import annotations

import random

from bench.slope import MIB, fit, judge, mib_fit, t_quantile


def test_t_quantile_is_close_to_the_tables():
    # Student's t, 97.5 %: df 4, 10, 30, 120
    for df, exact in ((4, 2.7764), (10, 2.2281), (30, 2.0423), (120, 1.9799)):
        assert abs(t_quantile(0.975, df) - exact) < 0.01 * exact


def test_fit_finds_a_known_growth_inside_its_interval():
    rng = random.Random(3)
    per_s = 40 * MIB / 86400  # 40 MiB a day
    points = [(t, 500 * MIB + per_s * t + rng.gauss(0, 2 * MIB)) for t in range(0, 7200, 10)]
    f = mib_fit(points)
    lo, hi = f["ci95_mib_per_day"]
    assert lo < 40 < hi
    assert abs(f["mib_per_h"] * 24 - f["mib_per_day"]) < 0.5
    assert judge(f, 50) in ("meets", "undecided")
    assert judge(mib_fit([(t, y + 2 * per_s * t) for t, y in points]), 50) == "exceeds"  # 120 MiB a day


def test_autocorrelated_noise_widens_the_interval():
    rng = random.Random(5)
    walk, level = [], 0.0
    for t in range(0, 3600, 10):  # a random walk: each sample leans on the one before
        level += rng.gauss(0, MIB)
        walk.append((t, level))
    f = fit(walk)
    assert f["r1"] > 0.5 and f["n_eff"] < f["n"] / 3


def test_too_few_points_decide_nothing():
    assert fit([(0, 1), (10, 2), (20, 3)]) is None
    assert judge(None, 50) == "undecided"
