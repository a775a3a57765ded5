"""A message of the outbox keeps the district centre running the incident it tells of, where that centre is another
district's than the incident's own: outbox.centre (NULL otherwise).

An incident the city centre hands down (or across) to another district it involves is in that centre's queue
(incidents.centre), but the escalations of its tasks and procedure steps were logged under the incident's own
district alone (outbox.district), so the centre running it never saw them in its delivery log nor counted them in
its summary. The messages already queued are given the centre running their incident now, by the same rule as
dashboard/storage/outbox.py's told_places.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_BATCH = 1000
_LOOKUP = {  # subject -> the district and centre of each incident it names
    "task": "SELECT t.id, i.district, i.centre FROM tasks t JOIN incidents i ON i.id = t.incident_id "
            "WHERE t.id IN :ids",
    "step": "SELECT id, district, centre FROM incidents WHERE id IN :ids",
}


def _escalated(payload):
    """Return (subject, id) for an escalation of a task or a procedure step, None otherwise."""
    try:
        body = json.loads(payload)
    except (TypeError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("type") != "escalation" or body.get("subject") not in _LOOKUP:
        return None
    head = str(body.get("id") or "").split(".", 1)[0]
    return (body["subject"], int(head)) if head.isdigit() else None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("centre", sa.String(16)))
    op.create_index("ix_outbox_centre", "outbox", ["centre", "status"])
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text("SELECT id, payload FROM outbox WHERE id > :last AND payload LIKE :esc "
                                    "ORDER BY id LIMIT :n"),
                            {"last": last, "n": _BATCH, "esc": "%escalation%"}).all()
        if not rows:
            return
        last = rows[-1][0]
        told = {row_id: _escalated(payload) for row_id, payload in rows}
        found = {}
        for subject, query in _LOOKUP.items():
            ids = sorted({ref for t in told.values() if t is not None and t[0] == subject for ref in (t[1],)})
            if ids:
                found.update({(subject, i): (d, c) for i, d, c in conn.execute(
                    sa.text(query).bindparams(sa.bindparam("ids", expanding=True)), {"ids": ids})})
        updates = []
        for row_id, t in told.items():
            district, centre = found.get(t, (None, None)) if t is not None else (None, None)
            if isinstance(centre, str) and centre != district and len(centre) <= 16:
                updates.append({"i": row_id, "c": centre})
        if updates:
            conn.execute(sa.text("UPDATE outbox SET centre = :c WHERE id = :i"), updates)


def downgrade() -> None:
    op.drop_index("ix_outbox_centre", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("centre")
