"""The delivery log: GET /api/notifications (filters, bounds, 400s), /api/health's and /metrics' outbox figures,
and the /notifications page in headless Chromium (words in both languages, texts as text, filters, roles)."""

from __future__ import annotations

from dashboard.storage import outbox
from tests.helpers import sign_in, wait_for
from tests.test_access_matrix import session

TZ_OFFSET = "+08:00"


def fill(app) -> dict[str, int]:
    """Queue a few messages and settle them as a sender would: one delivered, one failed, one waiting after a try,
    one waiting; return their ids by key."""
    svc = app.server.extensions["panorama"]
    now = svc.clock()
    ids = {}
    with svc.engine.begin() as conn:
        for i, (key, channel, address) in enumerate((
                ("alert:1:firing:email:duty@example.org", "email", "duty@example.org"),
                ("alert:1:firing:webhook:http://127.0.0.1:9/h", "webhook", "http://127.0.0.1:9/h"),
                ("alert:2:firing:sms:+8613800000000", "sms", "+8613800000000"),
                ("alert:3:firing:email:duty@example.org", "email", "duty@example.org"))):
            outbox.enqueue(conn, key=key, channel=channel, address=address,
                           subject=f"<b>红色预警</b> {i} / [Red alert] {i}", body="...", payload={}, now_ms=now - 1000 + i)
            ids[key] = outbox.get(conn, key)["id"]
    with svc.engine.begin() as conn:
        taken = {r["key"]: r for r in outbox.claim_due(conn, now_ms=now, lease_ms=60_000, limit=3)}
        retry = {"base_ms": 60_000, "cap_ms": 600_000}
        outbox.mark_sent(conn, ids["alert:1:firing:email:duty@example.org"], attempts=1, now_ms=now,
                         detail="SMTP accepted by 127.0.0.1:25")
        outbox.mark_failed(conn, ids["alert:1:firing:webhook:http://127.0.0.1:9/h"], attempts=1,
                           error="HTTP 401: <script>bad signature</script>", now_ms=now, max_attempts=1, **retry)
        outbox.mark_failed(conn, ids["alert:2:firing:sms:+8613800000000"], attempts=1, error="HTTP 503: busy",
                           now_ms=now, max_attempts=8, **retry)
    assert len(taken) == 3
    return ids


def test_the_log_lists_newest_first_with_each_try_and_filters(app, redis_client):
    ids = fill(app)
    client, _ = session(app, "officer")
    doc = client.get("/api/notifications").get_json()
    assert [n["key"] for n in doc["notifications"]] == list(reversed(ids))
    by_key = {n["key"]: n for n in doc["notifications"]}
    sent = by_key["alert:1:firing:email:duty@example.org"]
    assert sent["status"] == "sent" and sent["sent_at"].endswith(TZ_OFFSET) and sent["due_at"] is None
    assert sent["log"] == [{"at": sent["sent_at"], "ok": True, "detail": "SMTP accepted by 127.0.0.1:25"}]
    waiting = by_key["alert:2:firing:sms:+8613800000000"]
    assert (waiting["status"], waiting["attempts"], waiting["last_error"]) == ("pending", 1, "HTTP 503: busy")
    assert waiting["due_at"].endswith(TZ_OFFSET)  # the next try
    assert {k: doc["summary"][k] for k in ("pending", "failed", "sent")} == {"pending": 2, "failed": 1, "sent": 1}
    only = client.get("/api/notifications?status=pending,failed&channel=sms,webhook").get_json()["notifications"]
    assert [n["key"] for n in only] == ["alert:2:firing:sms:+8613800000000",
                                        "alert:1:firing:webhook:http://127.0.0.1:9/h"]
    assert len(client.get("/api/notifications?limit=2").get_json()["notifications"]) == 2
    for bad, code in (("status=lost", "bad_status"), ("channel=pigeon", "bad_channel"), ("status=,", "bad_status"),
                      ("limit=0", "bad_limit"), ("limit=501", "bad_limit"), ("limit=ten", "bad_limit"),
                      ("limit=-1", "bad_limit")):
        res = client.get("/api/notifications?" + bad)
        assert res.status_code == 400 and res.get_json()["error"]["code"] == code, bad


def test_health_and_metrics_count_the_outbox(app, client, redis_client):
    fill(app)
    doc = client.get("/api/health").get_json()
    assert doc["notifications"]["pending"] == 2 and doc["notifications"]["failed"] == 1
    assert doc["notifications"]["oldest_pending_s"] >= 0
    text = client.get("/metrics").get_data(as_text=True)
    assert 'panorama_notifications{channel="webhook",status="failed"} 1.0' in text
    assert 'panorama_notifications{channel="sms",status="pending"} 1.0' in text
    assert 'panorama_notification_attempts_total{channel="email",outcome="ok"} 1.0' in text
    assert 'panorama_notification_attempts_total{channel="sms",outcome="failed"} 1.0' in text
    assert "panorama_notifications_oldest_pending_seconds" in text


def row_texts(dash_duo) -> list[str]:
    """The log's rows as text, read in one script (the page is drawn again after a filter link: no stale nodes)."""
    return dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('.notify-row')].map(r => r.innerText)")


def test_the_page_shows_the_log_in_words_filters_it_and_keeps_texts_as_text(app, dash_duo):
    fill(app)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/notifications", role="commander")
    dash_duo.wait_for_element("#notify-table", timeout=20)
    rows = wait_for(lambda: len(t := row_texts(dash_duo)) == 4 and t, timeout=20, message="four rows")
    assert "已送达" in rows[3] and "电子邮件" in rows[3] and "duty@example.org" in rows[3]
    assert "发送失败" in rows[2] and "HTTP 401: <script>bad signature</script>" in rows[2]  # as text
    assert "待发送" in rows[1] and "下次尝试" in rows[1] and "短信" in rows[1]
    assert "<b>红色预警</b> 3" in rows[0]  # markup in a subject stays text
    assert dash_duo.driver.execute_script(
        "return document.querySelectorAll('.notify-table b, .notify-table script').length") == 0
    assert "待发送 2 条 · 发送失败 1 条" in dash_duo.find_element("#notify-summary").text
    dash_duo.find_element("#notify-filter-status a[href='/notifications?status=failed']").click()
    wait_for(lambda: len(t := row_texts(dash_duo)) == 1 and "发送失败" in t[0], timeout=20,
             message="the failed one only")
    dash_duo.find_element("#lang-toggle").click()
    heading = "return (document.querySelector('.page-notifications h1') || {}).innerText"
    english = wait_for(lambda: dash_duo.driver.execute_script(heading) == "Notifications"
                       and len(t := row_texts(dash_duo)) == 1 and "failed" in t[0] and t, timeout=20,
                       message="in English")
    assert "Webhook" in english[0] and "发送" not in english[0]
    assert dash_duo.get_logs() == []


def test_a_viewer_and_a_liaison_may_not_open_the_page(app, redis_client):
    fill(app)
    for role in ("viewer", "liaison"):
        client, _ = session(app, role)
        page = client.get("/notifications").get_data(as_text=True)
        assert "duty@example.org" not in page and "notify-table" not in page, role
    officer, _ = session(app, "officer")
    assert "duty@example.org" in officer.get("/notifications").get_data(as_text=True)
