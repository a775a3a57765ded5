"""Scheduled briefings by mail on real PostgreSQL and a real SMTP server (aiosmtpd): queued in the outbox with the
ready briefing, one mail per recipient with the HTML report attached, the city's to the city's and a district
centre's to that district's recipients, never twice, waiting through an SMTP outage; recipients as city-pack data
refused by line when wrong."""

from __future__ import annotations

import re
import shutil
import threading
from datetime import timedelta

import pytest

from bench.procs import free_port
from dashboard.briefings import generate, periods
from dashboard.briefings.render import Rendered, build_html
from dashboard.briefings.generate import generate_now
from dashboard.briefings.mail import message_key
from dashboard.briefings.schedule import BriefingScheduler
from dashboard.core.city import PACKS_DIR, load_city
from dashboard.core.notifications import load_briefing_recipients
from dashboard.core.rules import RulesError
from dashboard.storage import briefings as store
from feeds.notify import Sender, message_id
from tests import test_briefings as tb
from tests.helpers import TEST_PASSWORD, make_user
from tests.receivers import SmtpReceiver
from tests.test_district_scope import district_user
from tests.test_notify import drain, messages_of, notify_config

LUOHU, FUTIAN = "440303", "440304"
FROM = "panorama@sz.example"


@pytest.fixture
def smtp():
    server = SmtpReceiver()
    yield server
    server.close()


@pytest.fixture
def bapp(make_app, redis_client):
    """Give an app without a briefing browser (the HTML report, no PDF)."""
    return make_app(**tb.NO_BROWSER)


def run_slot(app) -> tuple[dict, list[dict]]:
    """Run the scheduler's job just after tb.SLOT; return the city's briefing and the districts'."""
    scheduler = BriefingScheduler(app.server.extensions["panorama"], clock=tb.at(tb.SLOT + timedelta(minutes=1)))
    city = scheduler.run_due()
    return city, scheduler.district_runs[-1]


def sender(engine, url: str) -> Sender:
    return Sender(engine, notify_config(PANORAMA_SMTP_URL=url, PANORAMA_SMTP_FROM=FROM), threading.Event())


def briefing_mail(engine) -> list[dict]:
    return messages_of(engine, "briefing:")


def all_sent(rows: list[dict]) -> bool:
    return bool(rows) and all(r["status"] == "sent" for r in rows if r["key"].startswith("briefing:"))


def test_a_slot_mails_the_city_s_and_each_district_s_briefing_to_its_recipients_once(bapp, smtp):
    svc = bapp.server.extensions["panorama"]
    tb.seed(bapp)
    lh_client, _ = district_user(bapp, "lh-1", district=LUOHU)
    make_user(bapp, "ft-1", district=FUTIAN)
    make_user(bapp, "root", "admin")
    city, districts = run_slot(bapp)
    by_district = {b["district"]: b for b in districts}
    assert set(by_district) == {LUOHU, FUTIAN}
    recipients = svc.city.briefing_recipients
    expected = {a: city for a in recipients.of(None)} | {
        a: by_district[d] for d in (LUOHU, FUTIAN) for a in recipients.of(d)}
    assert len(recipients.of(None)) == 2 and len(recipients.of(FUTIAN)) == 2  # the shipped example's lists

    s = sender(svc.engine, smtp.url)
    drain(s, svc.engine, all_sent)
    assert sorted(rcpt for _, (rcpt,) in smtp.box.envelopes) == sorted(expected)
    for mail in smtp.messages:
        (address,) = [a.addr_spec for a in mail["To"].addresses]
        b = expected[address]
        key = message_key(b["id"], address)
        assert mail["Message-ID"] == message_id(key) and mail["X-Panorama-Idempotency-Key"] == key
        whose = ("城市运行简报", "City Operations Briefing") if b["district"] is None else \
            {LUOHU: ("罗湖区运行简报", "Luohu Operations Briefing"),
             FUTIAN: ("福田区运行简报", "Futian Operations Briefing")}[b["district"]]
        # in the city's language (the shipped recipients name none): Chinese alone
        assert whose[0] in mail["Subject"] and whose[1] not in mail["Subject"]
        assert "2026-11-19 18:00" in mail["Subject"] and "2026-11-20 08:00" in mail["Subject"]
        assert mail.get_content_type() == "multipart/mixed"
        body = mail.get_body(("plain",)).get_content()
        assert "事件总数" in body and "联动处置绩效" in body and "Events" not in body and "Top incidents" not in body
        [report] = list(mail.iter_attachments())  # no browser here: no PDF, the HTML alone
        assert report.get_content_type() == "text/html"
        assert report.get_filename() == store.download_name(b["id"], b["period_end_ms"], "html", tb.TZ)
        assert report.get_content() == store.get(svc.engine, b["id"], "html")["html"]
    # the city's numbers in the city's mail: the briefing's own headline, its top incident
    city_mail = next(m for m in smtp.messages if m["To"].addresses[0].addr_spec == recipients.of(None)[0])
    city_body = city_mail.get_body(("plain",)).get_content()
    top = city["headline"]
    assert f"事件总数：{top['events']}（" in city_body
    assert f"超时未处置：{top['deadlines_missed']}" in city_body and "1. [" in city_body

    # a second sender's round, and the slot run again: nothing sent twice, nothing queued twice
    n = len(smtp.messages)
    assert sender(svc.engine, smtp.url).run_once() == 0
    assert run_slot(bapp) == (None, [])
    assert len(briefing_mail(svc.engine)) == len(expected) and len(smtp.messages) == n

    # the delivery log shows them; a district centre's user sees their district's only
    admin = bapp.server.test_client()
    assert admin.post("/api/session", json={"username": "root", "password": TEST_PASSWORD}).status_code == 200
    keys = {n["key"] for n in admin.get("/api/notifications").get_json()["notifications"]}
    assert {message_key(b["id"], a) for a, b in expected.items()} <= keys
    mine = {n["key"] for n in lh_client.get("/api/notifications").get_json()["notifications"]}
    assert mine == {message_key(by_district[LUOHU]["id"], a) for a in recipients.of(LUOHU)}


