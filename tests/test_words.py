"""Every word in the reader's language: audit codes, statuses, references and streets, never raw codes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from dash import html
from sqlalchemy import insert

from dashboard.core import i18n
from dashboard.core.city import load_city
from dashboard.dispatch import audit, board, desk
from dashboard.storage.models import task_events
from layouts import dispatch as view
from layouts import mobile as mobile_view

ROOT = Path(__file__).resolve().parent.parent
CITY = load_city("shenzhen")
LANGS = ("zh", "en")
STATUSES = desk.STATUSES
STATES = tuple(board.TRANSITIONS)
ASCII_WORD = re.compile(r"[A-Za-z]{2,}")


def _strings(node: ast.AST) -> set[str] | None:
    """Return the strings an expression can be (a literal, an f-string over literal choices), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        a, b = _strings(node.body), _strings(node.orelse)
        return a | b if a is not None and b is not None else None
    if isinstance(node, ast.JoinedStr):
        out = {""}
        for part in node.values:
            choices = _strings(part.value if isinstance(part, ast.FormattedValue) else part)
            if choices is None:
                return None
            out = {a + b for a in out for b in choices}
        return out
    return None


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


# The functions that write an audit row's code, and the position of their ``code`` argument.
WRITERS = {"_event": 8, "_settle": 5, "dispatch": 8, "close_incident": 5}


