"""Say the dispatch queue's incidents as the cells of an export: what /dispatch's queue shows, in words."""

from __future__ import annotations

from dashboard.core.clock import iso
from dashboard.core.i18n import kind_label, state_label, t

# The queue's incidents as a table: its marks and texts, one column each, in the queue's order of reading.
INCIDENT_COLUMNS = ("severity", "title", "district", "kind", "opened", "reports", "status", "escalated")


def incident_cells(rows: list[dict], city, lang: str, tz: str) -> list[dict]:
    """Return the cells of incidents as the queue says them (a missing title: the kind, as the queue shows)."""
    out = []
    for r in rows:
        district = city.by_code.get(r["district"])
        stamp = iso(r["opened_ms"], tz)
        out.append({
            "severity": r["severity"], "title": r["title"] or kind_label(r["kind"], lang),
            "district": (district.name_en if lang == "en" else district.name) if district else r["district"],
            "kind": kind_label(r["kind"], lang), "opened": f"{stamp[:10]} {stamp[11:19]}", "reports": r["reports"],
            "status": state_label(r["status"], lang),
            "escalated": t("incident_escalated", lang) if r.get("escalated_ms") is not None else ""})
    return out
