"""The wall's Chinese on a kiosk without CJK fonts: the product's own font slices, what they hold and who loads them."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from dashboard.core.config import ROOT
from dashboard.storage import users as accounts
from dashboard.web.caching import names_its_content
from tests.helpers import make_event, sign_in, wait_for
from tests.test_api import ingest_now
from tests.test_pages import ticker_titles
from tests.test_words_page import to_english
from tools import build_fonts

FONTS = ROOT / "assets" / "fonts"
CSS = (ROOT / "assets" / "fonts.css").read_text(encoding="utf-8")
FAMILY = build_fonts.FAMILY
FACE = re.compile(r"@font-face \{(.*?)\}", re.S)


def faces() -> list[dict]:
    """Return fonts.css's faces as {weight, file, chars}."""
    out = []
    for body in FACE.findall(CSS):
        chars = set()
        for a, b in re.findall(r"U\+([0-9A-F]+)(?:-([0-9A-F]+))?", re.search(r"unicode-range: ([^;]+);", body)[1]):
            chars |= {chr(c) for c in range(int(a, 16), int(b or a, 16) + 1)}
        out.append({"weight": int(re.search(r"font-weight: (\d+);", body)[1]),
                    "file": re.search(r"url\(fonts/([^)]+)\)", body)[1], "chars": chars, "body": body})
    return out


def cmap(file: str) -> set[str]:
    """Return the characters a WOFF2 slice has glyphs for."""
    return {chr(c) for c in TTFont(FONTS / file)["cmap"].getBestCmap()}


def own_words() -> set[str]:
    """Return the CJK characters of i18n.py and the city pack (names, departments, rules, boundaries)."""
    files = [ROOT / "dashboard" / "core" / "i18n.py", *sorted((ROOT / "dashboard" / "cities" / "shenzhen").glob("*"))]
    return {c for f in files if f.suffix in (".py", ".yaml", ".geojson")
            for c in build_fonts._CJK.findall(f.read_text(encoding="utf-8"))}


def test_the_preloaded_slices_hold_every_character_of_i18n_and_the_city_pack():
    words = own_words()
    assert len(words) > 300 and "福" in words and "田" in words  # the files were read
    ui = [f for f in faces() if "-ui." in f["file"]]
    assert sorted(f["weight"] for f in ui) == [400, 700]
    for face in ui:
        assert words - cmap(face["file"]) == set(), face["file"]
        assert words - face["chars"] == set(), face["file"]  # and its unicode-range sends them to it
    # what tools/build_fonts.py would put in it today: a new word in the product needs `make fonts`
    assert build_fonts.product_chars() - cmap(ui[0]["file"]) == set()


def test_every_slice_has_a_glyph_for_its_whole_range_and_the_slices_cover_gb2312():
    seen = {400: set(), 700: set()}
    for face in faces():
        assert face["chars"] and face["chars"] <= cmap(face["file"]), face["file"]
        assert seen[face["weight"]].isdisjoint(face["chars"]), face["file"]  # one slice per character
        seen[face["weight"]] |= face["chars"]
        assert "font-display: swap;" in face["body"] and 'format("woff2")' in face["body"]
        assert f'font-family: "{FAMILY}";' in face["body"]
        assert TTFont(FONTS / face["file"])["name"].getDebugName(1) == FAMILY
    hanzi = set(build_fonts.gb2312_rows(16, 87))
    assert len(hanzi) == 6763
    for weight, chars in seen.items():
        assert hanzi <= chars, weight
    # every file is named by its content (cached for a year) and every file is used
    assert sorted(f["file"] for f in faces()) == sorted(p.name for p in FONTS.glob("*.woff2"))
    for face in faces():
        assert names_its_content(str(ROOT / "assets"), "fonts/" + face["file"]), face["file"]
    assert (FONTS / "OFL.txt").read_text().startswith("Copyright 2014-2021 Adobe")


def test_a_font_edited_under_its_old_name_is_not_cached_as_immutable(tmp_path):
    name = next(FONTS.glob("*-symbols.*.woff2")).name
    shutil.copy(FONTS / name, tmp_path / name)
    assert names_its_content(str(tmp_path), name)
    (tmp_path / name).write_bytes((tmp_path / name).read_bytes() + b"\0")
    assert not names_its_content(str(tmp_path), name)
    assert not names_its_content(str(tmp_path), "plain.woff2")
    assert not names_its_content(str(tmp_path / "sub"), "../" + name)