def written_codes() -> set[str]:
    """Return every audit code the code base can write, read from its writers' source.

    A writer's code is a literal, a choice of literals, ``CODES[...]`` (commander's table), or ``code`` passed
    through from the caller; anything else fails here, so no code can be written that this scan does not see.
    """
    codes: set[str] = set()
    for path in sorted((ROOT / "dashboard").rglob("*.py")) + sorted((ROOT / "callbacks").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CODES" for t in node.targets):
                codes |= {v.value for v in node.value.values}
            if not isinstance(node, ast.Call):
                continue
            args = {}
            if _name(node.func) in WRITERS and len(node.args) > WRITERS[_name(node.func)]:
                args["code"] = node.args[WRITERS[_name(node.func)]]
            keywords = {k.arg: k.value for k in node.keywords}
            # a writer's ``code=``, or an audit row written by hand: ``insert(task_events).values(action=..., code=...)``
            if "code" in keywords and (_name(node.func) in WRITERS or "action" in keywords):
                args["code"] = keywords["code"]
            if "code" not in args:
                continue
            arg = args["code"]
            if isinstance(arg, ast.BoolOp):  # ``code or "coordination_dispatched"``
                parts = arg.values
            else:
                parts = [arg]
            for part in parts:
                if isinstance(part, ast.Name) and part.id == "code":
                    continue  # passed through: its callers are scanned
                if isinstance(part, ast.Subscript) and getattr(part.value, "id", "") == "CODES":
                    continue
                if isinstance(part, ast.Constant) and part.value is None:
                    continue
                choices = _strings(part)
                assert choices is not None, f"{path.name}:{node.lineno} writes an audit code this scan cannot read"
                codes |= choices
    return codes


def test_the_scan_finds_the_writers():
    codes = written_codes()
    # one of each way of writing one: literal, f-string choice, commander's table, escalation's
    assert {"task_moved", "overdue_ack", "overdue_resolve", "cmd_seen", "cmd_approved", "coordination",
            "incident_escalated", "resolved_on_behalf", "coordination_dispatched"} <= codes


@pytest.mark.parametrize("lang", LANGS)
def test_every_audit_code_the_code_base_writes_or_once_wrote_is_said_in_both_languages(lang):
    codes = written_codes() | set(audit.LEGACY_NOTES.values()) | {"task_moved"}
    names = view.department_names(CITY, lang)
    for code in sorted(codes):
        assert code in i18n._AUDIT, f"audit code {code!r} has no text"
        zh, en = i18n._AUDIT[code]
        assert zh.strip() and en.strip(), code
        for to in STATES:
            said = i18n.audit_text(code, {"dep": "district_440305", "to": to}, lang, names)
            assert "{" not in said and "district_440305" not in said and f"_{to}" not in said, (code, said)
            if lang == "zh":
                assert not ASCII_WORD.search(said), f"English in the Chinese text of {code}: {said}"
            else:
                assert not re.search(r"[\u4e00-\u9fff]", said), f"Chinese in the English text of {code}: {said}"


@pytest.mark.parametrize("lang", LANGS)
def test_no_status_or_state_is_shown_as_its_code(lang):
    for status in STATUSES:
        label = i18n.state_label(status, lang)
        assert label and label != status and "_" not in label, (status, label)
    for state in STATES:
        label = i18n.state_label(state, lang, task=True)
        assert label and label != state and "_" not in label, (state, label)
        if lang == "zh":
            assert not ASCII_WORD.search(label)


def _texts(node) -> list[str]:
    """Return every text a component tree puts on screen (children and the ``title`` tooltip)."""
    if node is None or isinstance(node, (bool, int, float)):
        return [str(node)] if isinstance(node, (int, float)) and not isinstance(node, bool) else []
    if isinstance(node, str):
        return [node]
    if isinstance(node, (list, tuple)):
        return [s for n in node for s in _texts(n)]
    out = [node.title] if isinstance(getattr(node, "title", None), str) else []
    return out + _texts(getattr(node, "children", None))


def _raw(text: str, lang: str) -> list[str]:
    """Return the stored values a text shows as they are (a status, a state, a department code)."""
    words = set(re.findall(r"[a-z][a-z0-9_]+", text))
    codes = set(STATUSES) | set(STATES) | {d["code"] for d in CITY.departments}
    found = sorted(w for w in words if w in codes and (lang == "zh" or "_" in w or w in codes - {"open"}))
    if lang == "en":  # English words may match a code ("resolved"): only those written as codes count
        found = [w for w in found if "_" in w or w not in {"dispatched", "resolved", "closed", "acknowledged",
                                                            "rejected", "police", "fire", "emergency", "water",
                                                            "health", "transport", "ecology", "meteorology"}]
    return found


@pytest.mark.parametrize("lang", LANGS)
def test_queue_detail_timeline_and_board_show_every_status_in_words(lang):
    tz = "Asia/Shanghai"
    rows = [{"id": i, "severity": 3, "title": f"事件 {i}", "kind": "fire", "district": "440305", "opened_ms": 0,
             "reports": 1, "status": s, "escalated_ms": None} for i, s in enumerate(STATUSES)]
    shown = _texts(view.queue_items(rows, CITY, lang, tz, None))
    shown += _texts(mobile_view.incident_items(rows, CITY, lang, tz))
    history = [{"at": "2026-12-05T10:00:00+08:00", "actor": board.SYSTEM_ACTOR, "action": a, "task_id": tid,
                "from": f, "to": to, "note": None, "code": code, "params": params}
               for a, tid, f, to, code, params in [
                   ("dispatch", 1, None, "dispatched", None, None),
                   ("transition", 1, "dispatched", "acknowledged", None, None),
                   ("escalate", 1, "dispatched", "dispatched", "overdue_ack", None),
                   ("escalate", None, "open", "open", "incident_escalated", {"dep": "emergency"}),
                   ("status", None, "dispatched", "in_progress", "task_moved", {"dep": "district_440305",
                                                                                 "to": "on_scene"}),
                   ("transition", 1, "on_scene", "resolved", "resolved_on_behalf", {"dep": "district_440305"}),
                   ("close", 1, "resolved", "closed", None, None), ("reroute", 1, "rejected", "rejected", None, None),
                   ("cmd_ack", None, "resolved", "resolved", "cmd_seen", None)]]
    doc = {"incident": {"id": 1, "title": "火情", "kind": "fire", "severity": 3, "status": "in_progress",
                        "reports": 1, "opened_at": "2026-12-05T10:00:00+08:00", "district": "440305",
                        "street": "南头街道", "lat": None, "lon": None, "escalated": True},
           "reports": [], "tasks": [{"id": 1, "department": "district_440305", "state": "on_scene"}],
           "history": history, "suggestion": {"rule": "fire", "departments": ["fire", "district_440305"]}}
    shown += _texts(view.detail_view(doc, CITY, lang))
    for state in STATES:
        task = {"id": 1, "incident_id": 1, "department": "district_440305", "state": state, "version": 1,
                "ack_due_ms": 0, "resolve_due_ms": 0, "escalated": True, "coordination": True}
        shown += _texts(view.task_card(task, doc["incident"], lang, 0, True, True))
    text = " | ".join(shown)
    assert _raw(text, lang) == [], text
    assert "system" not in text if lang == "zh" else True
    if lang == "en":
        assert "Nantou" in text and "南头" not in text
    else:
        assert "南头街道" in text


def test_legacy_notes_are_read_as_codes():
    assert audit.legacy(None, None, "not acknowledged by the deadline") == ("overdue_ack", None, None)
    assert audit.legacy(None, None, "not resolved by the deadline") == ("overdue_resolve", None, None)
    assert audit.legacy(None, None, "指挥长升级 / escalated by the commander") == ("cmd_escalated", None, None)
    assert audit.legacy(None, None, "指挥长批准 / approved by the commander") == ("cmd_approved", None, None)
    assert audit.legacy(None, None, "指挥长已知悉 / seen by the commander") == ("cmd_seen", None, None)
    assert audit.legacy(None, None, "district_440305 resolved") == (
        "task_moved", {"dep": "district_440305", "to": "resolved"}, None)
    assert audit.legacy(None, None, "fire rejected: 不归我们管\n另派") == (
        "task_moved", {"dep": "fire", "to": "rejected"}, "不归我们管\n另派")
    # a person's own words stay theirs; a row with a code is read as written
    assert audit.legacy(None, None, "two engines") == (None, None, "two engines")
    assert audit.legacy("cmd_seen", None, "district_440305 resolved") == ("cmd_seen", None, "district_440305 resolved")


def test_legacy_rows_in_the_database_are_read_as_codes_and_said_in_words(make_app, redis_client):
    from tests.helpers import make_event
    from tests.test_api import ingest_now

    app = make_app()
    svc = app.server.extensions["panorama"]
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=svc.clock(), title="火情 南头")]})
    with svc.engine.begin() as conn:
        inc = desk.queue(conn)[0]
        change = board.dispatch(conn, inc["id"], ["district_440305"], "olga", None, svc.clock(), svc.city.rules,
                                svc.city)
        task = change.task
        old = [("escalate", task["id"], "dispatched", "not acknowledged by the deadline"),
               ("status", None, "in_progress", "district_440305 resolved"),
               ("dispatch", task["id"], "dispatched", "指挥长升级 / escalated by the commander")]
        conn.execute(insert(task_events), [
            {"incident_id": inc["id"], "task_id": tid, "action": a, "actor": "system", "at_ms": svc.clock(),
             "from_state": s, "to_state": s, "note": note, "code": None, "params": None} for a, tid, s, note in old])
        doc = desk.detail(conn, svc, inc["id"], svc.clock())
    legacy = doc["history"][-3:]
    assert [(h["code"], h["params"], h["note"]) for h in legacy] == [
        ("overdue_ack", None, None), ("task_moved", {"dep": "district_440305", "to": "resolved"}, None),
        ("cmd_escalated", None, None)]
    zh = " ".join(_texts(view.detail_view(doc, svc.city, "zh")))
    en = " ".join(_texts(view.detail_view(doc, svc.city, "en")))
    assert "未按时签收" in zh and "南山区人民政府：已办结" in zh and "指挥长升级" in zh
    assert not ASCII_WORD.search(zh.replace("S3", "").replace("olga", "")), zh  # a user name is a proper noun
    assert "not acknowledged by the deadline" in en and "Nanshan District Government: Resolved" in en
    assert "district_440305" not in en and "指挥长" not in en