def test_briefing_mail_waits_through_an_smtp_outage_and_goes_once_it_is_back(bapp, smtp):
    svc = bapp.server.extensions["panorama"]
    city, _ = run_slot(bapp)
    down = sender(svc.engine, f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    assert down.run_once() == len(svc.city.briefing_recipients.of(None))
    rows = briefing_mail(svc.engine)
    assert {r["status"] for r in rows} == {"pending"} and all(r["attempts"] == 1 and r["last_error"] for r in rows)
    assert smtp.messages == []
    # a new sender (the worker restarted) with the server back: each waiting message goes, once
    drain(sender(svc.engine, smtp.url), svc.engine, all_sent)
    assert sorted(a.addr_spec for m in smtp.messages for a in m["To"].addresses) == \
        sorted(svc.city.briefing_recipients.of(None))
    assert all(len(list(m.iter_attachments())) == 1 for m in smtp.messages)


def test_the_pdf_goes_along_when_the_briefing_has_one(bapp, smtp, monkeypatch):
    svc = bapp.server.extensions["panorama"]
    pdf = b"%PDF-1.7\n% a stand-in: tests/test_briefings_render.py prints real ones with Chromium\n%%EOF\n"

    def render_with_pdf(data, city, browser, tz):
        return Rendered(html=build_html(data, city, {}), pdf=pdf, images=False)

    monkeypatch.setattr(generate, "render", render_with_pdf)
    city, _ = run_slot(bapp)
    drain(sender(svc.engine, smtp.url), svc.engine, all_sent)
    for mail in smtp.messages:
        html, attached = list(mail.iter_attachments())
        assert html.get_content_type() == "text/html" and attached.get_content_type() == "application/pdf"
        assert attached.get_filename() == store.download_name(city["id"], city["period_end_ms"], "pdf", tb.TZ)
        assert attached.get_content() == pdf
        assert attached.get_filename() in mail.get_body(("plain",)).get_content()


def test_a_briefing_made_on_request_is_not_mailed(bapp):
    svc = bapp.server.extensions["panorama"]
    made = generate_now(svc, "olga", periods.to_ms(tb.SLOT))
    assert made["status"] == "ready" and briefing_mail(svc.engine) == []


def test_briefing_recipients_are_refused_by_line_when_wrong(tmp_path):
    path = tmp_path / "notifications.yaml"
    path.write_text("""\
policies:
  - id: env
    to:
      - {channel: email, address: duty@example.org}
briefings:
  city: [mayor@example.org, not-a-mailbox]
  districts:
    440304: [futian@example.org, futian@example.org]
    "999999": [nobody@example.org]
    440303:
      - luohu@example.org
      - luohu
  weekly: [x@example.org]
""", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_briefing_recipients(path, ["440303", "440304"])
    assert str(err.value).splitlines() == [
        "notifications.yaml line 6: email address 'not-a-mailbox' is not a mailbox such as duty@example.org",
        "notifications.yaml line 12: email address 'luohu' is not a mailbox such as duty@example.org",
        "notifications.yaml line 13: unknown key 'weekly' (expected one of city, districts)"]
    path.write_text(path.read_text().replace("not-a-mailbox", "ops@example.org").replace(
        "  weekly: [x@example.org]\n", "").replace("- luohu\n", "- luohu-chief@example.org\n"))
    with pytest.raises(RulesError) as err:
        load_briefing_recipients(path, ["440303", "440304"])
    assert str(err.value).splitlines() == [
        "notifications.yaml line 8: futian@example.org is listed twice in briefings.districts.440304",
        "notifications.yaml line 9: briefings: unknown district '999999' (one of 440303, 440304)"]
    # an unquoted code (a YAML number) is the same code
    path.write_text(path.read_text().replace("futian@example.org, futian", "futian@example.org, chief").replace(
        '    "999999": [nobody@example.org]\n', ""))
    loaded = load_briefing_recipients(path, ["440303", "440304"])
    assert loaded.of("440304") == ("futian@example.org", "chief@example.org") and loaded.of("440305") == ()


def test_a_pack_with_wrong_briefing_recipients_does_not_start(tmp_path, make_app):
    pack = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", pack)
    path = pack / "notifications.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("luohu-centre@example.invalid", "luohu-centre"),
                    encoding="utf-8")
    with pytest.raises(RulesError, match=r"notifications.yaml line \d+: email address 'luohu-centre' is not"):
        load_city(str(pack)).briefing_recipients
    with pytest.raises(RulesError):
        make_app(PANORAMA_CITY=str(pack))


BRIEFINGS_ONLY = """\
# no alert tells anyone yet: only who gets the briefings, each in their language
briefings:
  city:
    - mayor@example.org
    - {address: liaison-hk@example.org, lang: en}
  districts:
    "440304":
      - {address: futian@example.org, lang: zh}
"""


def briefings_only_pack(tmp_path, text: str = BRIEFINGS_ONLY, city_language: str | None = None) -> str:
    """Return a copy of the Shenzhen pack whose notifications.yaml is ``text`` (and city.yaml's ``language``)."""
    pack = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "shenzhen", pack)
    (pack / "notifications.yaml").write_text(text, encoding="utf-8")
    if city_language is not None:
        manifest = pack / "city.yaml"
        manifest.write_text(manifest.read_text(encoding="utf-8").replace(
            "\nlanguage: zh\n", f"\nlanguage: {city_language}\n"), encoding="utf-8")
        assert f"language: {city_language}" in manifest.read_text(encoding="utf-8")
    return str(pack)


