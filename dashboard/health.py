"""Check the dependencies and the freshness of each feed for /api/health and the screens."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from dashboard.bus import ping
from dashboard.models import district_minutes, feed_state
from dashboard.services import Services
from feeds.channels import DOMAINS

RATE_MINUTES = 5


def feed_freshness(conn, now_ms: int, stale_after: dict[str, int]) -> dict[str, dict]:
    """Return each domain's last-event age, recent rate and whether it is stale."""
    last = {row.domain: row.last_received_ms for row in conn.execute(select(feed_state))}
    end = now_ms - now_ms % 60_000 + 60_000
    since = end - RATE_MINUTES * 60_000
    dm = district_minutes.c
    # Bounded above too: minutes still to come (clock skew, rows from before ts was bounded) are no rate yet.
    rates = dict(conn.execute(select(dm.domain, func.sum(dm.n)).where(dm.minute_ms >= since, dm.minute_ms < end)
                              .group_by(dm.domain)).all())
    out = {}
    for domain in DOMAINS:
        age = None if domain not in last else max(0.0, round((now_ms - last[domain]) / 1000, 1))
        out[domain] = {
            "last_event_age_s": age,
            "rate_per_min": round((rates.get(domain) or 0) / RATE_MINUTES, 2),
            "stale": age is None or age > stale_after.get(domain, 300),
        }
    return out


def check(services: Services, now_ms: int) -> dict:
    """Return the health document of SPEC section 6 (``status`` ok or degraded)."""
    redis_ok, redis_detail = ping(services.redis)
    feeds: dict = {}
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            feeds = feed_freshness(conn, now_ms, services.config["PANORAMA_STALE_AFTER"])
        db_ok, db_detail = True, "ok"
    except SQLAlchemyError as err:
        db_ok, db_detail = False, f"unreachable: {type(err).__name__}"
    return {
        "status": "ok" if redis_ok and db_ok else "degraded",
        "redis": redis_detail,
        "database": db_detail,
        "mode": "embedded" if services.config["EMBEDDED"] else "production",
        "feeds": feeds,
    }
