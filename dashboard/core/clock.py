"""Tell the time: the wall clock every process reads, injectable so a time of day can be pinned."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000


def now_ms() -> int:
    """Return the wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Clock:
    """A running clock, the wall clock shifted by a fixed offset (0 in production).

    The routing rules depend on the time of day (night rules add the district office), so a test
    that checks which departments are suggested pins the time of day instead of reading whatever
    hour the suite happens to run at. The clock keeps running, so deadlines and ages still move.
    """

    offset_ms: int = 0

    def __call__(self) -> int:
        """Return this clock's time in epoch milliseconds."""
        return now_ms() + self.offset_ms

    @classmethod
    def at_local(cls, hhmm: str, tz: str, *, real_ms: int | None = None) -> Clock:
        """Return a clock that reads ``hhmm`` in ``tz`` now: the latest such moment not after the wall clock.

        Shifting backwards only (by less than a day) keeps what tests stamp with this clock in the
        past of every other process's wall clock, so nothing reads as coming from the future.
        """
        real = now_ms() if real_ms is None else real_ms
        hour, minute = (int(part) for part in hhmm.split(":"))
        local = datetime.fromtimestamp(real / 1000, tz=ZoneInfo(tz))
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target > local:
            target -= timedelta(days=1)
        return cls(offset_ms=int(target.timestamp() * 1000) - real)


def iso(ms: int, tz: str) -> str:
    """Format epoch ms as RFC 3339 in the city's time zone."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")
