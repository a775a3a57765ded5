"""A message of the outbox keeps the district it tells of: outbox.district (NULL: the city's or nobody's).

A district centre's delivery log and its summary were worked out from the newest 500 messages of the whole city
(their payloads read one by one), so a district's message older than those was neither listed nor counted; the
district, written with the message, makes both one indexed read of every message (SPEC section 13). The messages
already queued are given theirs here, by the same rule as dashboard/storage/outbox.py's told_districts.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_BATCH = 1000


def _told_of(payload):
    """Return ("district", code) for an alert's notification or a briefing's mail, (subject, id) for an
    escalation of an alert, task or procedure step, ("", None) otherwise (outbox._told_of as of this revision)."""
    try:
        body = json.loads(payload)
    except (TypeError, ValueError):
        return "", None
    if not isinstance(body, dict):
        return "", None
    for about in ("alert", "briefing"):
        if isinstance(body.get(about), dict):
            return "district", body[about].get("district")
    if body.get("type") == "escalation" and body.get("subject") in ("alert", "task", "step"):
        return body["subject"], str(body.get("id") or "").split(".", 1)[0]
    return "", None


_LOOKUP = {  # subject -> the district of each id it names
    "alert": "SELECT id, district FROM alerts WHERE id IN :ids",
    "task": "SELECT t.id, i.district FROM tasks t JOIN incidents i ON i.id = t.incident_id WHERE t.id IN :ids",
    "step": "SELECT id, district FROM incidents WHERE id IN :ids",
}


def upgrade() -> None:
    op.add_column("outbox", sa.Column("district", sa.String(16)))
    op.create_index("ix_outbox_district", "outbox", ["district", "status"])
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text("SELECT id, payload FROM outbox WHERE id > :last ORDER BY id LIMIT :n"),
                            {"last": last, "n": _BATCH}).all()
        if not rows:
            return
        last = rows[-1][0]
        told = {row_id: _told_of(payload) for row_id, payload in rows}
        found = {}
        for subject, query in _LOOKUP.items():
            ids = sorted({int(ref) for kind, ref in told.values() if kind == subject and (ref or "").isdigit()})
            if ids:
                found.update({(subject, i): d for i, d in conn.execute(
                    sa.text(query).bindparams(sa.bindparam("ids", expanding=True)), {"ids": ids})})
        updates = []
        for row_id, (kind, ref) in told.items():
            district = ref if kind == "district" else found.get((kind, int(ref))) if (ref or "").isdigit() else None
            if isinstance(district, str) and len(district) <= 16:
                updates.append({"i": row_id, "d": district})
        if updates:
            conn.execute(sa.text("UPDATE outbox SET district = :d WHERE id = :i"), updates)


def downgrade() -> None:
    op.drop_index("ix_outbox_district", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("district")
