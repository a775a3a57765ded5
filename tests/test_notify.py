"""Notifications: policies as city-pack data, queued with the alert's change, delivered to a real HTTP receiver
(signed webhooks, the SMS gateway) and a real SMTP server, retried with backoff, at least once."""

from __future__ import annotations

import json
import re
import shutil
import threading

import pytest
from sqlalchemy import select

from dashboard.core.city import PACKS_DIR, load_city
from dashboard.core.config import load_config
from dashboard.core.notifications import alert_messages, load_policies
from dashboard.core.rules import RulesError
from dashboard.storage import alerts as store
from dashboard.storage import outbox
from dashboard.storage.events import EventStore
from dashboard.storage.models import alerts
from feeds.alerting import Evaluator
from feeds.notify import NotifyConfig, Sender, message_id, sign, verify
from feeds.pipeline import Pipeline
from tests.helpers import wait_for
from tests.receivers import HttpReceiver, SmtpReceiver
from tests.test_alerts import MIN, TZ, aqi, flush, now_ms

SECRET = "test-secret"
RULES = """\
rules:
  - id: aqi_high
    type: threshold
    level: red
    scope: district
    kind: aqi
    op: ">"
    value: 150
    for: PT10M
    say: {zh: "{place}空气质量指数 {value}", en: "{place}: AQI {value}"}
    notify: env
  - id: aqi_mild
    type: threshold
    level: yellow
    scope: district
    kind: aqi
    op: ">"
    value: 120
    for: PT10M
    say: {zh: "{place}空气质量指数 {value}（轻度）", en: "{place}: AQI {value} (mild)"}
    notify: urgent_only
"""


def policies_yaml(hook: str, sms_to: str = "+8613800000000", mail_to: str = "duty@example.org") -> str:
    return f"""\
policies:
  - id: env
    statuses: [firing, resolved]
    to:
      - {{channel: webhook, address: "{hook}"}}
      - {{channel: email, address: {mail_to}}}
      - {{channel: sms, address: "{sms_to}"}}
  - id: urgent_only
    levels: [orange, red]
    to:
      - {{channel: webhook, address: "{hook}"}}
"""


def pack(tmp_path, hook: str, rules: str = RULES, **kw):
    path = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", path)
    (path / "rosters.yaml").unlink()  # the team policies alone: the duty escalation is tests/test_roster_escalation.py's
    (path / "alerts.yaml").write_text(rules, encoding="utf-8")
    (path / "notifications.yaml").write_text(policies_yaml(hook, **kw), encoding="utf-8")
    return load_city(str(path))


def notify_config(**overrides) -> NotifyConfig:
    cfg = load_config({"PANORAMA_WEBHOOK_SECRET": SECRET, "PANORAMA_NOTIFY_BACKOFF_MS": 50,
                       "PANORAMA_NOTIFY_BACKOFF_CAP_MS": 1000, "PANORAMA_NOTIFY_POLL_MS": 20,
                       "PANORAMA_NOTIFY_TIMEOUT_S": 5, "PANORAMA_NOTIFY_MAX_ATTEMPTS": 4, **overrides}, environ={})
    return NotifyConfig.from_config(cfg)


@pytest.fixture
def hook():
    receiver = HttpReceiver(SECRET)
    yield receiver
    receiver.close()


@pytest.fixture
def smtp():
    server = SmtpReceiver(refuse={"nobody@example.org"})
    yield server
    server.close()


@pytest.fixture
def gateway():
    receiver = HttpReceiver(SECRET)
    yield receiver
    receiver.close()


def messages_of(engine, prefix: str = "") -> list[dict]:
    with engine.connect() as conn:
        rows = outbox.list_messages(conn, key_prefix=prefix or None)
        log = outbox.attempts_of(conn, [r["id"] for r in rows])
    return [{**r, "log": log[r["id"]]} for r in reversed(rows)]


def drain(sender: Sender, engine, done, timeout: float = 30) -> None:
    """Run the sender's rounds (in this thread) until ``done(messages)`` holds."""
    def step():
        sender.run_once()
        return done(messages_of(engine))
    wait_for(step, timeout=timeout, interval=0.05, message="the outbox settled")


