"""Bound websocket handshakes: a ticket opens one socket, a user or a wall at most N at once across gateways.

Both are kept in Redis so they hold across any number of gateway processes: a used ticket is a key set with
``SET NX`` for the rest of the ticket's minute; each open socket is a member of its holder's sorted set, scored
by when it expires, refreshed by its gateway every few seconds, so a gateway that dies frees its slots by itself.
While Redis is away each gateway still enforces both on its own (in memory), so the bound never goes away.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time

from dashboard.core.bus import BUS_ERRORS as _BUS_ERRORS

log = logging.getLogger(__name__)

TICKET_KEY = "panorama:gateway:ticket:"  # + a digest of the ticket
SOCKETS_KEY = "panorama:gateway:sockets:"  # + the holder (u:<user id>, k:<kiosk token id>)
SLOT_TTL_S = 15  # a slot its gateway stopped refreshing (it died) is free after this
BUS_ERRORS = (*_BUS_ERRORS, OSError, TimeoutError)


class Admission:
    """One gateway's side of the ticket and socket bounds (``limit`` sockets per holder)."""

    def __init__(self, bus, gateway_id: str, limit: int):
        if limit < 1:
            raise ValueError("the socket limit per user must be at least 1")
        self.bus, self.gateway_id, self.limit = bus, gateway_id, limit
        self.held: dict[str, str] = {}  # member -> holder: this gateway's open slots
        self._serial = itertools.count(1)
        self._used: dict[str, float] = {}  # ticket digest -> expiry (monotonic): while Redis is away

    def _local_count(self, holder: str) -> int:
        return sum(1 for h in self.held.values() if h == holder)

    async def use_ticket(self, ticket: str, valid_for_s: float) -> bool:
        """Mark a ticket used; return False when it was used before (by this gateway or any other)."""
        digest = hashlib.sha256(ticket.encode()).hexdigest()[:32]
        ttl = max(1, math.ceil(valid_for_s) + 1)
        now = time.monotonic()
        self._used = {k: t for k, t in self._used.items() if t > now}
        if digest in self._used:
            return False
        self._used[digest] = now + ttl  # kept here as well: a Redis outage must not make it reusable
        try:
            return bool(await self.bus.set(TICKET_KEY + digest, self.gateway_id, nx=True, ex=ttl))
        except BUS_ERRORS as err:
            log.warning("ticket reuse checked by this gateway alone (Redis: %s)", type(err).__name__)
            return True

    async def take_slot(self, holder: str) -> str | None:
        """Take one of ``holder``'s socket slots; return its id, or None when all ``limit`` are in use."""
        if self._local_count(holder) >= self.limit:
            return None
        member = f"{self.gateway_id}:{next(self._serial)}"
        key, now = SOCKETS_KEY + holder, time.time()
        try:
            # One key, so one slot: a MULTI a cluster takes too.
            async with self.bus.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {member: now + SLOT_TTL_S})
                pipe.zcard(key)
                pipe.expire(key, SLOT_TTL_S)
                _, _, count, _ = await pipe.execute()
            if count > self.limit:
                await self.bus.zrem(key, member)
                return None
        except BUS_ERRORS as err:
            log.warning("socket limit of %s checked by this gateway alone (Redis: %s)", holder, type(err).__name__)
        self.held[member] = holder
        return member

    async def release(self, member: str | None) -> None:
        """Give a slot back (the socket closed, or its handshake failed)."""
        holder = self.held.pop(member, None) if member else None
        if holder is None:
            return
        try:
            await self.bus.zrem(SOCKETS_KEY + holder, member)
        except BUS_ERRORS:
            pass  # it expires within SLOT_TTL_S

    async def refresh(self) -> None:
        """Keep this gateway's slots alive (call well within SLOT_TTL_S)."""
        if not self.held:
            return
        expires = time.time() + SLOT_TTL_S
        try:
            async with self.bus.pipeline(transaction=False) as pipe:
                for member, holder in self.held.items():
                    pipe.zadd(SOCKETS_KEY + holder, {member: expires})
                    pipe.expire(SOCKETS_KEY + holder, SLOT_TTL_S)
                await pipe.execute()
        except BUS_ERRORS:
            pass  # counted again once Redis is back

    async def release_all(self) -> None:
        """Give every slot of this gateway back (it is stopping)."""
        for member in list(self.held):
            await self.release(member)
