"""Let one briefing be made at a time in the whole deployment: a Redis lock with a timeout."""

from __future__ import annotations

import contextlib
import logging
import secrets
from time import monotonic, sleep

import redis

from dashboard.core.bus import BUS_ERRORS

log = logging.getLogger(__name__)

KEY = "panorama:briefings:making"
# A briefing takes seconds (a minute with a slow Chromium); a holder that died frees the lock after this.
TIMEOUT_S = 600
# What a refused request is told to wait: the usual length of one briefing, not the lock's worst case.
RETRY_AFTER_S = 15


class BriefingBusy(Exception):
    """Another briefing is being made in this deployment; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"another briefing is being made; try again in {retry_after} s")
        self.retry_after = retry_after


def acquire(r: redis.Redis, wait_s: float = 0, poll_s: float = 1.0) -> str:
    """Take the deployment's briefing lock and return its token; raise ``BriefingBusy`` when another holds it
    for longer than ``wait_s`` seconds (0: do not wait)."""
    token = secrets.token_hex(16)
    deadline = monotonic() + wait_s
    while not r.set(KEY, token, nx=True, ex=TIMEOUT_S):
        if monotonic() >= deadline:
            ttl = r.ttl(KEY)
            raise BriefingBusy(max(1, min(RETRY_AFTER_S, ttl if ttl > 0 else RETRY_AFTER_S)))
        sleep(poll_s)
    return token


def release(r: redis.Redis, token: str) -> None:
    """Give the lock back, only while it is still ours (it may have timed out and been taken since)."""
    # A WATCH transaction rather than redis-py's Lock, whose release is a Lua script the embedded bus
    # (fakeredis without Lua) cannot run. Asked for by name: a cluster client's default pipeline is not
    # transactional and refuses WATCH; one key, one slot, so a cluster runs this MULTI too.
    try:
        with r.pipeline(transaction=True) as pipe:
            pipe.watch(KEY)
            if pipe.get(KEY) in (token, token.encode()):
                pipe.multi()
                pipe.delete(KEY)
                pipe.execute()
            else:
                pipe.unwatch()
    except redis.WatchError:
        pass  # changed under us: no longer ours
    except BUS_ERRORS:
        log.warning("briefing lock not released (bus down); it times out in %s s", TIMEOUT_S, exc_info=True)


@contextlib.contextmanager
def one_at_a_time(r: redis.Redis, wait_s: float = 0):
    """Hold the deployment's briefing lock for the ``with`` block (see ``acquire``)."""
    token = acquire(r, wait_s)
    try:
        yield
    finally:
        release(r, token)