# --- policies as city-pack data -----------------------------------------------------------------------------

def test_the_shenzhen_pack_names_a_policy_for_every_rule():
    city = load_city("shenzhen")
    policies = city.notification_policies
    assert {r.notify for r in city.alert_rules.rules} <= set(policies)
    assert policies["police_urgent"].levels == ("orange", "red")
    assert policies["environment_duty"].statuses == ("firing", "resolved")


def test_a_broken_notifications_file_is_refused_by_line(tmp_path):
    path = tmp_path / "notifications.yaml"
    path.write_text("""\
policies:
  - id: env
    statuses: [firing, closed]
    to:
      - {channel: email, address: not-a-mailbox}
      - {channel: pager, address: "123"}
  - id: env
    to:
      - {channel: sms, address: "+8613800000000"}
      - {channel: sms, address: "+8613800000000"}
    colour: red
""", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_policies(path)
    text = str(err.value)
    assert "notifications.yaml line 3: statuses: 'closed' is not one of 'firing' or 'resolved'" in text
    assert "notifications.yaml line 5: email address 'not-a-mailbox' is not a mailbox" in text
    assert "notifications.yaml line 6: channel: 'pager' is not one of 'webhook', 'email' or 'sms'" in text
    assert "notifications.yaml line 11: unknown key 'colour'" in text
    assert "line 4" not in text  # the list is not "too short": its items are wrong, and said so
    fixed = (path.read_text().replace("closed", "resolved").replace("not-a-mailbox", "a@example.org")
             .replace("pager", "webhook").replace('"123"', "http://127.0.0.1:9/x").replace("    colour: red\n", ""))
    path.write_text(fixed)
    with pytest.raises(RulesError) as err:
        load_policies(path)
    assert str(err.value).splitlines() == [
        "notifications.yaml line 7: duplicate policy id 'env'",
        "notifications.yaml line 10: sms +8613800000000 is listed twice in policy 'env'"]


def test_a_rule_naming_an_unknown_policy_is_refused_by_line(tmp_path):
    with pytest.raises(RulesError) as err:
        pack(tmp_path, "http://127.0.0.1:9/hook", RULES.replace("notify: env", "notify: envv")).alert_rules
    assert "alerts.yaml line 11: unknown notification policy 'envv'" in str(err.value)


def test_a_policy_tells_only_its_statuses_and_levels():
    city_policies = load_city("shenzhen").notification_policies
    row = {"id": 7, "rule": "r", "level": "yellow", "status": "firing", "district": "440304", "zone": None,
           "started_ms": 1_800_000_000_000, "fired_ms": 1_800_000_060_000, "resolved_ms": None, "value": 170.0,
           "baseline": None, "title": "福田区空气质量指数 170", "title_en": "Futian: AQI 170", "version": 2,
           "updated_ms": 1_800_000_060_000}
    assert alert_messages(city_policies["police_urgent"], row, "firing", TZ) == []  # yellow: not urgent
    assert alert_messages(city_policies["police_duty"], {**row, "resolved_ms": 1}, "resolved", TZ) == []
    got = alert_messages(city_policies["environment_duty"], row, "firing", TZ)
    assert [(m.channel, m.key) for m in got] == [
        ("email", "alert:7:firing:email:env-duty@example.invalid"), ("sms", "alert:7:firing:sms:+8675500000006"),
        ("webhook", "alert:7:firing:webhook:http://127.0.0.1:8090/hooks/panorama")]
    # the shipped recipients name no language: the city's, Chinese alone
    assert got[0].subject == "【黄色预警发布】福田区空气质量指数 170"
    assert "福田区空气质量指数 170" in got[0].body and "Futian" not in got[0].body
    assert "2027-01-15T16:01:00+08:00" in got[0].body  # the city's time
    assert got[0].payload["alert"]["title_en"] == "Futian: AQI 170" and got[0].payload["key"] == got[0].key


# --- the channels, against real receivers -------------------------------------------------------------------

def put(engine, key: str, channel: str, address: str, payload: dict | None = None) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, key=key, channel=channel, address=address, subject="【红色预警发布】测试 / [Red] test",
                       body="中文正文\n\nEnglish body\n", payload=payload or {"v": 1, "key": key, "type": "alert_firing",
                                                                          "at": "2026-12-06T20:00:00+08:00",
                                                                          "alert": {"id": 1, "level": "red",
                                                                                    "title": "福田区 AQI 230"}})


