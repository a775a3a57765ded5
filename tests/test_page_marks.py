"""The page's marks on <html> (dashboard/web/page_marks.py, assets/page_marks.js): the stylesheets read them
instead of :has() anchored on html, body or the page, which restyled the whole page at every inserted node."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

from dash import html

from dashboard.core.clock import iso
from dashboard.storage import users as accounts
from dashboard.web.page_marks import MARKS, SHELL_EMPTY, marks_of, with_marks
from feeds.pipeline import now_ms
from tests.test_access_matrix import session

ROOT = Path(__file__).resolve().parents[1]


def html_class(page: str) -> list[str]:
    """The classes of the page's html element."""
    tag = re.search(r"<html\b[^>]*>", page).group(0)
    m = re.search(r'class="([^"]*)"', tag)
    return m.group(1).split() if m else []


def test_the_marks_follow_the_drawn_tree():
    top = html.Div([html.Div(html.Nav(className="shell-nav"), className="shell-nav-slot"),
                    html.Div(className="user-bar")], className="shell-top")
    empty_top = html.Div([html.Div(None, className="shell-nav-slot"), None], className="shell-top")
    assert marks_of(html.Div([top, html.Main(className="page page-wall")])) == ["is-wall"]
    assert marks_of(html.Div([top, html.Main([html.Div(className="replay-banner replay-desk"),
                                               html.Div(className="major-view major-desk")],
                                              className="page page-desk")])) == ["in-replay", "has-major"]
    assert marks_of(html.Div([empty_top, html.Main(className="page page-mobile")])) == ["is-mobile", SHELL_EMPTY]
    assert marks_of(html.Div([top, html.Main(className="page page-desk")])) == []
    assert with_marks('<!doctype html><html lang="en"><head>', ["is-wall"]) == (
        '<!doctype html><html class="is-wall" lang="en"><head>')


def test_the_browser_module_keeps_the_same_rules():
    script = ("const m = require(process.argv[1]);"
              "process.stdout.write(JSON.stringify({marks: m.MARKS, empty: m.SHELL_EMPTY}));")
    out = subprocess.run(["node", "-e", script, str(ROOT / "assets" / "page_marks.js")],
                         capture_output=True, text=True, check=True, timeout=30)
    got = json.loads(out.stdout)
    assert [tuple(m) for m in got["marks"]] == list(MARKS) and got["empty"] == SHELL_EMPTY


def test_each_page_is_served_with_its_marks_before_any_script_runs(make_app, redis_client):
    app = make_app()
    engine = app.server.extensions["panorama"].engine
    _, token = accounts.create_kiosk_token(engine, "hall")
    anon = app.server.test_client()
    assert anon.get(f"/wall?token={token}").status_code == 302  # the token becomes a session, then /wall
    assert html_class(anon.get("/wall").get_data(as_text=True)) == ["is-wall", SHELL_EMPTY]  # a kiosk: nobody
    assert SHELL_EMPTY in html_class(app.server.test_client().get("/login").get_data(as_text=True))  # no bar
    officer, _ = session(app, "officer")
    assert html_class(officer.get("/").get_data(as_text=True)) == []
    at = quote(iso(now_ms() - 3_600_000, "Asia/Shanghai"))
    assert html_class(officer.get(f"/?at={at}").get_data(as_text=True)) == ["in-replay"]
    commander, _ = session(app, "commander")
    assert html_class(commander.get("/m").get_data(as_text=True)) == ["is-mobile"]
