"""Store the open-data API keys: create, check, revoke, list; only a key's SHA-256 and its prefix are kept."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from dashboard.core.clock import now_ms
from dashboard.storage.models import api_keys

# A key reads "pnod_" + 8 characters shown as its prefix + 32 more: 240 random bits in all.
SCHEME = "pnod_"
PREFIX_CHARS = 8
MAX_KEY_CHARS = 128  # anything longer sent as a key is refused before it is hashed
MAX_OWNER = 128


class ApiKeyError(ValueError):
    """A key that cannot be created as asked (an empty or too long owner)."""


@dataclass(frozen=True)
class ApiKey:
    """A live key as the API sees it: its id (what the rate limit counts by), prefix and owner."""

    id: int
    prefix: str
    owner: str


def digest(key: str) -> str:
    """Return the stored form of a key: its SHA-256 (keys are 240 random bits: no salt or stretching needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, owner: str) -> tuple[ApiKey, str]:
    """Create a key for ``owner``; return it and the key itself, which is never stored."""
    owner = (owner or "").strip()
    if not owner or len(owner) > MAX_OWNER:
        raise ApiKeyError(f"an owner is 1 to {MAX_OWNER} characters")
    body = secrets.token_urlsafe(30)  # 40 characters
    prefix = SCHEME + body[:PREFIX_CHARS]
    key = SCHEME + body
    with engine.begin() as conn:
        new_id = conn.execute(insert(api_keys).values(
            prefix=prefix, key_hash=digest(key), owner=owner, created_ms=now_ms())).inserted_primary_key[0]
    return ApiKey(int(new_id), prefix, owner), key


def live_key(engine: Engine, key: str | None) -> ApiKey | None:
    """Return the live (not revoked) key ``key`` is, else None."""
    if not key or len(key) > MAX_KEY_CHARS or not key.startswith(SCHEME):
        return None
    k = api_keys.c
    with engine.connect() as conn:
        row = conn.execute(select(k.id, k.prefix, k.owner)
                           .where(k.key_hash == digest(key), k.revoked_ms.is_(None))).first()
    return None if row is None else ApiKey(int(row.id), row.prefix, row.owner)


def revoke_key(engine: Engine, key_id: int) -> bool:
    """Revoke key ``key_id``; return False when there is no such live key."""
    with engine.begin() as conn:
        done = conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_ms.is_(None))
                            .values(revoked_ms=now_ms()))
    return done.rowcount > 0


def list_keys(engine: Engine) -> list[dict]:
    """Return every key's id, prefix, owner and times (never the key nor its hash)."""
    k = api_keys.c
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(k.id, k.prefix, k.owner, k.created_ms, k.revoked_ms).order_by(k.id))]