def test_a_webhook_is_signed_with_hmac_and_carries_its_idempotency_key(any_engine, hook):
    put(any_engine, "alert:1:firing:webhook:x", "webhook", hook.url("/in"))
    sender = Sender(any_engine, notify_config(), threading.Event())
    drain(sender, any_engine, lambda ms: ms[0]["status"] == "sent")
    [req] = hook.got
    assert req.path == "/in" and req.verified and req.key == "alert:1:firing:webhook:x"
    assert req.json["alert"]["title"] == "福田区 AQI 230"
    stamp = req.headers["x-panorama-timestamp"]
    # What a receiver checks, and what it must refuse: another secret, a changed body, an old timestamp.
    assert req.headers["x-panorama-signature"] == sign(SECRET, stamp, req.body)
    assert not verify("another", stamp, req.body, req.headers["x-panorama-signature"])
    assert not verify(SECRET, stamp, req.body.replace("230".encode(), b"231"), req.headers["x-panorama-signature"])
    assert not verify(SECRET, stamp, req.body, req.headers["x-panorama-signature"], now_s=int(stamp) + 301)
    [msg] = messages_of(any_engine)
    assert [a["ok"] for a in msg["log"]] == [True] and msg["log"][0]["detail"] == "HTTP 200"


def test_a_webhook_failing_twice_is_retried_with_backoff_then_delivered(any_engine, hook):
    hook.statuses = [503, 500]
    put(any_engine, "alert:2:firing:webhook:x", "webhook", hook.url())
    sender = Sender(any_engine, notify_config(), threading.Event())
    drain(sender, any_engine, lambda ms: ms[0]["status"] == "sent")
    assert [r.answered for r in hook.got] == [503, 500, 200]
    assert {r.key for r in hook.got} == {"alert:2:firing:webhook:x"}  # one key, however many tries
    assert all(r.verified for r in hook.got)  # each try signed anew
    [msg] = messages_of(any_engine)
    assert msg["attempts"] == 3
    assert [(a["ok"], a["detail"]) for a in msg["log"]] == [(False, "HTTP 503: busy, try later"),
                                                            (False, "HTTP 500: busy, try later"), (True, "HTTP 200")]
    at = [a["at_ms"] for a in msg["log"]]
    assert at[1] - at[0] >= 50 and at[2] - at[1] >= 100  # not before its backoff: 50 ms, then twice that


def test_a_webhook_refused_fails_at_once_and_a_busy_one_after_the_last_try(any_engine, hook):
    hook.by_path = {"/hook": [401], "/busy": [503] * 4}
    put(any_engine, "refused", "webhook", hook.url())
    put(any_engine, "busy", "webhook", hook.url("/busy"))
    sender = Sender(any_engine, notify_config(), threading.Event())
    drain(sender, any_engine, lambda ms: {m["status"] for m in ms} == {"failed"})
    by_key = {m["key"]: m for m in messages_of(any_engine)}
    assert by_key["refused"]["attempts"] == 1 and by_key["refused"]["last_error"].startswith("HTTP 401")
    assert by_key["busy"]["attempts"] == 4 and [a["ok"] for a in by_key["busy"]["log"]] == [False] * 4
    with any_engine.connect() as conn:
        assert outbox.summary(conn, now_ms())["failed"] == 2


