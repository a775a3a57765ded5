"""Read audit rows written before notes were codes: the system's old free-text notes said as codes again.

Builds before migration 0009 wrote what the system did into ``task_events.note`` as English or bilingual
text ("not acknowledged by the deadline", "district_440305 resolved", "指挥长升级 / escalated by the
commander"). They are read as the codes of ``dashboard.core.i18n`` when the trail is read, not rewritten by a
migration: rows of an older replica still running during a rolling deploy are read right too, and the
stored history stays exactly as it was written. A note that is not one of those texts is a person's own words.
"""

from __future__ import annotations

import re

# Exactly the notes old builds wrote, and the code each means.
LEGACY_NOTES = {
    "not acknowledged by the deadline": "overdue_ack",
    "not resolved by the deadline": "overdue_resolve",
    "指挥长升级 / escalated by the commander": "cmd_escalated",
    "指挥长批准 / approved by the commander": "cmd_approved",
    "指挥长已知悉 / seen by the commander": "cmd_seen",
}
# board.transition's old incident-status note: f"{department} {to}" + (f": {note}" if note else "").
_MOVED = re.compile(r"(?P<dep>[a-z][a-z0-9_]{0,63}) (?P<to>acknowledged|on_scene|resolved|rejected|closed)"
                    r"(?:: (?P<note>.*))?", re.DOTALL)


def legacy(code: str | None, params: dict | None, note: str | None) -> tuple[str | None, dict | None, str | None]:
    """Return (code, params, note) of one audit row, an old row's system text turned into its code."""
    if code or not note:
        return code, params, note
    if note in LEGACY_NOTES:
        return LEGACY_NOTES[note], None, None
    moved = _MOVED.fullmatch(note)
    if moved:
        return "task_moved", {"dep": moved["dep"], "to": moved["to"]}, moved["note"] or None
    return code, params, note


def read(row: dict) -> dict:
    """Return an audit row (``task_events``) with any legacy system note read as its code."""
    code, params, note = legacy(row.get("code"), row.get("params"), row.get("note"))
    return {**row, "code": code, "params": params, "note": note}