def test_every_street_of_the_pack_has_a_pinyin_name_and_is_named_in_english():
    for d in CITY.districts:
        for s in d.streets:
            assert re.fullmatch(r"[A-Z][A-Za-z' -]+", s.name_en), s
            assert CITY.street_name(d.code, s.name, "en") == s.name_en
            assert CITY.street_name(d.code, s.name.removesuffix("街道"), "en") == s.name_en
            assert CITY.street_name(d.code, s.name_en, "zh") == s.name
    assert CITY.street_name("440305", "未知路", "en") == "未知路"  # unknown: as it came
    assert CITY.street_name("440305", None, "en") == ""


def test_a_pack_street_without_an_english_name_is_refused(tmp_path):
    import shutil

    pack = tmp_path / "city"
    shutil.copytree(CITY.path, pack)
    manifest = pack / "city.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(
        "{name: 南头街道, name_en: Nantou,", "{name: 南头街道,"), encoding="utf-8")
    with pytest.raises(ValueError, match="南头街道.*pinyin"):
        load_city(str(pack))


def test_the_ticker_names_streets_in_the_page_language():
    from layouts.common import live_config, ticker_items

    events = [{"id": "1", "domain": "traffic", "ts": 0, "severity": 2, "district": "440305", "street": "南头街道",
               "kind": "congestion", "title": "拥堵"}]
    assert "Nantou" in _texts(ticker_items(events, CITY, "en", "Asia/Shanghai"))
    assert "南头街道" in _texts(ticker_items(events, CITY, "zh", "Asia/Shanghai"))
    settings = {"tz": "Asia/Shanghai", "ws_port": 1, "stale_after": {}}
    assert live_config(CITY, "en", "panorama", settings)["streets"]["440305"]["南头街道"] == "Nantou"


def test_confirmations_name_the_incident_by_its_title_as_text():
    said = view.tx("moved_ok", "zh", title="<b>火情</b>", dep="南山区人民政府", to=i18n.state_label("acknowledged", "zh",
                                                                                               task=True))
    assert said == "<b>火情</b>：南山区人民政府 已签收"  # a string child: React writes it as text
    assert view.incident_name({"title": None, "kind": "fire"}, "en") == "fire"
    assert isinstance(html.Div(said).children, str)