def test_email_goes_to_a_real_smtp_server_in_both_languages_with_a_message_id_from_the_key(any_engine, smtp):
    put(any_engine, "alert:3:firing:email:duty@example.org", "email", "duty@example.org")
    put(any_engine, "alert:3:firing:email:nobody@example.org", "email", "nobody@example.org")
    sender = Sender(any_engine, notify_config(PANORAMA_SMTP_URL=smtp.url, PANORAMA_SMTP_FROM="panorama@sz.example"),
                    threading.Event())
    drain(sender, any_engine, lambda ms: {m["status"] for m in ms} == {"sent", "failed"})
    [mail] = smtp.messages
    assert smtp.box.envelopes == [("panorama@sz.example", ["duty@example.org"])]
    assert mail["Message-ID"] == message_id("alert:3:firing:email:duty@example.org")
    assert mail["X-Panorama-Idempotency-Key"] == "alert:3:firing:email:duty@example.org"
    assert mail["Subject"] == "【红色预警发布】测试 / [Red] test"
    assert mail.get_content().replace("\r\n", "\n") == "中文正文\n\nEnglish body\n"  # SMTP lines end in CRLF
    by_key = {m["key"]: m for m in messages_of(any_engine)}
    refused = by_key["alert:3:firing:email:nobody@example.org"]
    assert refused["attempts"] == 1 and refused["last_error"].startswith("SMTP 550")  # a refusal is final


def test_the_sms_gateway_gets_its_template_with_a_bearer_token(any_engine, gateway):
    put(any_engine, "alert:4:firing:sms:+8613800000000", "sms", "+8613800000000")
    sender = Sender(any_engine, notify_config(PANORAMA_SMS_URL=gateway.url("/sms/send"), PANORAMA_SMS_TOKEN="tok",
                                              PANORAMA_SMS_TEMPLATE="SMS_123"), threading.Event())
    drain(sender, any_engine, lambda ms: ms[0]["status"] == "sent")
    [req] = gateway.got
    assert req.path == "/sms/send" and req.headers["authorization"] == "Bearer tok"
    assert req.key == "alert:4:firing:sms:+8613800000000"
    assert req.json == {"template": "SMS_123", "to": "+8613800000000", "key": "alert:4:firing:sms:+8613800000000",
                        "params": {"level": "红色", "status": "发布", "title": "福田区 AQI 230",
                                   "time": "2026-12-06T20:00:00+08:00", "alert": 1}}


def test_a_channel_not_configured_here_leaves_its_messages_waiting(any_engine, hook):
    put(any_engine, "m", "email", "duty@example.org")
    put(any_engine, "w", "webhook", hook.url())
    sender = Sender(any_engine, notify_config(), threading.Event())  # no PANORAMA_SMTP_URL
    drain(sender, any_engine, lambda ms: any(m["status"] == "sent" for m in ms))
    by_key = {m["key"]: m for m in messages_of(any_engine)}
    assert (by_key["m"]["status"], by_key["m"]["attempts"]) == ("pending", 0)


# --- an alert's change, through the real ingest pipeline ----------------------------------------------------

@pytest.fixture
def notified(tmp_path, any_engine, hook, smtp, gateway):
    """A pipeline with the evaluator on each database, the pack's policies telling the real receivers."""
    city = pack(tmp_path, hook.url())
    ev = Evaluator(any_engine, city, TZ)
    sender = Sender(any_engine, notify_config(PANORAMA_SMTP_URL=smtp.url, PANORAMA_SMS_URL=gateway.url("/sms")),
                    threading.Event())
    return Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev), ev, sender, any_engine