def report_words(html: str) -> str:
    """Return the words a reader reads in an HTML report: its text, without its styles and scripts."""
    from html.parser import HTMLParser

    class Words(HTMLParser):
        def __init__(self):
            super().__init__()
            self.skip, self.words = 0, []

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("style", "script")

        def handle_endtag(self, tag):
            self.skip -= tag in ("style", "script")

        def handle_data(self, data):
            if not self.skip and data.strip():
                self.words.append(data.strip())

    parser = Words()
    parser.feed(html)
    return " ".join(parser.words)


def test_a_pack_with_only_briefing_recipients_starts_and_mails_each_reader_in_their_language(
        tmp_path, make_app, redis_client, smtp, monkeypatch):
    app = make_app(PANORAMA_CITY=briefings_only_pack(tmp_path), **tb.NO_BROWSER)
    svc = app.server.extensions["panorama"]
    real_render, rendered = generate.render, []

    def counted(data, city, browser, tz):
        rendered.append((data["id"], data["lang"]))
        return real_render(data, city, browser, tz)

    monkeypatch.setattr(generate, "render", counted)
    assert svc.city.notification_policies == {}  # no alert policy: the rules' notify names wait for them
    assert len(svc.city.alert_rules.rules) > 0
    tb.seed(app)
    city, _ = run_slot(app)
    drain(sender(svc.engine, smtp.url), svc.engine, all_sent)
    mails = {m["To"].addresses[0].addr_spec: m for m in smtp.messages}
    assert sorted(mails) == ["liaison-hk@example.org", "mayor@example.org"]
    zh, en = mails["mayor@example.org"], mails["liaison-hk@example.org"]
    cjk = re.compile(r"[\u4e00-\u9fff]")
    # the city's language (Chinese) for the mailbox that names none, English for the one that asks for it
    assert zh["Subject"] == "【深圳市·城市运行简报】2026-11-19 18:00 至 2026-11-20 08:00"
    assert en["Subject"] == "[Shenzhen · City Operations Briefing] 2026-11-19 18:00 to 2026-11-20 08:00"
    zh_body, en_body = (m.get_body(("plain",)).get_content() for m in (zh, en))
    top = city["headline"]
    assert f"事件总数：{top['events']}（" in zh_body and "联动处置绩效" in zh_body and "Events" not in zh_body
    assert f"Events: {top['events']} (" in en_body and "Top incidents" in en_body
    # no Chinese in the English mail but the incidents' own titles (what people wrote: 重点事件 n)
    assert "重点事件" in en_body and not cjk.search(re.sub(r"重点事件 \d", "", en_body)), en_body
    assert "Events" not in zh_body and "Top incidents" not in zh_body
    # the report attached is in its reader's language too: made once per language in use (Chinese for the mayor,
    # English for the liaison), not once per reader
    assert sorted(rendered) == [(city["id"], "en"), (city["id"], "zh")]
    reports = {}
    for lang, mail in (("zh", zh), ("en", en)):
        [report] = list(mail.iter_attachments())
        reports[lang] = report.get_content()
        assert reports[lang] == store.rendition(svc.engine, city["id"], lang)["html"]
        assert report.get_filename() in mail.get_body(("plain",)).get_content()
    assert reports["zh"] == store.get(svc.engine, city["id"], "html")["html"]  # the briefing's own: the city's
    zh_words, en_words = report_words(reports["zh"]), report_words(reports["en"])
    assert '<html lang="en"' in reports["en"] and '<html lang="zh' in reports["zh"]
    assert "城市运行简报" in zh_words and "Top incidents" not in zh_words and "Events" not in zh_words
    assert "City Operations Briefing" in en_words, en_words[:500]
    # no Chinese in the English report but the incidents' own titles (what people wrote: 重点事件 n)
    assert not cjk.search(re.sub(r"重点事件 \d", "", en_words)), cjk.findall(re.sub(r"重点事件 \d", "", en_words))


