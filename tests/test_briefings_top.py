"""The briefing's top incidents are ordered by what mattered (collect.importance): severity, reports,
departments involved and time to close, so a fire many reported and five departments fought is never left
out behind lone critical reports."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from dashboard.briefings.collect import TOP_INCIDENTS, importance, top_incidents
from dashboard.dispatch import board as d
from dashboard.storage.models import incidents
from tests.test_briefings import END, MIN, START, TZ, bapp  # noqa: F401 - bapp is a fixture

HOUR = 60 * MIN


def incident(id_: int, severity: int, reports: int = 1, departments: int = 0, hours: float = 1.0,
             opened_ms: int = 0) -> dict:
    """Return what ``importance`` reads of an incident."""
    return {"id": id_, "severity": severity, "reports": reports, "departments": departments,
            "hours_to_close": hours, "opened_ms": opened_ms}


def test_importance_adds_severity_reports_departments_and_time_to_close():
    def points(inc):
        return -importance(inc)[0]

    assert points(incident(1, 1, reports=1, departments=0, hours=0)) == 4
    assert points(incident(1, 4, reports=1, departments=0, hours=0)) == 16
    # reports count by doublings, up to 16; departments up to 5; hours up to 4
    assert points(incident(1, 3, reports=4, departments=0, hours=0)) == 12 + 4
    assert points(incident(1, 3, reports=500, departments=9, hours=30)) == 12 + 8 + 10 + 4
    assert points(incident(1, 3, reports=1, departments=2, hours=1.5)) == 12 + 4 + 1.5
    fire = incident(1, 3, reports=5, departments=5, hours=3)
    assert points(fire) == pytest.approx(29.6, abs=0.05)
    # a major fire five reported and five departments fought beats a critical lone report, even one left open
    lone_critical = incident(2, 4, reports=1, departments=0, hours=14)
    assert sorted([lone_critical, fire], key=importance) == [fire, lone_critical]
    # one level more severe, all else equal, comes first; equal scores: more severe, then earlier, then id
    assert sorted([incident(3, 2), incident(4, 3)], key=importance)[0]["id"] == 4
    a = incident(5, 3, reports=1, departments=0, hours=4)   # 12 + 4 = 16
    b = incident(6, 4, reports=1, departments=0, hours=0)   # 16
    assert [x["id"] for x in sorted([a, b], key=importance)] == [6, 5]
    early, late = incident(8, 2, opened_ms=1), incident(7, 2, opened_ms=2)
    assert [x["id"] for x in sorted([late, early], key=importance)] == [8, 7]


def _incident(conn, severity: int, reports: int, opened_ms: int, title: str, kind: str = "fire") -> int:
    return conn.execute(insert(incidents).values(
        domain="incident", kind=kind, district="440304", street=None, severity=severity, status="open",
        reports=reports, title=title, lat=22.54, lon=114.05, opened_ms=opened_ms,
        last_report_ms=opened_ms + 10 * MIN, updated_ms=opened_ms).returning(incidents.c.id)).scalar_one()


def test_a_fire_five_reported_and_sent_to_five_departments_leads_the_top_list(bapp):  # noqa: F811
    svc = bapp.server.extensions["panorama"]
    city = svc.city
    with svc.engine.begin() as conn:
        # more lone critical reports than the list holds: nobody sent, still open at the period's end
        lone = [_incident(conn, 4, 1, START + n * 30 * MIN, f"单条特别重大 {n}", "gas_leak")
                for n in range(TOP_INCIDENTS + 2)]
        fire = _incident(conn, 3, 5, START + 60 * MIN, "高层住宅火灾")
        minor = _incident(conn, 3, 1, START + 90 * MIN, "重大 一条报告 一个部门", "flood")
    opened = START + 60 * MIN
    deps = ["fire", "police", "emergency", "health", "transport"]
    with svc.engine.begin() as conn:
        tasks = d.dispatch(conn, fire, deps, "olga", None, opened + 5 * MIN, city.rules, city).tasks
        (m_task,) = d.dispatch(conn, minor, ["water"], "olga", None, START + 95 * MIN, city.rules, city).tasks
    for n, task in enumerate(tasks):
        with svc.engine.begin() as conn:
            d.transition(conn, task["id"], "acknowledged", 1, "liaison", "ok", opened + (10 + n) * MIN)
    for n, task in enumerate(tasks):  # the last department resolves three hours after the fire broke out
        with svc.engine.begin() as conn:
            d.transition(conn, task["id"], "resolved", 2, "liaison", "ok", opened + 3 * HOUR - (4 - n) * MIN)
    with svc.engine.begin() as conn:
        d.transition(conn, m_task["id"], "acknowledged", 1, "liaison", "ok", START + 100 * MIN)
        d.transition(conn, m_task["id"], "resolved", 2, "liaison", "ok", START + 120 * MIN)

    with svc.engine.connect() as conn:
        top = top_incidents(conn, city, START, END, TZ)
    ids = [i["id"] for i in top]
    assert len(top) == TOP_INCIDENTS
    assert ids[0] == fire, "the fire leads the list"
    first = top[0]
    assert (first["severity"], first["reports"], first["departments"]) == (3, 5, 5)
    assert first["hours_to_close"] == pytest.approx(3.0) and first["status"] == "resolved"
    assert first["importance"] == pytest.approx(29.6, abs=0.05)
    assert {t["department"] for t in first["tasks"]} == set(deps)
    # the lone critical reports come after it, oldest first (open longest: equal after 4 hours)
    assert ids[1:] == lone[:TOP_INCIDENTS - 1]
    assert minor not in ids  # 12 + 0 + 2 + 0.5 = 14.5, below every lone critical report (16 + up to 4)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_report_says_how_the_top_list_is_ordered(lang):
    from dashboard.briefings.render import build_html
    from dashboard.briefings.text import bt
    from dashboard.core.city import load_city
    from tests.test_briefings_pdf_layout import briefing

    city = load_city("shenzhen")
    html = build_html(briefing(city, lang), city, {})
    said = bt("top_order", lang)
    assert f'<p class="meta" id="top-order">{said}</p>' in html
    assert ("重要程度" in said) if lang == "zh" else ("severity, number of reports, departments involved" in said)
