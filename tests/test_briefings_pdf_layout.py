"""The briefing's PDF keeps short cells whole: levels, statuses, counts, times, names and headers never
break across lines (Chinese may break between any two characters), whatever the length of the rest.

A briefing with long titles, long department names and big numbers is printed by the system Chromium in
both languages; the PDF's text is read back with its positions (pypdf) and every short cell's characters
must sit on one line.
"""

from __future__ import annotations

import io
import unicodedata

import pytest

from dashboard.briefings.render import find_browser, render
from dashboard.briefings.text import bt
from dashboard.core.channels import DOMAINS
from dashboard.core.city import load_city
from dashboard.core.i18n import district_name, t

pytestmark = pytest.mark.skipif(find_browser(None) is None, reason="needs Chromium (tests/services.sh installs it)")
TZ = "Asia/Shanghai"
STATUSES = ("open", "dispatched", "in_progress", "resolved", "closed")
# Long text, free of the short cells' words, so that its own (allowed) wrapping cannot look like a split.
TITLE = {"zh": "高层住宅楼发生火灾，浓烟蔓延至相邻商业综合体，疏散居民并封闭周边道路，现场持续排烟降温",
         "en": "High-rise residential fire spreading smoke into the neighbouring shopping centre; residents "
               "evacuated and the surrounding roads closed"}
# Simplified forms some CJK fonts map to the CJK Radicals Supplement (U+2E80-U+2EFF), which NFKC leaves alone.
RADICALS = str.maketrans("⺠⻓⻔⻛⻜⻢⻥⻦⻰⻋⻉⻅⻆⻚⻙⻩⻬⻮⻳⻨⻧", "民长门风飞马鱼鸟龙车贝见角页韦黄齐齿龟麦卤")
STREET = {"zh": "深南大道中段彩田路口东北侧", "en": "Shennan Boulevard at Caitian Road, north-east corner"}


def briefing(city, lang: str) -> dict:
    """Return a briefing's data with every table full: long titles, the longest department names, big numbers."""
    deps = sorted(city.departments, key=lambda d: -len(d["name"]))[:5]
    top = [{"id": n + 1, "kind": "fire", "domain": "incident", "district": city.districts[n % len(city.districts)].code,
            "severity": 4 - n % 4, "status": STATUSES[n % 5], "reports": 12345 if n == 0 else n + 1,
            "opened_at": f"2026-11-20T07:{n:02d}:00+08:00", "title": TITLE[lang], "escalated": False,
            "street": STREET[lang], "last_report_at": "2026-11-20T07:59:00+08:00",
            "tasks": [{"department": d["code"], "name": d["name"], "name_en": d["name_en"],
                       "state": ("on_scene", "acknowledged", "dispatched", "resolved", "rejected")[j],
                       "escalated": j == 0} for j, d in enumerate(deps)]} for n in range(10)]
    districts = [{**d.as_ref(), "population": d.population, "counts": dict.fromkeys(DOMAINS, 123456),
                  "total": 493824, "previous_total": 100, "change_pct": 12345.6, "major": 3,
                  "incidents_opened": 1234, "risk": 87.5} for d in city.districts]
    dispatch = [{"department": d["code"], "name": d["name"], "name_en": d["name_en"], "tasks": 1234,
                 "incidents": 1234, "acknowledged": 3, "median_ack_s": 3725, "resolved": 3,
                 "median_resolve_s": 7384, "deadlines_missed": 12} for d in deps]
    kpis = {"events": 1974, "events_previous": 1000, "events_change_pct": 97.4,
            "by_domain": {dom: {"count": 10, "previous": 5, "change_pct": 100.0} for dom in DOMAINS},
            "by_severity": {"1": 1, "2": 2, "3": 3, "4": 4}, "incidents_opened": 10,
            "incidents_opened_previous": 5, "incidents_opened_change_pct": 100.0, "tasks_dispatched": 50,
            "deadlines_missed": 12}
    return {"id": 7, "slot": "schedule:2026-11-20T08:00+08:00", "trigger": {"kind": "schedule", "by": None},
            "lang": lang, "tz": TZ, "city": {"name": city.name, "name_en": city.name_en},
            "generated_at": "2026-11-20T08:00:01+08:00",
            "period": {"start": "2026-11-19T18:00:00+08:00", "end": "2026-11-20T08:00:00+08:00", "minutes": 840},
            "previous_period": {"start": "2026-11-19T04:00:00+08:00", "end": "2026-11-19T18:00:00+08:00"},
            "kpis": kpis, "districts": districts, "top_incidents": top, "dispatch": dispatch,
            "trend": {"start": 1763546400000, "step_ms": 600_000, "series": {dom: [1] * 84 for dom in DOMAINS}}}