def test_only_the_wall_preloads_its_slices(app, client):
    engine = app.server.extensions["panorama"].engine
    _, token = accounts.create_kiosk_token(engine, "hall")
    client.get(f"/wall?token={token}")
    html = client.get("/wall").get_data(as_text=True)
    links = re.findall(r'<link rel="preload" href="/assets/fonts/([^"]+)" as="font" type="font/woff2" crossorigin>',
                       html)
    assert sorted(links) == sorted(f["file"] for f in faces() if "-ui." in f["file"])
    assert 'rel="preload"' not in app.server.test_client().get("/login").get_data(as_text=True)


# Fontconfig sees only the Latin fonts: Chromium on Linux finds its fonts through it, as on a bare kiosk.
FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>{dirs}<cachedir>{cache}</cachedir></fontconfig>
"""


@pytest.fixture
def kiosk_fonts(tmp_path, monkeypatch):
    """Hide every CJK system font from the browser started after this fixture (FONTCONFIG_FILE)."""
    latin = [d for d in sorted(Path("/usr/share/fonts/truetype").glob("*"))
             if d.name in ("dejavu", "liberation", "liberation2")]
    assert latin, "no Latin system font to keep"
    conf = tmp_path / "fonts.conf"
    conf.write_text(FONTS_CONF.format(dirs="".join(f"<dir>{d}</dir>" for d in latin), cache=tmp_path / "fc-cache"))
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))


# What the browser made of a text: its width in a font stack, and the faces of the family it loaded.
MEASURE = """
const [text, family] = arguments;
const span = document.createElement('span');
span.style.cssText = 'position:absolute; white-space:nowrap; font-size:100px; font-family:' + family;
span.textContent = text;
document.body.appendChild(span);
const width = span.getBoundingClientRect().width;
span.remove();
return width;
"""
FACES = """
return [...document.fonts].filter((f) => f.family.replace(/"/g, '') === arguments[0])
    .map((f) => [f.weight, f.unicodeRange, f.status]);
"""
FONT_BYTES = """
return performance.getEntriesByType('resource').filter((e) => e.name.includes('.woff2'))
    .map((e) => [e.name.split('/').pop(), e.transferSize, e.encodedBodySize]);
"""


def used_fonts(dash_duo, selector: str) -> list[dict]:
    """Return the fonts Chromium drew the element's own text with (DevTools: family, web font or not, glyphs)."""
    cdp = dash_duo.driver.execute_cdp_cmd
    cdp("DOM.enable", {})
    cdp("CSS.enable", {})
    root = cdp("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = cdp("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return cdp("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


def loaded_slices(dash_duo) -> dict[str, str]:
    """Return the status of each of the family's faces the page knows, by the first code point of its range."""
    return {f"{w}:{r.split(',')[0].upper()}": s for w, r, s in dash_duo.driver.execute_script(FACES, FAMILY)}


@pytest.mark.timeout(120)
def test_a_wall_without_cjk_fonts_draws_its_chinese_in_the_shipped_font(kiosk_fonts, make_app, redis_client,
                                                                         dash_duo):
    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_WALL_CYCLE_S=3600)
    _, token = accounts.create_kiosk_token(app.server.extensions["panorama"].engine, "hall")
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    dash_duo.driver.get(f"{base}/wall?token={token}")
    dash_duo.wait_for_element("#live-indicator.conn-polling", timeout=15)
    title = dash_duo.find_element(".wall-title").text
    assert title and all(build_fonts._CJK.match(c) for c in title.replace(" ", "")), title

    # The machine has no CJK font: the same characters in the default fallback are boxes of another width.
    shipped = dash_duo.driver.execute_script(MEASURE, "福田区", f'"{FAMILY}"')
    fallback = dash_duo.driver.execute_script(MEASURE, "福田区", "no-such-font")
    assert abs(shipped - 300) < 3, shipped  # ideographs are 1 em wide
    assert abs(shipped - fallback) > 30, (shipped, fallback)

    # The title was drawn with the shipped font's bold face, every glyph of it, and no system font.
    wait_for(lambda: dash_duo.driver.execute_script(f"return document.fonts.check('bold 16px \"{FAMILY}\"', '福田')"),
             timeout=10, message="the shipped font ready")
    drawn = used_fonts(dash_duo, ".wall-title")
    assert [f["familyName"] for f in drawn] == [FAMILY] and drawn[0]["isCustomFont"], drawn
    assert drawn[0]["glyphCount"] == len(title.replace(" ", "")), drawn
    status = loaded_slices(dash_duo)
    ui = {f"{f['weight']}:{build_fonts.unicode_range(sorted(f['chars'])).split(',')[0]}"
          for f in faces() if "-ui." in f["file"]}
    assert {k: status[k] for k in ui} == {k: "loaded" for k in ui}, status

    # An event title with characters outside the product's words: its slice is fetched when it is shown, the rest not.
    assert set("起火") <= build_fonts.product_chars()
    # severity 3 titles are bold: the bold face's slice, which a regular-only font would leave to the fallback
    rare = [f for f in faces() if f["file"].startswith("panorama-sc-700-b3")][0]
    word = "".join(sorted(rare["chars"] - set(build_fonts.product_chars()))[:2])
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, title=f"起火 {word}",
                                             ts=int(time.time() * 1000))]})
    wait_for(lambda: ticker_titles(dash_duo)[:1] == [f"起火 {word}"], timeout=15, message="the event on the wall")
    key = f"700:{build_fonts.unicode_range(sorted(rare['chars'])).split(',')[0]}"
    wait_for(lambda: loaded_slices(dash_duo)[key] == "loaded", timeout=10, message="the rare characters' slice")
    drawn = used_fonts(dash_duo, "#event-ticker > li .ticker-title")
    assert {f["familyName"] for f in drawn if f["isCustomFont"]} == {FAMILY}, drawn
    assert sum(f["glyphCount"] for f in drawn if f["isCustomFont"]) >= 4, drawn  # 起火 and the two rare ones

    # What the wall fetched: the two preloaded slices and the one its event needed, nothing more.
    # (the preloaded ones came with the sign-in page dash_duo opened first, and from the cache since: their body
    # size is what travels on a kiosk's first visit, woff2 being sent as it is)
    fetched = {name: size for name, _, size in dash_duo.driver.execute_script(FONT_BYTES)}
    expected = {f["file"] for f in faces() if "-ui." in f["file"]} | {rare["file"]}
    assert set(fetched) == expected, fetched
    print("font bytes fetched by /wall:", fetched, sum(fetched.values()))
    assert dash_duo.get_logs() == []


