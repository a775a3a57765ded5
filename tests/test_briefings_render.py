"""A briefing drawn with the system Chromium: images, a self-contained HTML report and its PDF.

The briefing is made once for the module (a browser start, two images and a print take seconds);
each test reads a part of it.
"""

from __future__ import annotations

import base64
import io
import re
import struct
from html.parser import HTMLParser

import pytest
from sqlalchemy import text

from dashboard.briefings import periods
from dashboard.storage import briefings as store
from dashboard.briefings.generate import generate_slot
from dashboard.briefings.render import MAP_SIZE, SCALE, find_browser, render
from tests.helpers import wait_for
from tests.test_briefings import CRON, SLOT, TZ, seed

pytestmark = pytest.mark.skipif(find_browser(None) is None, reason="needs Chromium (tests/services.sh installs it)")
# Where a document can point at something to load.
URL_ATTRS = {"src", "href", "srcset", "action", "poster", "data", "xlink:href", "background", "formaction"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)|@import\s+['\"]?([^'\";\s]+)", re.I)


@pytest.fixture(scope="module")
def made(pg_database, redis_url, tmp_path_factory):
    """Make the seeded period's scheduled briefing with Chromium; give its row with data, HTML and PDF."""
    import redis

    from dashboard import create_app
    from dashboard.storage.db import make_engine
    from dashboard.storage.models import metadata

    engine = make_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    app = create_app({"DATABASE_URL": pg_database, "REDIS_URL": redis_url, "SECRET_KEY": "test",
                      "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")), "PANORAMA_SIMULATE": False})
    svc = app.server.extensions["panorama"]
    try:
        seed(app)
        row = generate_slot(svc, periods.make_trigger(CRON, TZ), SLOT, periods.to_ms(SLOT) + 1000)
        yield store.get(svc.engine, row["id"], "data", "html", "pdf")
    finally:
        svc.close()


class Links(HTMLParser):
    """Collect every URL a document could load: attributes, inline styles and style sheets."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in URL_ATTRS and value is not None:
                self.urls += [part.strip().split(" ")[0] for part in value.split(",")] if name == "srcset" \
                    else [value.strip()]
            if name == "style" and value:
                self.css(value)

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css(data)

    def css(self, sheet: str):
        self.urls += [a or b for a, b in CSS_URL.findall(sheet)]


def test_the_report_is_self_contained(made):
    html = made["html"]
    links = Links()
    links.feed(html)
    assert links.urls, "the report has its images"
    outside = [u for u in links.urls if not u.startswith(("data:image/png;base64,", "#"))]
    assert outside == []
    # no address anywhere outside the images either (a font, a script, a link in the text)
    stripped = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert re.search(r"(?i)(?:https?|ftp|wss?):|//[a-z0-9.-]+\.[a-z]{2,}", stripped) is None
    assert "<script" not in stripped.lower() and "<link" not in stripped.lower()
    assert "@font-face" not in stripped


def test_the_images_are_the_map_and_the_trends_drawn_by_chromium(made):
    assert made["images"] is True and made["note"] is None and made["data"]["images"] is True
    pngs = dict(re.findall(r'id="img-(map|trends)"[^>]*src="data:image/png;base64,([^"]+)"', made["html"]))
    assert set(pngs) == {"map", "trends"}
    for name, b64 in pngs.items():
        png = base64.b64decode(b64)
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        width, height = struct.unpack(">II", png[16:24])
        assert width == {"map": MAP_SIZE[0], "trends": 900}[name] * SCALE, name
        assert len(png) > 20_000, f"{name} is not blank"


def test_the_report_renders_in_chromium_with_no_console_errors(made, dash_duo, tmp_path):
    # Any attempt to load something from outside would break this policy and log a console error.
    page = made["html"].replace("<head>", "<head><meta http-equiv=\"Content-Security-Policy\" content=\""
                                "default-src 'none'; img-src data:; style-src 'unsafe-inline'\">", 1)
    path = tmp_path / "briefing.html"
    path.write_text(page, encoding="utf-8")
    dash_duo.driver.get(path.as_uri())
    dash_duo.wait_for_element("#kpis")
    decoded = wait_for(lambda: dash_duo.driver.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth > 0) && document.images.length"),
        message="both images decoded")
    assert decoded == 2
    fetched = dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
    assert fetched == []
    assert dash_duo.driver.find_element("css selector", "h1").text.endswith("城市运行简报")
    rows = dash_duo.driver.execute_script("return document.querySelectorAll('#districts tbody tr').length")
    assert rows == 9
    assert dash_duo.get_logs() == []


def test_the_pdf_has_pages_and_the_report_s_numbers(made):
    from pypdf import PdfReader

    pdf = bytes(made["pdf"])
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert 2 <= len(reader.pages) <= 8
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4, from the report's CSS
    textual = "".join(p.extract_text() for p in reader.pages)
    assert "2026-11-19 18:00" in textual and "2026-11-20 08:00" in textual
    assert str(made["data"]["kpis"]["events"]) in textual


def test_a_browser_that_fails_costs_the_images_not_the_briefing(made, tmp_path):
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    from dashboard.core.city import load_city

    out = render(made["data"], load_city("shenzhen"), str(broken), TZ)
    assert out.images is False and out.pdf is None and out.note
    assert "城市运行简报" in out.html and "<img" not in out.html and 'id="briefing-note"' in out.html


def test_a_district_centre_s_briefing_is_drawn_the_same_way_its_trends_only(make_app, redis_client):
    """One district's briefing (dashboard/briefings/collect.py's ``district``): the same template and browser, its
    trends image (no city map), its streets, kinds and alerts, a PDF, and nothing loaded from outside."""
    from pypdf import PdfReader

    app = make_app()
    svc = app.server.extensions["panorama"]
    seed(app)
    row = generate_slot(svc, periods.make_trigger(CRON, TZ), SLOT, periods.to_ms(SLOT) + 1000, "440303")
    made = store.get(svc.engine, row["id"], "html", "pdf")
    assert made["images"] is True and made["note"] is None
    assert re.findall(r'id="img-(map|trends)"', made["html"]) == ["trends"]
    links = Links()
    links.feed(made["html"])
    assert [u for u in links.urls if not u.startswith(("data:image/png;base64,", "#"))] == []
    for section in ("streets", "kinds", "top-incidents", "dispatch", "alerts"):
        assert f'id="{section}"' in made["html"], section
    textual = "".join(p.extract_text() for p in PdfReader(io.BytesIO(bytes(made["pdf"]))).pages)
    # (the PDF's text may give a CJK character as its Kangxi radical twin: 行 as ⾏, so only words without one)
    assert "罗湖区" in textual and "全区" in textual and "本时段" in textual