def test_the_city_language_is_the_default_of_whoever_names_none(tmp_path):
    city = load_city(briefings_only_pack(tmp_path, city_language="en"))
    readers = city.briefing_recipients.readers(None)
    assert [(r.address, r.lang) for r in readers] == [("mayor@example.org", "en"), ("liaison-hk@example.org", "en")]
    assert [(r.address, r.lang) for r in city.briefing_recipients.readers(FUTIAN)] == [("futian@example.org", "zh")]
    # and the shipped pack's city is Chinese
    assert {r.lang for r in load_city("shenzhen").briefing_recipients.readers(None)} == {"zh"}


def test_a_briefings_only_file_is_refused_by_line_when_wrong(tmp_path):
    path = tmp_path / "notifications.yaml"
    path.write_text("""\
briefings:
  city:
    - {address: mayor@example.org, lang: fr}
    - {address: ops@example.org, language: en}
    - {adress: typo@example.org}
  districts:
    "440304": [futian@example.org, {address: futian@example.org, lang: en}]
""", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_briefing_recipients(path, ["440303", "440304"])
    assert str(err.value).splitlines() == [
        "notifications.yaml line 3: lang: 'fr' is not one of 'zh' or 'en'",
        "notifications.yaml line 4: unknown key 'language' (expected one of address, lang)",
        "notifications.yaml line 5: missing key 'address'",
        "notifications.yaml line 5: unknown key 'adress' (expected one of address, lang)"]
    # a policies key written with no policy under it is a list someone forgot, not "none"
    path.write_text("policies:\nbriefings:\n  city: [mayor@example.org]\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"notifications.yaml line 1: policies: "):
        load_briefing_recipients(path, ["440303", "440304"])
    path.write_text("policies: []\nbriefings:\n  city: [mayor@example.org]\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"notifications.yaml line 1: policies: "):
        load_briefing_recipients(path, ["440303", "440304"])
    # fixed: loads, the duplicate said by line
    path.write_text("""\
briefings:
  city:
    - {address: mayor@example.org, lang: en}
  districts:
    "440304": [futian@example.org, {address: futian@example.org, lang: en}]
""", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_briefing_recipients(path, ["440303", "440304"])
    assert str(err.value).splitlines() == [
        "notifications.yaml line 5: futian@example.org is listed twice in briefings.districts.440304"]


def test_each_reader_s_pdf_is_the_one_printed_in_their_language(tmp_path, make_app, redis_client, smtp, monkeypatch):
    app = make_app(PANORAMA_CITY=briefings_only_pack(tmp_path), **tb.NO_BROWSER)
    svc = app.server.extensions["panorama"]

    def render_with_pdf(data, city, browser, tz):  # a stand-in PDF that says which language it was printed in
        return Rendered(html=build_html(data, city, {}), pdf=f"%PDF-1.7\n% {data['lang']}\n%%EOF\n".encode(),
                        images=False)

    monkeypatch.setattr(generate, "render", render_with_pdf)
    tb.seed(app)
    city, _ = run_slot(app)
    drain(sender(svc.engine, smtp.url), svc.engine, all_sent)
    mails = {m["To"].addresses[0].addr_spec: m for m in smtp.messages}
    for address, lang in (("mayor@example.org", "zh"), ("liaison-hk@example.org", "en")):
        html, pdf = list(mails[address].iter_attachments())
        assert pdf.get_content() == f"%PDF-1.7\n% {lang}\n%%EOF\n".encode()
        assert html.get_content() == store.rendition(svc.engine, city["id"], lang)["html"]
        assert pdf.get_filename() == store.download_name(city["id"], city["period_end_ms"], "pdf", tb.TZ)
