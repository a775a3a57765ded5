"""/rosters in a real headless Chromium: who is on duty, the ladder, an override set by clicks, both languages."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.storage.models import roster_overrides
from tests.helpers import sign_in, wait_for

PHONE = re.compile(r"\+86755\d{8}")


def text(dash_duo, selector: str) -> str:
    return dash_duo.driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector)


@pytest.fixture
def rapp(make_app, redis_client):
    """Give an app (no briefing browser needed)."""
    return make_app(BROWSER_PATH="none")


def fire_officer(app) -> tuple[str, str]:
    """Return the fire department's officer on duty now by the pack's shifts (Chinese, English names)."""
    svc = app.server.extensions["panorama"]
    r = svc.city.rosters
    [p] = r.on_duty(r.rosters["fire"], "officer", svc.clock())
    return p.name, p.name_en


@pytest.mark.timeout(180)
def test_a_commander_sets_an_override_by_clicks_and_reads_the_duty_in_both_languages(rapp, dash_duo):
    svc = rapp.server.extensions["panorama"]
    deputy = svc.city.rosters.rosters["fire"].people["fire_dep_a"]
    officer_zh, officer_en = fire_officer(rapp)
    dash_duo.start_server(rapp)
    dash_duo.get_logs()
    sign_in(dash_duo, rapp, "/rosters", role="commander", username="cmdr")
    dash_duo.wait_for_element("#roster-fire", timeout=20)
    card = text(dash_duo, "#roster-fire")
    assert "深圳市消防救援支队" in card and officer_zh in card and "值班员" in card
    assert PHONE.search(card), "a commander reads the phone numbers"
    assert "第 1 级 · 值班员 · 立即通知 · 短信、邮件" in card and "共 3 轮，每 15 分钟一轮" in card
    assert "暂无临时调班" in text(dash_duo, "#override-list")
    # the form without a reason: said in words, nothing recorded
    dash_duo.select_dcc_dropdown("#override-person", f"深圳市消防救援支队 · {deputy.name}（副值班长）")
    dash_duo.select_dcc_dropdown("#override-role", "值班员")
    dash_duo.find_element("#override-submit").click()
    dash_duo.wait_for_text_to_equal("#override-message", "请选择人员、担任角色并填写原因", timeout=20)
    dash_duo.find_element("#override-reason").send_keys("值班员病假，副值班长顶班")
    dash_duo.find_element("#override-submit").click()
    dash_duo.wait_for_contains_text("#override-message", f"已调班：{deputy.name} 担任深圳市消防救援支队值班员至",
                                    timeout=20)
    wait_for(lambda: "临时调班" in text(dash_duo, "#roster-fire [data-role='officer']"), timeout=10,
             message="the fire officer's row marked as overridden")
    row = text(dash_duo, "#roster-fire [data-role='officer']")
    assert deputy.name in row and officer_zh not in row
    assert "值班员病假，副值班长顶班" in text(dash_duo, "#override-list")
    with svc.engine.connect() as conn:
        [o] = conn.execute(select(roster_overrides)).mappings().all()
    assert (o["department"], o["person"], o["role"], o["created_by"]) == ("fire", "fire_dep_a", "officer", "cmdr")
    assert 8 * 3_600_000 - 1000 < o["until_ms"] - o["from_ms"] <= 8 * 3_600_000  # the default: 8 h (to the second)
    # English: every word of the page switched, the names in pinyin
    dash_duo.find_element("#lang-toggle").click()
    dash_duo.wait_for_text_to_equal(".topbar-title", "Duty rosters", timeout=20)
    dash_duo.wait_for_element("#roster-fire", timeout=20)
    card = text(dash_duo, "#roster-fire")
    assert "Shenzhen Fire and Rescue Detachment" in card and deputy.name_en in card and "override" in card
    assert "Level 1 · duty officer · told at once · SMS, e-mail" in card
    assert "3 rounds, one every 15 min; stops on acknowledgement" in card
    main = text(dash_duo, ".rosters-main")
    # Chinese only where a person wrote it: the override's reason
    assert re.findall(r"[\u4e00-\u9fff]+", main.replace("值班员病假，副值班长顶班", "")) == [], main
    assert dash_duo.get_logs() == []


@pytest.mark.timeout(120)
def test_a_viewer_reads_who_is_on_duty_without_phones_or_the_form(rapp, dash_duo):
    officer_zh, _ = fire_officer(rapp)
    dash_duo.start_server(rapp)
    dash_duo.get_logs()
    sign_in(dash_duo, rapp, "/rosters", role="viewer")
    dash_duo.wait_for_element("#roster-fire", timeout=20)
    assert officer_zh in text(dash_duo, "#roster-fire")
    assert not PHONE.search(text(dash_duo, ".rosters-main"))
    assert dash_duo.find_elements("#override-form") == []
    assert "今日班次" in text(dash_duo, "#roster-fire") and "白班 08:00-20:00" in text(dash_duo, "#roster-fire")
    assert dash_duo.get_logs() == []
