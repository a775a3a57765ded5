"""The anomaly rules' statistic and calendar, pure: the negative binomial tail against hand-computed values and
exact sums, the method-of-moments fit, the holiday calendar's refusals by line and the baseline hours it picks."""

from __future__ import annotations

import math
from datetime import date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from dashboard.core.alerts import anomaly_tail, beta_reg, nbinom_tail, poisson_tail
from dashboard.core.city import load_city
from dashboard.core.holidays import Holidays, baseline_hours, load_holidays, local_date
from dashboard.core.rules import RulesError

TZ = "Asia/Shanghai"
CITY = load_city("shenzhen")


def exact_tail(x: int, r: int, mu: Fraction) -> Fraction:
    """P(X >= x) for an integer shape, summed exactly: pmf(k) = C(k+r-1, k) p^r q^k, q = mu / (r + mu)."""
    q = mu / (r + mu)
    p = 1 - q
    return 1 - sum(Fraction(math.comb(k + r - 1, k)) * p ** r * q ** k for k in range(x))


# --- the negative binomial tail ------------------------------------------------------------------------------

def test_nbinom_tail_hand_computed_values():
    # r = 1 is the geometric: P(X >= x) = q^x; mean 1 -> q = 1/2, so P(X >= 5) = 1/32.
    assert nbinom_tail(5, 1.0, 1.0) == pytest.approx(1 / 32, rel=1e-12)
    # r = 2, mean 2 -> p = q = 1/2, pmf(k) = (k + 1) / 2^(k+2): P(X >= 3) = 1 - (1/4 + 2/8 + 3/16) = 5/16.
    assert nbinom_tail(3, 2.0, 2.0) == pytest.approx(5 / 16, rel=1e-12)
    # r = 3, mean 3 -> pmf(k) = C(k+2, 2) / 2^(k+3): P(X >= 2) = 1 - (1/8 + 3/16) = 11/16.
    assert nbinom_tail(2, 3.0, 3.0) == pytest.approx(11 / 16, rel=1e-12)
    assert nbinom_tail(0, 2.0, 2.0) == 1.0 and nbinom_tail(-3, 2.0, 2.0) == 1.0
    assert nbinom_tail(1, 2.0, 0.0) == 0.0  # nothing expected, nothing spread: any count is impossible


@pytest.mark.parametrize("x, r, mu", [(10, 1, Fraction(3)), (50, 4, Fraction(20)), (200, 20, Fraction(100)),
                                      (3, 100, Fraction(1, 2)), (40, 7, Fraction(55, 3)), (1, 5, Fraction(2))])
def test_nbinom_tail_matches_the_exact_sum(x, r, mu):
    assert nbinom_tail(x, float(r), float(mu)) == pytest.approx(float(exact_tail(x, r, mu)), rel=1e-9)


def test_nbinom_tail_tends_to_poisson_and_survives_large_counts():
    for x, mu in ((30, 10.0), (8, 1.0), (1200, 1000.0)):
        assert nbinom_tail(x, 1e9, mu) == pytest.approx(poisson_tail(x, mu), rel=1e-5)
    tiny = nbinom_tail(5000, 50.0, 1000.0)
    assert 0 < tiny < 1e-50  # the prefactor in log space: no underflow to 0 before the tail is that small
    assert 1e-90 < nbinom_tail(10_000, 0.2, 10.0) < 1e-80  # a heavy tail far out (about q^x = 10^-86)


def test_beta_reg_identities():
    assert beta_reg(1.0, 1.0, 0.3) == pytest.approx(0.3)  # the uniform
    assert beta_reg(4.0, 1.0, 0.5) == pytest.approx(0.5 ** 4)  # I_z(a, 1) = z^a
    assert beta_reg(7.5, 7.5, 0.5) == pytest.approx(0.5)  # symmetric
    assert beta_reg(3.0, 5.0, 0.2) + beta_reg(5.0, 3.0, 0.8) == pytest.approx(1.0)
    assert beta_reg(2.0, 2.0, 0.0) == 0.0 and beta_reg(2.0, 2.0, 1.0) == 1.0


# --- the method-of-moments fit ---------------------------------------------------------------------------------

