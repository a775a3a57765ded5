"""Helpers for tests: waiting on conditions, building events."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value {value!r}")
        time.sleep(interval)


def make_event(n: int, *, domain: str | None = None, district: str = "futian", kind: str = "congestion",
               severity: int = 1, ts: str | int = "2026-11-26T08:30:00+08:00", **extra) -> dict:
    """Return a valid event dict with id ``ev-<n>``."""
    ev = {"id": f"ev-{n}", "ts": ts, "kind": kind, "district": district, "severity": severity,
          "title": f"测试事件 {n}"}
    if domain:
        ev["domain"] = domain
    ev.update(extra)
    return ev