# A character's advance in ems, set in the page's own font-family (the body's) at 100 px.
ADVANCE_JS = """
const s = document.createElement('span');
s.style.cssText = 'font-size: 100px; position: absolute; white-space: pre; visibility: hidden';
document.body.appendChild(s);
const out = {};
for (const [k, text] of Object.entries(arguments[0])) { s.textContent = text; out[k] = s.getBoundingClientRect().width / 100; }
s.remove();
return out;"""
CHARS = {"quote": "\u201c", "apostrophe": "\u2019", "han": "火"}


@pytest.mark.timeout(120)
def test_english_is_set_in_a_latin_face_and_the_chinese_in_it_still_in_the_cjk_faces(make_app, redis_client, dash_duo):
    """With Noto Sans CJK SC on the machine (fonts-noto-cjk), English took that face's Latin: its quotes and
    apostrophes are a full em wide ("“ open ”" on /open)."""
    app = make_app()
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/briefings")
    dash_duo.wait_for_element("#lang-toggle", timeout=30)
    zh = dash_duo.driver.execute_script(ADVANCE_JS, CHARS)
    to_english(dash_duo)
    en = dash_duo.driver.execute_script(ADVANCE_JS, CHARS)
    assert en["quote"] < 0.6 and en["apostrophe"] < 0.6, en  # a Latin face's (DejaVu Sans: 0.52 and 0.32)
    assert en["han"] > 0.9 and zh["han"] > 0.9, (zh, en)  # Chinese in an English page: still a CJK face's em
    if Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists():
        assert zh["quote"] > 0.9, zh  # Chinese keeps the CJK face's full-width quotes, as Chinese text sets them
    assert dash_duo.get_logs() == []


def test_the_graphs_text_is_set_in_the_faces_of_the_page_around_it():
    """Plotly's SVG text names its fonts itself: in English it named the CJK faces first while the page around it
    had a Latin face, so a map's or a trend's English was set in the CJK face's Latin (and its em-wide quotes)."""
    from dashboard.core.city import load_city
    from dashboard.figures.panorama import font_family, make_city_map, make_street_bars, make_trend
    from layouts.district import events_table

    page = (ROOT / "assets" / "style.css").read_text(encoding="utf-8")
    cjk = re.search(r"--cjk-faces:\s*([^;]+);", page).group(1).strip()
    stack = {"zh": re.search(r"\nbody \{[^}]*?font-family: ([^;]+);", page).group(1),
             "en": re.search(r"html:lang\(en\) body \{ font-family: ([^;]+);", page).group(1)}
    city = load_city("shenzhen")
    for lang in ("zh", "en"):
        assert font_family(lang) == " ".join(stack[lang].split()).replace("var(--cjk-faces)", cjk)
        for fig in (make_city_map(None, city, lang=lang), make_trend(None, lang, "Asia/Shanghai"),
                    make_street_bars([], lang)):
            assert fig.layout.font.family == font_family(lang)
        assert events_table(lang).style_cell["fontFamily"] == font_family(lang)
    assert font_family("en").startswith('"Noto Sans", "DejaVu Sans"') and font_family("zh").startswith('"Noto Sans CJK')
