"""Keep briefings in SQL: claim a slot exactly once, fill it in, list, fetch and prune them."""

from __future__ import annotations

from typing import Mapping, Sequence

import orjson
from sqlalchemy import delete, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from dashboard.core.clock import iso
from dashboard.core.notifications import Message
from dashboard.storage import outbox
from dashboard.storage.models import briefing_renditions, briefings

# A claim not finished within this long belongs to a process that died: another may take the slot over.
STALE_CLAIM_MS = 10 * 60_000
# Everything but the large columns: what the list needs.
SUMMARY_COLUMNS = [c for c in briefings.c if c.name not in ("data", "html", "pdf")]


def claim(engine: Engine, slot: str, trigger: str, by: str | None, start_ms: int, end_ms: int, now_ms: int,
          lang: str, district: str | None = None) -> int | None:
    """Insert the slot's row and return its id, or None when another process holds (or made) it.

    ``district``: a district centre's briefing (None: the city's); its ``slot`` names the district too
    (``district_slot``), so each (slot, district) is one row.

    The unique slot makes this exactly once across replicas: INSERT ... ON CONFLICT DO NOTHING lets one
    writer in, whatever the timing, and a claim left by a dead process is taken over once it is stale.
    """
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    row = {"slot": slot, "trigger": trigger, "requested_by": by, "status": "generating",
           "period_start_ms": start_ms, "period_end_ms": end_ms, "created_ms": now_ms, "lang": lang,
           "district": district}
    with engine.begin() as conn:
        new_id = conn.execute(insert(briefings).values(**row).on_conflict_do_nothing(index_elements=["slot"])
                              .returning(briefings.c.id)).scalar()
        if new_id is not None:
            return new_id
        # The conditional UPDATE lets only one of several replicas take a stale claim over.
        return conn.execute(update(briefings)
                            .where(briefings.c.slot == slot, briefings.c.status == "generating",
                                   briefings.c.created_ms < now_ms - STALE_CLAIM_MS)
                            .values(created_ms=now_ms).returning(briefings.c.id)).scalar()


def finish(engine: Engine, briefing_id: int, data: dict, headline: dict, html: str, pdf: bytes | None,
           images: bool, note: str | None, now_ms: int, mail: Sequence[Message] = (),
           renditions: Mapping[str, tuple[str, bytes | None]] | None = None) -> None:
    """Store what was made and mark the briefing ready; queue ``mail`` in the outbox in the same transaction, so
    the messages exist exactly when the ready briefing does (and a second finish queues nothing twice).

    ``renditions``: the report (HTML, PDF) in each other language its mail's readers read, by language."""
    with engine.begin() as conn:
        conn.execute(update(briefings).where(briefings.c.id == briefing_id).values(
            status="ready", finished_ms=now_ms, data=orjson.dumps(data).decode(),
            headline=orjson.dumps(headline).decode(), html=html, pdf=pdf, images=images, note=note))
        conn.execute(delete(briefing_renditions).where(briefing_renditions.c.briefing_id == briefing_id))
        for lang, (r_html, r_pdf) in sorted((renditions or {}).items()):
            conn.execute(briefing_renditions.insert().values(briefing_id=briefing_id, lang=lang, html=r_html,
                                                             pdf=r_pdf))
        for m in mail:
            outbox.enqueue(conn, key=m.key, channel=m.channel, address=m.address, subject=m.subject, body=m.body,
                           payload=m.payload, now_ms=now_ms)


def fail(engine: Engine, briefing_id: int, note: str, now_ms: int) -> None:
    """Mark a briefing failed with the reason (its slot stays taken: the list says what went wrong)."""
    with engine.begin() as conn:
        conn.execute(update(briefings).where(briefings.c.id == briefing_id)
                     .values(status="failed", finished_ms=now_ms, note=note[:2000]))


def download_name(briefing_id: int, period_end_ms: int, ext: str, tz: str) -> str:
    """Return a briefing's file name: panorama-briefing-<id>-<period end, local>.<ext> (downloads, mail)."""
    stamp = iso(period_end_ms, tz)[:16].replace("-", "").replace(":", "").replace("T", "-")
    return f"panorama-briefing-{briefing_id}-{stamp}.{ext}"


def district_slot(slot: str, district: str | None) -> str:
    """Return the exactly-once key of ``district``'s briefing of a slot (None: the city's, the slot itself)."""
    return slot if district is None else f"{slot}@{district}"


CITY = "city"  # the ``district`` filter that takes the city's briefings only


def where_district(district: str | None):
    """Return the condition a ``district`` filter puts on the briefings: None every one, ``CITY`` the city's,
    else that district's."""
    if district is None:
        return true()
    return briefings.c.district.is_(None) if district == CITY else briefings.c.district == district


def list_briefings(engine: Engine, limit: int = 200, district: str | None = None) -> list[dict]:
    """Return the briefings, newest period first, the city's before the districts' of the same period,
    without their content; ``district`` filters them (``where_district``)."""
    b = briefings.c
    stmt = (select(*SUMMARY_COLUMNS).where(where_district(district))
            .order_by(b.period_end_ms.desc(), b.district.is_not(None), b.district, b.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [_decoded(dict(r)) for r in conn.execute(stmt).mappings()]


def get(engine: Engine, briefing_id: int, *columns: str) -> dict | None:
    """Return one briefing's summary and the named large columns (data, html, pdf), or None."""
    cols = SUMMARY_COLUMNS + [briefings.c[name] for name in columns]
    with engine.connect() as conn:
        row = conn.execute(select(*cols).where(briefings.c.id == briefing_id)).mappings().first()
    if row is None:
        return None
    out = _decoded(dict(row))
    if "data" in out and out["data"] is not None:
        out["data"] = orjson.loads(out["data"])
    return out


def rendition(engine: Engine, briefing_id: int, lang: str) -> dict | None:
    """Return a briefing's report in ``lang`` (its ``html`` and ``pdf``): its own when that is its language, else
    the rendition made for readers of ``lang``; None when there is neither (or no such briefing)."""
    with engine.connect() as conn:
        own = conn.execute(select(briefings.c.lang, briefings.c.status, briefings.c.html, briefings.c.pdf)
                           .where(briefings.c.id == briefing_id)).mappings().first()
        if own is None or own["status"] != "ready":
            return None
        if own["lang"] == lang:
            return {"html": own["html"], "pdf": own["pdf"]}
        row = conn.execute(select(briefing_renditions.c.html, briefing_renditions.c.pdf)
                           .where(briefing_renditions.c.briefing_id == briefing_id,
                                  briefing_renditions.c.lang == lang)).mappings().first()
    return dict(row) if row is not None else None


def has_scheduled(engine: Engine) -> bool:
    """Tell whether any scheduled briefing was ever made (so the service has run before)."""
    with engine.connect() as conn:
        return conn.execute(select(briefings.c.id).where(briefings.c.trigger == "schedule").limit(1)).first() \
            is not None


def prune(engine: Engine, before_ms: int) -> int:
    """Delete the briefings created before ``before_ms`` (never one being made); return how many."""
    gone = (briefings.c.created_ms < before_ms) & (briefings.c.status != "generating")
    with engine.begin() as conn:
        # (the foreign key cascades on PostgreSQL; SQLite enforces none unless told to)
        conn.execute(delete(briefing_renditions).where(
            briefing_renditions.c.briefing_id.in_(select(briefings.c.id).where(gone))))
        return conn.execute(delete(briefings).where(gone)).rowcount


def _decoded(row: dict) -> dict:
    if row.get("headline"):
        row["headline"] = orjson.loads(row["headline"])
    return row
