"""Briefing schedules said in words ("每天 08:00、18:00", "Daily 08:00 and 18:00"), never as a cron string.

The words follow what the product's trigger runs; day-of-week numbers are crontab's (0 and 7 Sunday, 1-5 Monday
to Friday: ``periods.crontab_weekdays``), not APScheduler's (0 Monday), under which ``1-5`` fired Tuesday to
Saturday.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.briefings import periods
from dashboard.briefings.cron_words import cron_words
from layouts.briefings import briefings_layout
from tests.helpers import sign_in

TZ = "Asia/Shanghai"


@pytest.mark.parametrize("cron, zh, en", [
    ("0 8,18 * * *", "每天 08:00、18:00", "Daily 08:00 and 18:00"),
    ("0  8,18  *  *  *", "每天 08:00、18:00", "Daily 08:00 and 18:00"),
    ("0 8 * * *", "每天 08:00", "Daily 08:00"),
    ("0 6,12,18 * * *", "每天 06:00、12:00、18:00", "Daily 06:00, 12:00 and 18:00"),
    ("30 7,17 * * *", "每天 07:30、17:30", "Daily 07:30 and 17:30"),
    ("0 8 * * mon-fri", "工作日 08:00", "Weekdays 08:00"),
    ("0 8 * * 1-5", "工作日 08:00", "Weekdays 08:00"),  # crontab's numbers: 1 is Monday
    ("0 8 * * 2-6", "周二至周六 08:00", "Tue to Sat 08:00"),
    ("0 10 * * 0,6", "周末 10:00", "Weekends 10:00"),
    ("0 10 * * 6-7", "周末 10:00", "Weekends 10:00"),
    ("0 10 * * sat,sun", "周末 10:00", "Weekends 10:00"),
    ("0 8 * * mon,wed,fri", "每周一、三、五 08:00", "Mon, Wed and Fri 08:00"),
    ("0 9 * * sun", "每周日 09:00", "Sun 09:00"),
    ("0 * * * *", "每小时整点", "Hourly on the hour"),
    ("15 * * * mon-fri", "工作日 每小时第 15 分", "Weekdays hourly at 15 past"),
    ("0 8 1,15 * *", "每月 1 日、15 日 08:00", "Monthly on day 1 and 15 at 08:00"),
    ("off", "不自动生成", "not scheduled"),
    ("", "不自动生成", "not scheduled"),
    # no plain words: the expression itself, said to be one
    ("*/30 * * * *", "按 cron 表达式 */30 * * * *", "cron */30 * * * *"),
    ("0 8 * 1 *", "按 cron 表达式 0 8 * 1 *", "cron 0 8 * 1 *"),
])
def test_cron_in_words(cron, zh, en):
    assert cron_words(cron, "zh", TZ) == zh
    assert cron_words(cron, "en", TZ) == en


def test_the_words_match_the_days_the_trigger_fires():
    # a week from Monday 2026-11-23: crontab's "1-5" fires Monday to Friday (APScheduler alone: Tuesday to
    # Saturday), "0" and "7" on Sunday, "*/2" on Sunday, Tuesday, Thursday and Saturday
    start = datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ))

    def fired(cron):
        trigger = periods.make_trigger(cron, TZ)
        return [t.strftime("%a") for t in periods._fires_between(trigger, start, start.replace(day=29, hour=23))]

    assert fired("0 8 * * 1-5") == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert fired("0 8 * * 0") == fired("0 8 * * 7") == fired("0 8 * * sun") == ["Sun"]
    assert fired("0 8 * * */2") == ["Tue", "Thu", "Sat", "Sun"]
    assert fired("0 8 * * 5-7") == ["Fri", "Sat", "Sun"]


def test_a_bad_expression_is_shown_as_it_is():
    # the scheduler refuses it at start (periods.make_trigger raises); the page still says what is set
    with pytest.raises(ValueError):
        periods.make_trigger("0 8 * *", TZ)
    assert cron_words("0 8 * *", "zh", TZ) == "按 cron 表达式 0 8 * *"
    assert cron_words("0 25 * * *", "en", TZ) == "cron 0 25 * * *"


def _text(component) -> str:
    """Return every string in a component tree (and its title attributes left out)."""
    if isinstance(component, str):
        return component
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return "" if children is None else _text(children)


@pytest.mark.parametrize("lang, words", [("zh", "生成计划：每天 08:00、18:00（Asia/Shanghai）"),
                                         ("en", "Schedule: Daily 08:00 and 18:00 (Asia/Shanghai)")])
def test_the_briefings_page_shows_the_schedule_in_words(lang, words):
    page = _text(briefings_layout(lang, [], False, "0 8,18 * * *", TZ))
    assert words in page
    assert "0 8,18" not in page
    empty = {"zh": "简报按计划（每天 08:00、18:00）自动生成", "en": "Schedule: Daily 08:00 and 18:00."}[lang]
    assert empty in page


def test_the_page_in_chromium_says_the_schedule_in_words(make_app, redis_client, dash_duo):
    app = make_app(BROWSER_PATH="none", PANORAMA_BRIEFING_CRON="0 8 * * mon-fri")
    dash_duo.start_server(app)
    dash_duo.get_logs()  # the sign-in page before signing in is not under test
    sign_in(dash_duo, app, "/briefings", role="viewer")
    dash_duo.wait_for_text_to_equal("#briefing-schedule", "生成计划：工作日 08:00（Asia/Shanghai）", timeout=10)
    dash_duo.wait_for_contains_text(".briefing-empty", "工作日 08:00", timeout=10)
    body = dash_duo.find_element("body").text
    assert "* * mon-fri" not in body and "0 8 *" not in body
    assert dash_duo.get_logs() == []