def test_an_alert_fired_through_the_pipeline_tells_each_channel_once(notified, redis_client, hook, smtp, gateway):
    pipe, ev, sender, engine = notified
    now = now_ms()
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 190, now - MIN)])
    with engine.connect() as conn:
        [alert] = [dict(r) for r in conn.execute(select(alerts).where(alerts.c.rule == "aqi_high")).mappings()]
        # The yellow rule fired too; its policy tells orange and red only.
        assert conn.execute(select(alerts.c.status).where(alerts.c.rule == "aqi_mild")).scalar_one() == "firing"
    assert alert["status"] == "firing"
    # The same readings again, and ticks racing each other: the alert changes no more, nothing more is queued.
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(3, 195, now)])
    threads = [threading.Thread(target=ev.tick, args=(redis_client, now + 1000)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    prefix = f"alert:{alert['id']}:firing:"
    assert sorted(m["key"] for m in messages_of(engine)) == sorted(
        [prefix + f"webhook:{hook.url()}", prefix + "email:duty@example.org", prefix + "sms:+8613800000000"])
    drain(sender, engine, lambda ms: {m["status"] for m in ms} == {"sent"})
    assert [r.key for r in hook.got] == [prefix + f"webhook:{hook.url()}"]
    assert hook.got[0].json["alert"]["id"] == alert["id"] and hook.got[0].json["type"] == "alert_firing"
    assert [m["Message-ID"] for m in smtp.messages] == [message_id(prefix + "email:duty@example.org")]
    assert "红色" in smtp.messages[0]["Subject"] and "Red" not in smtp.messages[0]["Subject"]
    assert [r.json["to"] for r in gateway.got] == ["+8613800000000"]
    # Clean air resolves it; this policy tells the resolution too, once per channel.
    flush(pipe, redis_client, "environment", [aqi(4, 60, now + 2000)])
    drain(sender, engine, lambda ms: len(ms) == 6 and {m["status"] for m in ms} == {"sent"})
    assert [json.loads(r.body)["type"] for r in hook.got] == ["alert_firing", "alert_resolved"]
    assert len(smtp.messages) == 2 and len(gateway.got) == 2


def test_each_recipient_is_told_in_their_own_language(tmp_path, any_engine, redis_client, hook, smtp):
    city = pack(tmp_path, hook.url())
    (city.path / "notifications.yaml").write_text("""\
policies:
  - id: env
    statuses: [firing, resolved]
    to:
      - {channel: email, address: duty@example.org}
      - {channel: email, address: night-desk@example.org, lang: en}
      - {channel: webhook, address: "%s", lang: en}
  - id: urgent_only
    levels: [orange, red]
    to:
      - {channel: webhook, address: "%s"}
""" % (hook.url(), hook.url()), encoding="utf-8")
    city = load_city(str(city.path))
    assert [r.lang for r in city.notification_policies["env"].to] == ["zh", "en", "en"]
    ev = Evaluator(any_engine, city, TZ)
    pipe = Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev)
    sender = Sender(any_engine, notify_config(PANORAMA_SMTP_URL=smtp.url), threading.Event())
    now = now_ms()
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 190, now - MIN)])
    drain(sender, any_engine, lambda ms: len(ms) == 3 and {m["status"] for m in ms} == {"sent"})
    mails = {m["To"].addresses[0].addr_spec: m for m in smtp.messages}
    assert sorted(mails) == ["duty@example.org", "night-desk@example.org"]
    zh, en = mails["duty@example.org"], mails["night-desk@example.org"]
    assert zh["Subject"] == "【红色预警发布】福田区空气质量指数 190"
    assert en["Subject"] == "[Red alert firing] Futian: AQI 190"
    zh_body, en_body = zh.get_content(), en.get_content()
    assert "红色预警 · 预警发布" in zh_body and "福田区空气质量指数 190" in zh_body and "时间：" in zh_body
    assert not re.search(r"[A-Za-z]{4,}", zh_body.replace("aqi_high", "")), zh_body  # no English but the rule's id
    assert "Red alert · firing" in en_body and "Futian: AQI 190" in en_body and "At: " in en_body
    assert not re.search(r"[\u4e00-\u9fff]", en_body), en_body
    # the webhook's body is for machines: both titles, whatever its reader's language
    assert hook.got[0].json["alert"]["title_en"] == "Futian: AQI 190"


def test_a_silenced_alert_sends_nothing(notified, redis_client, hook):
    pipe, ev, sender, engine = notified
    now = now_ms()
    with engine.begin() as conn:
        store.create_silence(conn, rule=None, district="440304", zone=None, until_ms=now + 3_600_000,
                             reason="sensor calibration", actor="officer", now_ms=now)
    flush(pipe, redis_client, "environment", [aqi(1, 180, now - 11 * MIN), aqi(2, 190, now)])
    ev.tick(redis_client, now + 1000)
    with engine.connect() as conn:
        statuses = {r.rule: (r.status, r.suppressed) for r in conn.execute(select(alerts))}
    assert statuses["aqi_high"][0] == "pending" and statuses["aqi_high"][1].startswith("silence:")
    # And it clears while silenced: it never fired, so its resolution is not told either.
    flush(pipe, redis_client, "environment", [aqi(3, 60, now + 2000)])
    assert sender.run_once() == 0
    assert messages_of(engine) == [] and hook.got == []