@pytest.mark.parametrize("lang", LANGS)
def test_a_refusal_is_said_in_words_never_as_the_domain_message(lang):
    from dashboard.core.errors import Forbidden

    refusals = [board.InvalidTransition("task 5 cannot go from dispatched to closed"),
                board.VersionConflict("task 5 is at version 3, not 2: reload it"), board.NotFound("no task 5"),
                board.DispatchError("unknown department 'x'"), Forbidden("olga may not move tasks of that department"),
                board.DispatchError("a rejection needs its reason in the note", key="reject_needs_note"),
                board.InvalidTransition("district_440305 has people on the system", key="staffed")]
    said = [i18n.error_text(err, lang) for err in refusals]
    assert len(set(said)) == len(said)
    for text in said:
        assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b|task \d|dispatched", text), text
        if lang == "zh":
            assert not ASCII_WORD.search(text), text
    assert str(refusals[0]) == "task 5 cannot go from dispatched to closed"  # the API's message stays as it was


def test_every_refusal_key_raised_has_words():
    keys = set()
    for path in (ROOT / "dashboard").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node.func)[:1].isupper():  # an exception raised with a key
                for k in node.keywords:
                    if k.arg == "key":
                        keys |= _strings(k.value) or {"<not a literal>"}
    assert {"reject_needs_note", "staffed", "escalated_already", "already_dispatched"} <= keys
    assert keys <= set(i18n._ERRORS), keys - set(i18n._ERRORS)


# Names that read the same in every language on /open: standards, formats, headers and the API's parameters.
OPEN_NAMES = {"CC", "BY", "RFC", "JSON", "CSV", "GeoJSON", "OpenAPI", "X-API-Key", "Retry-After", "from", "to"}


def _words_outside_code(node) -> list[str]:
    """Return the texts of a component tree, leaving out code (field names, paths, commands)."""
    if isinstance(node, html.Code) or getattr(node, "id", None) == "lang-toggle":  # its label is the other language
        return []
    if isinstance(node, (list, tuple)):
        return [s for n in node for s in _words_outside_code(n)]
    if isinstance(node, str):
        return [node]
    if node is None or isinstance(node, (bool, int, float)):
        return []
    return _words_outside_code(getattr(node, "children", None))


@pytest.mark.parametrize("lang", LANGS)
def test_the_open_data_page_is_all_words_of_the_readers_language(lang):
    from layouts.open_data import open_layout

    page = open_layout(lang, CITY.name if lang == "zh" else CITY.name_en, "Asia/Shanghai", 60, 60, 31, 5)
    text = "\n".join(_words_outside_code(page))
    assert "{" not in text and len(text) > 500
    codes = [c for c in _texts(page) if c not in text]
    assert any("apikeys create" in c for c in codes) and any("/api/open/counts" in c for c in codes)
    if lang == "zh":
        stray = set(re.findall(r"[A-Za-z][A-Za-z-]+", text)) - OPEN_NAMES
        assert not stray, f"English in the Chinese page: {sorted(stray)}"
        assert "每分钟最多 60 次" in text and "少于 5 起" in text and "31 天" in text
    else:
        assert not re.search(r"[\u4e00-\u9fff]", text), "Chinese in the English page"
        assert "60 requests a minute" in text and "fewer than 5 events" in text and "31 days" in text


def test_english_counts_agree_with_their_number_everywhere_a_text_is_said():
    """"{n} report(s)" is said "1 report" and "2 reports" by the shared texts, a page's own texts and the audit
    trail alike (the English queue read "1 report(s)", which also broke between the number and its noun)."""
    from dashboard.core.i18n import audit_text, counted, t
    from layouts.dispatch import tx

    assert [t("reports", "en", n=n) for n in (1, 2, 1200)] == ["1 report", "2 reports", "1200 reports"]
    assert t("units_sent", "en", n=1) == "1 unit sent"
    assert tx("dispatched_ok", "en", title="Fire", n=1) == "Dispatched: Fire (1 department)"
    assert tx("dispatched_ok", "en", title="Fire", n=3) == "Dispatched: Fire (3 departments)"
    assert audit_text("merged_from", {"incident": 7, "n": 1}, "en") == "merged from #7 (1 report)"
    assert audit_text("split_to", {"incident": 8, "n": 11}, "en") == "11 reports split off into #8"
    assert counted("1,000 report(s) and 21 unit(s); an http(s) URL") == "1,000 reports and 21 units; an http(s) URL"
    assert t("reports", "zh", n=1) == "1 次报告"
