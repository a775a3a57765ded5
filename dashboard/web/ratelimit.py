"""Limit each open-data API key to PANORAMA_OPEN_RATE requests per fixed window, counted in Redis.

Our own few lines rather than Flask-Limiter: the app reaches Redis through one client that Services builds
(standalone, Sentinel, Cluster, or the embedded in-process bus, which has no URL at all), while Flask-Limiter and
its ``limits`` storage open their own connections from a storage URI; and what is needed is one INCR and one
EXPIRE per request in a MULTI, the same as the sign-in limit (``auth._count_attempt``). Fixed windows let a key
make up to twice its rate across a window's edge; that is the price of one key per window and no clock
agreement between app workers beyond the window number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dashboard.core.channels import open_rate_key

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*(second|minute|hour|day)\s*$")


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests per ``period_s`` seconds."""

    limit: int
    period_s: int

    def __str__(self) -> str:
        unit = next(name for name, s in PERIODS.items() if s == self.period_s)
        return f"{self.limit}/{unit}"


def parse_rate(text: str) -> Rate:
    """Read a rate such as "60/minute" (second, minute, hour or day); ValueError for anything else."""
    m = _RATE.match(str(text))
    if not m or int(m[1]) < 1:
        raise ValueError(f"PANORAMA_OPEN_RATE {text!r} is not N/second, N/minute, N/hour or N/day with N >= 1")
    return Rate(int(m[1]), PERIODS[m[2]])


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided: how many requests are left in the window, and seconds until it ends."""

    allowed: bool
    remaining: int
    reset_s: int


def hit(client, key_id: int, rate: Rate, now_ms: int) -> Verdict:
    """Count one request of key ``key_id`` at ``now_ms`` and say whether it is within ``rate``.

    Raises the client's errors when Redis cannot count: the caller decides what an outage means.
    """
    window = now_ms // (rate.period_s * 1000)
    key = open_rate_key(key_id, window)
    pipe = client.pipeline(transaction=True)  # one key: one slot, a MULTI a cluster takes too
    pipe.incr(key)
    pipe.expire(key, rate.period_s + 1, nx=True)  # the window's key goes away after it
    count, _ = pipe.execute()
    reset_s = max(1, math.ceil(((window + 1) * rate.period_s * 1000 - now_ms) / 1000))
    return Verdict(count <= rate.limit, max(0, rate.limit - count), reset_s)
