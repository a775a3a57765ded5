"""The after-action report of a closed incident: its reports, dispatches, acknowledgements, arrivals, escalations,
resolution, each response time against its deadline and the audit trail, as HTML and as PDF (real Chromium)."""

from __future__ import annotations

import io

import pytest
from lxml import html as lx

from dashboard.core.clock import iso
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from feeds.pipeline import now_ms
from tests.helpers import TEST_PASSWORD, make_event, make_user
from tests.test_api import ingest_now

TZ = "Asia/Shanghai"
MIN = 60_000


def hhmm(ms: int) -> str:
    return iso(ms, TZ)[11:16]


@pytest.fixture
def closed(make_app, redis_client):
    """An incident reported twice, dispatched to fire and police at t0; fire acknowledges in a minute, arrives and
    resolves; police misses its acknowledgement deadline, is escalated, then acknowledges and resolves; closed."""
    app = make_app()
    svc = app.server.extensions["panorama"]
    t0 = now_ms() - 3 * 3_600_000
    ingest_now(app, {"incident": [
        make_event(1, kind="fire", severity=3, ts=t0 - 4 * MIN, lat=22.54, lon=114.05, title="<b>华强北</b> 仓库起火",
                   source="110 报警"),
        make_event(2, kind="fire", severity=3, ts=t0 - 2 * MIN, lat=22.5401, lon=114.0501, title="仓库浓烟")]})
    with svc.engine.connect() as conn:
        inc = next(r for r in desk.queue(conn) if r["title"] == "<b>华强北</b> 仓库起火")
    fire, police = sorted(desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", "立即出动", t0,
                                     svc.city.rules, svc.city).tasks, key=lambda t: t["department"])
    times = {"fire_ack": t0 + MIN, "fire_on_scene": t0 + 9 * MIN, "fire_resolved": t0 + 40 * MIN,
             "escalated": police["ack_due_ms"] + 30_000, "police_ack": police["ack_due_ms"] + 60_000,
             "police_resolved": t0 + 50 * MIN, "closed": t0 + 55 * MIN}
    with svc.engine.begin() as conn:
        f = d.transition(conn, fire["id"], "acknowledged", 1, "fire_dep_a", None, times["fire_ack"]).task
        f = d.transition(conn, f["id"], "on_scene", f["version"], "fire_dep_a", "两车到场", times["fire_on_scene"]).task
        d.transition(conn, f["id"], "resolved", f["version"], "fire_dep_a", "明火扑灭", times["fire_resolved"])
        assert [r["id"] for r in d.escalate_overdue(conn, times["escalated"])] == [police["id"]]
    with svc.engine.begin() as conn:
        p = d.transition(conn, police["id"], "acknowledged", 1, "police_a", None, times["police_ack"]).task
        d.transition(conn, p["id"], "resolved", p["version"], "police_a", "现场已疏散", times["police_resolved"])
        d.close_incident(conn, inc["id"], "olga", "复盘后结案", times["closed"])
    make_user(app, "officer", "officer")
    client = app.server.test_client()
    assert client.post("/api/session", json={"username": "officer", "password": TEST_PASSWORD}).status_code == 200
    return app, client, inc, {"fire": fire, "police": police}, times


def text_of(html: str) -> str:
    return " ".join(lx.fromstring(html).text_content().split())


def test_the_report_has_every_step_and_each_response_against_its_deadline(closed):
    app, client, inc, tasks, times = closed
    res = client.get(f"/api/incidents/{inc['id']}/report.html")
    assert res.status_code == 200 and res.mimetype == "text/html"
    assert "default-src 'none'" in res.headers["Content-Security-Policy"]
    body = res.get_data(as_text=True)
    assert "<b>华强北</b>" not in body and "&lt;b&gt;华强北&lt;/b&gt; 仓库起火" in body  # event text is text
    text = text_of(body)
    assert "事件处置复盘报告" in text and "<b>华强北</b> 仓库起火" in text and "仓库浓烟" in text and "110 报警" in text
    names = {dep["code"]: dep["name"] for dep in app.server.extensions["panorama"].city.departments}
    assert names["fire"] in text and names["police"] in text
    for key in times:  # every time the records hold: dispatch, acknowledgements, arrival, resolutions, closing
        assert hhmm(times[key]) in text, key
    rows = {r.get("data-task"): " ".join(r.text_content().split()) for r in lx.fromstring(body).xpath("//tr[@class='task']")}
    fire, police = rows[str(tasks["fire"]["id"])], rows[str(tasks["police"]["id"])]
    assert "1 分 0 秒 /" in fire and "按时" in fire  # acknowledged in a minute, within its deadline
    assert "按时" not in police.split("/")[1] and police.count("超时") >= 2  # late to acknowledge; escalated
    assert hhmm(times["escalated"]) in police
    # the audit trail: who did what, with their notes
    for words in ("olga", "fire_dep_a", "police_a", "立即出动", "两车到场", "明火扑灭", "现场已疏散", "复盘后结案"):
        assert words in text, words
    # in English on request
    en = text_of(client.get(f"/api/incidents/{inc['id']}/report.html?lang=en").get_data(as_text=True))
    assert "After-action report" in en and "late" in en and "in time" in en


def test_the_pdf_is_printed_with_the_same_content(closed):
    from pypdf import PdfReader

    app, client, inc, tasks, times = closed
    res = client.get(f"/api/incidents/{inc['id']}/report.pdf?lang=en")
    assert res.status_code == 200 and res.mimetype == "application/pdf"
    pdf = res.get_data()
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4, as the briefings
    text = " ".join("".join(p.extract_text() for p in reader.pages).split())
    assert "After-action report" in text and "Audit trail" in text
    names = {dep["code"]: dep["name_en"] for dep in app.server.extensions["panorama"].city.departments}
    assert names["fire"] in text and names["police"] in text
    for key in ("fire_ack", "fire_on_scene", "police_ack", "closed"):
        assert hhmm(times[key]) in text, key
    assert "late" in text and "in time" in text


def test_an_incident_still_handled_has_no_report_yet(make_app, redis_client):
    app = make_app(BROWSER_PATH="none")
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=now_ms(), title="火情")]})
    make_user(app, "officer", "officer")
    client = app.server.test_client()
    client.post("/api/session", json={"username": "officer", "password": TEST_PASSWORD})
    with app.server.extensions["panorama"].engine.connect() as conn:
        inc = desk.queue(conn)[0]
    res = client.get(f"/api/incidents/{inc['id']}/report.html")
    assert res.status_code == 422 and res.get_json()["error"]["code"] == "not_finished"
    assert client.get("/api/incidents/999999/report.html").status_code == 404


def test_dispatch_links_a_finished_incidents_report_and_not_an_open_ones(closed):
    from callbacks.router import _by_id
    from dashboard.core.city import load_city
    from layouts.dispatch import detail_view

    app, _, inc, _, _ = closed
    svc = app.server.extensions["panorama"]
    with svc.engine.connect() as conn:
        doc = desk.detail(conn, svc, inc["id"], now_ms())
    city = load_city("shenzhen")
    links = _by_id(detail_view(doc, city, "en"), {})
    assert links["dispatch-report"].href == f"/api/incidents/{inc['id']}/report.html?lang=en"
    assert links["dispatch-report-pdf"].href == f"/api/incidents/{inc['id']}/report.pdf?lang=en"
    doc["incident"]["status"] = "in_progress"
    assert "dispatch-report" not in _by_id(detail_view(doc, city, "en"), {})