def test_steady_weeks_are_poisson():
    s = anomaly_tail(20, [60, 60, 60, 60], 1 / 6, 1.0)  # no spread at all: s² = 0 <= m
    assert (s.shape, s.expected) == (None, 10.0) and s.p == poisson_tail(20, 10.0)
    s = anomaly_tail(20, [58, 62, 59, 61], 1 / 6, 1.0)  # s² = 10/3 < m = 60: no more than chance
    assert s.shape is None


def test_overdispersed_weeks_fit_their_own_variance():
    # m = 110, s² = (50² + 30² + 20² + 40²) / 3 = 1800; ten minutes: mean 110/6, excess (1/36)(1800 - 110);
    # r = (110/6)² / (1690/36) = 12100 / 1690.
    s = anomaly_tail(35, [60, 140, 90, 150], 1 / 6, 1.0)
    assert s.expected == pytest.approx(110 / 6) and s.shape == pytest.approx(12100 / 1690)
    assert s.p == pytest.approx(nbinom_tail(35, 12100 / 1690, 110 / 6))
    # The point of it: 35 in ten minutes where 18.3 is usual is a 1-in-3,000 Poisson count (it would fire at
    # p 0.001) but about 1 in 26 for weeks that swing between 60 and 150 an hour.
    assert poisson_tail(35, 110 / 6) < 0.001 < 0.03 < s.p < 0.05
    assert anomaly_tail(80, [60, 140, 90, 150], 1 / 6, 1.0).p < 1e-5  # a real surge is still improbable


def test_the_floor_lifts_the_mean_not_the_spread():
    # A quiet district: 0, 0, 0 and 3 thefts that hour. m = 0.75, s² = 2.25; ten minutes: mean 0.125 raised to
    # the floor 1, excess (1/36)(2.25 - 0.75) = 1/24 kept: r = 1 / (1/24) = 24, nearly Poisson.
    s = anomaly_tail(6, [0, 0, 0, 3], 1 / 6, 1.0)
    assert s.expected == pytest.approx(0.125) and s.shape == pytest.approx(24.0)
    assert s.p == pytest.approx(nbinom_tail(6, 24.0, 1.0)) and s.p < 0.001  # 6 where ~none is usual still fires
    empty = anomaly_tail(6, [0, 0, 0, 0], 1 / 6, 1.0)
    assert empty.shape is None and empty.p == poisson_tail(6, 1.0)
    assert anomaly_tail(6, [], 1 / 6, 1.0).p == poisson_tail(6, 1.0)  # no hours at all: the floor alone


# --- the calendar --------------------------------------------------------------------------------------------