def glyphs(pdf: bytes) -> list[tuple[int, float, str]]:
    """Return the PDF's characters in the order they are drawn, each with its page and baseline.

    Chromium draws a table cell by cell, so one cell's characters follow each other here. NFKC folds the
    Kangxi radicals some CJK fonts map to (⼤ for 大) back to the characters the report holds, and
    ``RADICALS`` the few simplified ones it does not (⻔ for 门).
    """
    from pypdf import PdfReader

    out: list[tuple[int, float, str]] = []
    for page_no, page in enumerate(PdfReader(io.BytesIO(pdf)).pages):
        def visit(text, cm, tm, _font, _size, page_no=page_no):
            y = round(tm[4] * cm[1] + tm[5] * cm[3] + cm[5], 1)
            out.extend((page_no, y, ch) for ch in unicodedata.normalize("NFKC", text).translate(RADICALS)
                       if not ch.isspace())
        page.extract_text(visitor_text=visit)
    return out


def placements(drawn: list[tuple[int, float, str]], word: str) -> list[set]:
    """Return, for each time ``word`` is drawn, the set of (page, line) its characters sit on."""
    chars = "".join(c for _, _, c in drawn)
    target = "".join(unicodedata.normalize("NFKC", word).split())
    found, at = [], chars.find(target)
    while at >= 0:
        found.append({(p, y) for p, y, _ in drawn[at:at + len(target)]})
        at = chars.find(target, at + 1)
    return found


def short_cells(city, lang: str, data: dict) -> set[str]:
    """Return the words the report must never break: levels, statuses, task states, headers, names, counts."""
    words = {t(f"sev_{n}", lang) for n in range(1, 5)} | {t(f"status_{s}", lang) for s in STATUSES}
    words |= {t(f"task_{s}", lang) for s in ("on_scene", "acknowledged", "dispatched", "resolved", "rejected")}
    words |= {bt(k, lang) for k in ("col_severity", "col_opened", "col_reports", "col_status", "col_tasks",
                                    "col_department", "col_tasks_n", "col_incidents_n", "col_ack", "col_resolve",
                                    "col_missed", "total", "change", "risk", "incidents_opened", "district")}
    words |= {t(dom, lang) for dom in DOMAINS}
    words |= {district_name(d, lang) for d in city.districts}
    words |= {d["name"] if lang == "zh" else d["name_en"] for d in data["dispatch"]}
    words |= {"12345", "+12345.6%", "123456", "2026-11-20 07:00", bt("hours_minutes", lang, h=1, m=2)}
    if lang == "en":  # English wraps between words where it must: only one-word cells and headers are whole
        words = {w for w in words if " " not in w} | {t(f"status_{s}", lang) for s in STATUSES} \
            | {t("task_on_scene", lang), bt("hours_minutes", lang, h=1, m=2), "2026-11-20 07:00"}
    return words


@pytest.fixture(scope="module", params=["zh", "en"])
def printed(request):
    """Print the crowded briefing in one language; give the city, its data and the PDF's characters."""
    city = load_city("shenzhen")
    data = briefing(city, request.param)
    out = render(data, city, find_browser(None), TZ)
    assert out.pdf is not None, out.note
    return request.param, city, data, glyphs(out.pdf)


def test_no_short_cell_is_broken_across_lines(printed):
    lang, city, data, drawn = printed
    broken, missing = {}, []
    for word in sorted(short_cells(city, lang, data)):
        seen = placements(drawn, word)
        if not seen:
            missing.append(word)
        split = [lines for lines in seen if len(lines) > 1]
        if split:
            broken[word] = len(split)
    assert missing == [], "every short cell is in the PDF"
    assert broken == {}, f"{lang}: short cells broken across lines (word: times)"


def test_long_text_still_wraps_inside_its_column(printed):
    lang, _city, _data, drawn = printed
    # each title is far longer than its column: it wraps over several lines, and is all there
    seen = placements(drawn, TITLE[lang])
    assert len(seen) == 10 and all(len(lines) >= 3 for lines in seen)
