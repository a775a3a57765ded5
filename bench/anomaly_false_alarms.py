"""Count the anomaly rules' false alarms over simulated weeks: Poisson against the negative binomial (issue 16).

Run ``PYTHONPATH=. .venv/bin/python -m bench.anomaly_false_alarms`` (see ``--help``; about a minute). No server:
the statistic alone (``core.alerts.poisson_tail`` and ``core.alerts.anomaly_tail``, the rule's own functions),
on counts simulated the way real ones vary:

* ``--places`` places (a district's count of one kind), each with a mean per hour drawn log-uniformly from
  ``--min-rate`` to ``--max-rate`` (a quiet kind at night to a busy one at rush hour), shaped by the hour of the
  day (a day curve: ~0.2x at 04:00, ~1.6x at 18:00) and the day of the week (weekends 0.8x);
* every day of every place has its own multiplier, a gamma of mean 1 and shape ``--day-shape`` (weather, events,
  the news: what makes real counts overdispersed; shape 8 is a day-to-day spread of about 35 %); within a day
  the events of an hour are Poisson;
* ``--weeks`` weeks of history (the rule's baseline), then ``--eval-weeks`` weeks judged: every 10-minute
  window of every hour (the rule's default window; the tick slides it every 2 s, here it steps 10 minutes),
  its count against the same hour of the last ``--weeks`` weeks, fired at ``p < --p`` with ``min_count`` 5 and
  floor 1, the rule's defaults;
* **false alarms**: an alarm is a run of consecutive windows that hold (one alert, pending to resolved), counted
  per place and week in the judged weeks, which hold no surge;
* **surges found**: the same weeks again with ``--surges`` surges per place injected (the window's mean times
  ``--surge-factor``, plus 5 events so a quiet place's surge is a real one), each found when its window holds.

Both statistics see the same counts (one seed). Figures are counts, not times: no clock.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from dashboard.core.alerts import anomaly_tail, poisson_tail

HOURS_A_WEEK = 7 * 24
WINDOWS_AN_HOUR = 6  # 10-minute windows


def day_curve(hour: int) -> float:
    """Return the hour of the day's share of the daily mean (1 on average): low at night, a peak at 18:00."""
    return 1.0 + 0.6 * math.sin((hour - 12) / 24 * 2 * math.pi) + 0.25 * math.sin((hour - 15) / 12 * 2 * math.pi)


def simulate(args, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return the places' mean per window (weeks x hours x windows) and the simulated counts (same shape, +1 axis
    for the places first)."""
    weeks = args.weeks + args.eval_weeks
    rates = np.exp(rng.uniform(math.log(args.min_rate), math.log(args.max_rate), args.places))
    shape = np.array([[day_curve(h % 24) * (0.8 if (h // 24) >= 5 else 1.0) for h in range(HOURS_A_WEEK)]])
    means = rates[:, None, None] * shape[None] / WINDOWS_AN_HOUR  # places x 1 x hours
    day = rng.gamma(args.day_shape, 1 / args.day_shape, (args.places, weeks, 7))  # one multiplier per day
    per_hour = np.repeat(day, 24, axis=2)  # places x weeks x hours
    lam = means * per_hour  # places x weeks x hours: the mean of each 10-minute window of that hour
    counts = rng.poisson(lam[..., None].repeat(WINDOWS_AN_HOUR, axis=3))  # places x weeks x hours x windows
    return lam, counts


def judge(args, counts: np.ndarray, surges: dict | None = None) -> dict:
    """Run both statistics over the judged weeks; return false alarms (or surges found) per statistic."""
    places, weeks, hours, windows = counts.shape
    alarms = {"poisson": 0, "negative_binomial": 0}
    found = {"poisson": 0, "negative_binomial": 0}
    evaluated = 0
    for p in range(places):
        for w in range(args.weeks, weeks):
            for h in range(hours):
                base = counts[p, w - args.weeks:w, h, :].sum(axis=1).tolist()  # the same hour, last weeks
                mean = sum(base) / len(base)
                for stat in alarms:
                    held = False
                    for k in range(windows):
                        x = int(counts[p, w, h, k])
                        if surges is not None and (p, w, h, k) not in surges:
                            continue
                        evaluated += stat == "poisson"
                        if stat == "poisson":
                            tail = poisson_tail(x, max(mean / WINDOWS_AN_HOUR, 1.0))
                        else:
                            tail = anomaly_tail(x, base, 1 / WINDOWS_AN_HOUR, 1.0).p
                        holds = x >= 5 and tail < args.p
                        if surges is None:
                            alarms[stat] += holds and not held  # a new run of holding windows: one alert
                            held = holds
                        else:
                            found[stat] += holds
    return {"alarms": alarms, "found": found, "windows": evaluated}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--places", type=int, default=60, help="places (a district's count of one kind)")
    p.add_argument("--weeks", type=int, default=4, help="baseline weeks (the rule's default)")
    p.add_argument("--eval-weeks", type=int, default=8, help="weeks judged after the baseline")
    p.add_argument("--min-rate", type=float, default=0.5, help="least mean events per hour of a place")
    p.add_argument("--max-rate", type=float, default=400, help="most mean events per hour of a place")
    p.add_argument("--day-shape", type=float, default=8, help="gamma shape of the day-to-day multiplier")
    p.add_argument("--p", type=float, default=0.001, help="the rule's p")
    p.add_argument("--surges", type=int, default=20, help="surges injected per place in the judged weeks")
    p.add_argument("--surge-factor", type=float, default=3.0, help="a surge's window mean, times the usual")
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    lam, counts = simulate(args, rng)
    quiet = judge(args, counts)
    # Surges: the same weeks, a few windows replaced by a surge's count.
    surged = counts.copy()
    spots = {}
    for place in range(args.places):
        for _ in range(args.surges):
            w = int(rng.integers(args.weeks, args.weeks + args.eval_weeks))
            h, k = int(rng.integers(HOURS_A_WEEK)), int(rng.integers(WINDOWS_AN_HOUR))
            surged[place, w, h, k] = rng.poisson(lam[place, w, h] * args.surge_factor) + 5
            spots[(place, w, h, k)] = True
    hit = judge(args, surged, spots)
    place_weeks = args.places * args.eval_weeks
    res = {"args": vars(args), "place_weeks": place_weeks, "windows_judged": quiet["windows"],
           "false_alarms": quiet["alarms"], "false_alarms_per_place_week": {
               k: v / place_weeks for k, v in quiet["alarms"].items()},
           "surges": len(spots), "surges_found": hit["found"], "seconds": time.perf_counter() - started}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"Anomaly false alarms: {args.places} places, {args.weeks} baseline weeks, {args.eval_weeks} judged "
          f"({quiet['windows']:,} ten-minute windows), means {args.min_rate}-{args.max_rate} events/h, day-to-day "
          f"gamma shape {args.day_shape}, p < {args.p}, min_count 5, floor 1")
    print(f"  {'statistic':<18} {'alerts':>7} {'per place-week':>15} {'surges found':>14}")
    for stat in ("poisson", "negative_binomial"):
        print(f"  {stat:<18} {quiet['alarms'][stat]:>7,} {quiet['alarms'][stat] / place_weeks:>15.3f} "
              f"{hit['found'][stat]:>7,} of {len(spots):,}")
    print(f"  (expected by p alone, every window independent: {quiet['windows'] * args.p / place_weeks:.2f} "
          f"windows per place-week; took {res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