def at(text: str) -> int:
    """Epoch ms of a Shenzhen wall-clock time."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ)).timestamp() * 1000)


def hours(ms: list[int]) -> list[str]:
    return [datetime.fromtimestamp(h / 1000, ZoneInfo(TZ)).strftime("%m-%d %H:%M") for h in ms]


def test_the_shenzhen_pack_has_the_published_2026_arrangement():
    cal = CITY.holidays
    assert cal.years == {2026: "published", 2027: "statutory"}
    spring = [d for d in cal.days if cal.days[d].name == "春节" and cal.days[d].kind == "holiday" and d.year == 2026]
    assert (min(spring), max(spring), len(spring)) == (date(2026, 2, 15), date(2026, 2, 23), 9)
    worked = sorted(d for d, day in cal.days.items() if day.kind == "workday")
    assert worked == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
                      date(2026, 10, 10)]
    assert cal.rest(date(2026, 10, 3)) and not cal.rest(date(2026, 10, 10)) and cal.rest(date(2026, 10, 11))
    assert not cal.rest(date(2026, 12, 8)) and cal.days[date(2027, 2, 5)].name_en == "Spring Festival"


def test_an_ordinary_day_takes_the_same_hour_of_the_last_weeks():
    assert hours(baseline_hours(at("2026-12-07T10:30"), 4, TZ, CITY.holidays)[0]) == [
        "11-30 10:00", "11-23 10:00", "11-16 10:00", "11-09 10:00"]
    assert baseline_hours(at("2026-12-07T10:30"), 4, TZ, CITY.holidays)[1] == "week"


def test_a_week_that_fell_on_a_holiday_or_a_worked_weekend_is_replaced_by_an_earlier_one():
    # Monday 12 October: the Monday before was National Day (5 October): skipped, 7 September taken instead.
    assert hours(baseline_hours(at("2026-10-12T10:30"), 4, TZ, CITY.holidays)[0]) == [
        "09-28 10:00", "09-21 10:00", "09-14 10:00", "09-07 10:00"]
    # Saturday 17 October: 10 October was worked in lieu, 3 October and 26 September were holidays.
    assert hours(baseline_hours(at("2026-10-17T21:05"), 4, TZ, CITY.holidays)[0]) == [
        "09-19 21:00", "09-12 21:00", "09-05 21:00", "08-29 21:00"]


def test_a_holiday_is_compared_with_the_days_off_before_it():
    past, basis = baseline_hours(at("2026-10-02T20:30"), 4, TZ, CITY.holidays)
    assert basis == "rest" and hours(past) == ["10-01 20:00", "09-27 20:00", "09-26 20:00", "09-25 20:00"]
    # National Day's first day: the Mid-Autumn holiday, then a Saturday (Sunday 20 September was worked).
    assert hours(baseline_hours(at("2026-10-01T09:10"), 4, TZ, CITY.holidays)[0]) == [
        "09-27 09:00", "09-26 09:00", "09-25 09:00", "09-19 09:00"]


def test_a_worked_weekend_is_compared_with_the_working_days_before_it():
    past, basis = baseline_hours(at("2026-10-10T08:45"), 4, TZ, CITY.holidays)
    assert basis == "work" and hours(past) == ["10-09 08:00", "10-08 08:00", "09-30 08:00", "09-29 08:00"]


def test_the_citys_own_date_decides():
    # 00:30 on 1 October in Shenzhen is still 30 September in UTC: the holiday is the city's.
    now = at("2026-10-01T00:30")
    assert local_date(now, TZ) == date(2026, 10, 1) and baseline_hours(now, 2, TZ, CITY.holidays)[1] == "rest"
    assert baseline_hours(now, 2, TZ, Holidays())[1] == "week"  # a pack without holidays.yaml: weeks as before


GOOD = """\
years:
  - year: 2026
    status: published
    source: "the notice"
    holidays:
      - {name: 国庆节, name_en: National Day, from: 2026-10-01, to: 2026-10-07, workdays: [2026-09-20, 2026-10-10]}
      - {name: 中秋节, name_en: Mid-Autumn Festival, from: 2026-09-25, to: 2026-09-27}
"""


@pytest.mark.parametrize("old, new, needle, problem", [
    ("workdays: [2026-09-20, 2026-10-10]", "workdays: [2026-09-21]", "国庆节",
     "make-up working day 2026-09-21 is a Monday: only a Saturday or Sunday is worked in lieu"),
    ("to: 2026-10-07", "to: 2026-01-07", "国庆节", "'to' (2026-01-07) is before 'from' (2026-10-01)"),
    ("from: 2026-09-25, to: 2026-09-27", "from: 2026-09-25, to: 2026-10-02", "中秋节",
     "2026-10-01 is already named at line 6"),
    ("from: 2026-09-25, to: 2026-09-27", "from: 2027-09-25, to: 2027-09-27", "中秋节",
     "中秋节 (2027-09-25 to 2027-09-27) is not in 2026"),
    ("status: published", "status: rumoured", "status", "status: Input should be 'published' or 'statutory'"),
    ("    source:", "    sauce: x\n    source:", "sauce", "unknown key 'sauce' (expected one of year, status, source, "
                                                         "holidays)"),
])
def test_a_broken_calendar_is_refused_by_line(tmp_path, old, new, needle, problem):
    text = GOOD.replace(old, new)
    assert text != GOOD
    path = tmp_path / "holidays.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_holidays(path)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)
    assert f"holidays.yaml line {line}: {problem}" in str(err.value).splitlines()


def test_a_good_calendar_loads(tmp_path):
    path = tmp_path / "holidays.yaml"
    path.write_text(GOOD, encoding="utf-8")
    cal = load_holidays(path)
    assert len([d for d in cal.days.values() if d.kind == "holiday"]) == 10
    assert cal.days[date(2026, 9, 20)].kind == "workday" and cal.years == {2026: "published"}
