"""The commander's cards: one per incident, however many of its departments are late; re-dispatch and its audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.core.city import load_city, validate_departments
from dashboard.dispatch import board as d
from dashboard.dispatch import commander
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage.models import task_events, tasks
from tests.helpers import city_clock, make_user, phone_screen, wait_for
from tests.test_mobile import MIN, decisions, dispatch_to, now, open_incident, svc_of

FOUR = ["fire", "emergency", "police", "health"]


@pytest.fixture
def app(make_app, redis_client):
    """Give an app whose clock reads 10:00 in the city (the daytime fire rule)."""
    return make_app(PANORAMA_CLOCK=city_clock("10:00"))


def card_tap(action: str, card: dict, task: dict | None = None) -> commander.Tap:
    """Return the tap a card's button makes: a department's row names its task, the card's own buttons the card."""
    listed = tuple((t["id"], t["version"]) for t in commander.listed(card))
    if task is not None:
        return commander.Tap(action, card["kind"], card["incident"]["id"], task["id"], task["version"], listed)
    return commander.Tap(action, card["kind"], card["incident"]["id"], None, card["version"], listed)


@pytest.fixture
def late_fire(app):
    """Give a fire dispatched to four departments, all of them past the acknowledge deadline (the checker ran)."""
    inc = open_incident(app, 1)
    dispatch_to(app, inc["id"], FOUR)
    DeadlineChecker(svc_of(app)).check_once(at_ms=now(app) + 10 * MIN)
    return inc


def test_one_fire_late_at_four_departments_is_one_card_naming_each(app, late_fire):
    at = now(app) + 12 * MIN
    [card] = decisions(app, at)
    assert card["kind"] == "overdue" and card["incident"]["id"] == late_fire["id"]
    assert sorted(o["task"]["department"] for o in card["overdue"]) == sorted(FOUR)
    assert {o["step"] for o in card["overdue"]} == {"ack"}
    assert all(o["late_min"] >= 8 and o["redispatch"] for o in card["overdue"])  # the 3-minute deadline, 12 on
    assert card["actions"] == ["acknowledge", "escalate"]
    # a second late incident is a second card, not four more lines
    other = open_incident(app, 2)
    dispatch_to(app, other["id"], ["fire", "police"])
    DeadlineChecker(svc_of(app)).check_once(at_ms=now(app) + 10 * MIN)
    assert [(c["incident"]["id"], len(c["overdue"])) for c in decisions(app, at)] == [
        (late_fire["id"], 4), (other["id"], 2)]


def test_a_critical_incidents_late_departments_are_on_its_own_card(app):
    inc = open_incident(app, 1, severity=4)
    dispatch_to(app, inc["id"], ["fire", "police"])
    DeadlineChecker(svc_of(app)).check_once(at_ms=now(app) + 10 * MIN)
    [card] = decisions(app, now(app) + 10 * MIN)
    assert card["kind"] == "critical" and len(card["overdue"]) == 2


def test_acknowledging_a_card_hides_it_until_one_of_its_tasks_changes(app, late_fire):
    cmdr = make_user(app, "cmdr", "commander")
    at = now(app) + 12 * MIN
    [card] = decisions(app, at)
    commander.perform(svc_of(app), cmdr, card_tap("acknowledge", card), at)
    assert decisions(app, at) == []
    with svc_of(app).engine.connect() as conn:
        acks = conn.execute(select(task_events.c.task_id).where(task_events.c.action == commander.ACK_ACTION)).all()
    assert len(acks) == 4


def test_redispatch_restarts_the_deadlines_audits_and_bumps_the_version(app, late_fire):
    cmdr = make_user(app, "cmdr", "commander")
    at = now(app) + 12 * MIN
    [card] = decisions(app, at)
    row = next(o["task"] for o in card["overdue"] if o["task"]["department"] == "police")
    change = commander.perform(svc_of(app), cmdr, card_tap("redispatch", card, row), at)
    [task] = change.tasks
    assert task["id"] == row["id"] and task["version"] == row["version"] + 1 and task["state"] == "dispatched"
    assert task["escalated"] is False and task["escalated_ms"] is None
    assert task["ack_due_ms"] - at == row["ack_due_ms"] - row["created_ms"]  # the rule's span, from now
    assert task["resolve_due_ms"] - at == row["resolve_due_ms"] - row["created_ms"]
    with svc_of(app).engine.connect() as conn:
        [audit] = [h for h in d.history(conn, late_fire["id"]) if h["action"] == "redispatch"]
    assert (audit["actor"], audit["task_id"], audit["code"], audit["params"], audit["to_state"]) == (
        "cmdr", row["id"], "task_redispatched", {"dep": "police"}, "dispatched")
    # the card changes: police is no longer late; the three others still are
    [card] = decisions(app, at)
    assert sorted(o["task"]["department"] for o in card["overdue"]) == ["emergency", "fire", "health"]
    # the same tap again is stale: refused, nothing written
    with pytest.raises(d.VersionConflict):
        commander.perform(svc_of(app), cmdr, commander.Tap("redispatch", "overdue", late_fire["id"], row["id"],
                                                           row["version"]), at)
    # the new deadline missed in turn: the checker notices it again
    assert [t["id"] for t in DeadlineChecker(svc_of(app)).check_once(at_ms=task["ack_due_ms"] + 1)] == [row["id"]]


def test_redispatch_is_refused_in_time_on_scene_and_to_anyone_without_command(app):
    cmdr = make_user(app, "cmdr", "commander")
    inc = open_incident(app, 1)
    [fire] = dispatch_to(app, inc["id"], ["fire"])
    svc = svc_of(app)
    with svc.engine.begin() as conn:  # not late yet
        with pytest.raises(d.InvalidTransition):
            d.redispatch(conn, fire["id"], 1, "cmdr", None, now(app))
    with pytest.raises(Exception) as refused:
        commander.perform(svc, make_user(app, "fay", "liaison", "fire"),
                          commander.Tap("redispatch", "overdue", inc["id"], fire["id"], 1), now(app) + 10 * MIN)
    assert type(refused.value).__name__ == "Forbidden"
    with svc.engine.begin() as conn:
        moved = d.transition(conn, fire["id"], "acknowledged", 1, "fay", None, now(app)).task
        moved = d.transition(conn, fire["id"], "on_scene", moved["version"], "fay", None, now(app)).task
    late = moved["resolve_due_ms"] + MIN
    [card] = decisions(app, late)
    assert [o["redispatch"] for o in card["overdue"]] == [False]  # on scene: call or escalate, not send again
    with pytest.raises(d.InvalidTransition):
        commander.perform(svc, cmdr, card_tap("redispatch", card, card["overdue"][0]["task"]), late)
    with svc.engine.connect() as conn:
        assert conn.execute(select(tasks.c.version).where(tasks.c.id == fire["id"])).scalar() == moved["version"]


def test_a_stale_card_tap_is_refused(app, late_fire):
    cmdr = make_user(app, "cmdr", "commander")
    at = now(app) + 12 * MIN
    [card] = decisions(app, at)
    fire = next(o["task"] for o in card["overdue"] if o["task"]["department"] == "fire")
    with svc_of(app).engine.begin() as conn:  # the fire department acknowledges meanwhile
        d.transition(conn, fire["id"], "acknowledged", fire["version"], "fay", None, at)
    for action in ("acknowledge", "escalate"):
        with pytest.raises(d.VersionConflict):
            commander.perform(svc_of(app), cmdr, card_tap(action, card), at)


def test_escalating_a_card_marks_its_late_tasks_and_brings_in_emergency_management(app):
    cmdr = make_user(app, "cmdr", "commander")
    inc = open_incident(app, 1)
    dispatch_to(app, inc["id"], ["fire", "police"])
    at = now(app) + 10 * MIN  # past the deadline, the checker has not run
    [card] = decisions(app, at)
    assert len(card["overdue"]) == 2 and "escalate" in card["actions"]
    change = commander.perform(svc_of(app), cmdr, card_tap("escalate", card), at)
    assert sorted((t["department"], t["escalated"]) for t in change.tasks) == [
        ("emergency", False), ("fire", True), ("police", True)]
    assert change.incident["escalated_ms"] == at
    [card] = decisions(app, at)
    assert card["actions"] == ["acknowledge"]


def test_department_phones_are_checked_when_the_pack_loads():
    city = load_city("shenzhen")
    assert all(dep["duty_phone"].startswith("+86") for dep in city.departments if dep["code"] in FOUR)
    validate_departments([{"code": "a", "name": "甲", "name_en": "A", "kind": "x", "duty_phone": "+8675500000001"}])
    for bad in ("0755-110", "+86 755 1234", "tel:+86755", "+0123456", 8675500000001):
        with pytest.raises(ValueError, match="duty_phone"):
            validate_departments([{"code": "a", "name": "甲", "name_en": "A", "kind": "x", "duty_phone": bad}])
    with pytest.raises(ValueError, match="twice"):
        validate_departments([{"code": "a", "name": "甲", "name_en": "A", "kind": "x"}] * 2)


@pytest.mark.timeout(180)
def test_in_chromium_a_commander_re_dispatches_and_escalates_from_one_card(make_app, redis_client, dash_duo):
    from tests.helpers import open_signed_in
    from tests.test_escalation_page import click, js, texts

    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_CLOCK=city_clock("10:00"))
    make_user(app, "zhang.wei", "commander")
    svc = svc_of(app)
    title = "火情 <b>1</b>"  # a title is text, never markup
    from tests.helpers import make_event
    from tests.test_api import ingest_now
    from dashboard.dispatch import desk

    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=svc.clock(), lat=22.54, lon=114.02,
                                             title=title)]})
    with svc.engine.connect() as conn:
        inc = next(r for r in desk.queue(conn) if r["title"] == title)
    late = desk.write(svc, d.dispatch, inc["id"], FOUR, "olga", None, svc.clock() - 10 * MIN, svc.city.rules,
                      svc.city).tasks  # all four missed the 3-minute acknowledge deadline
    police = next(t for t in late if t["department"] == "police")
    dash_duo.start_server(app)
    dash_duo.get_logs()  # the sign-in page before the cookie is set is not under test
    driver = dash_duo.driver
    phone_screen(driver)
    open_signed_in(dash_duo, app, "zhang.wei", "/m")
    card = f"#decision-list #m-item-overdue-{inc['id']}"
    dash_duo.wait_for_element(f"{card} .m-row", timeout=15)
    assert js(dash_duo, "return window.innerWidth") == 390
    # one card for the incident, its four late departments on it, how late said in Chinese
    assert len(driver.find_elements("css selector", "#decision-list > li")) == 1
    assert dash_duo.find_element("#decision-count").text == "1"
    assert texts(dash_duo, f"{card} .m-item-title") == [title]
    assert js(dash_duo, "return document.querySelectorAll('.m-item-title b').length") == 0
    assert sorted(js(dash_duo, f"return [...document.querySelectorAll('{card} .m-row')].map(e => e.dataset.department)")
                  ) == sorted(FOUR)
    assert all(t.startswith("未按时签收 · 超时") and t.endswith("分钟") for t in texts(dash_duo, f"{card} .m-late"))
    assert "4个部门超时" in dash_duo.find_element(f"{card} .m-item-meta").text
    # the call link dials the department's duty line
    call = dash_duo.find_element(f"{card} .m-row[data-department='fire'] a.m-call")
    assert call.get_attribute("href") == "tel:+8675500000002" and call.text == "致电"
    assert js(dash_duo, "return document.documentElement.scrollWidth") <= 390
    assert dash_duo.find_element("#mobile-message").get_attribute("aria-live") == "polite"

    # re-dispatch the police: the row leaves at once, and never comes back while the server catches up
    row = f"[data-key='row-{police['id']}']"
    js(dash_duo, """
        window.__flicker = false;
        new MutationObserver(() => {
            const r = document.querySelector(arguments[0]);
            if (r && getComputedStyle(r).display !== 'none') window.__flicker = true;
        }).observe(document.documentElement, {childList: true, subtree: true, attributes: true});""", row)
    hidden_at_once = js(dash_duo, """
        document.querySelector(arguments[0] + ' .m-redispatch').click();
        return getComputedStyle(document.querySelector(arguments[0])).display === 'none';""", row)
    assert hidden_at_once
    dash_duo.wait_for_text_to_equal("#mobile-message", f"已向深圳市公安局重新派单：{title}", timeout=10)
    wait_for(lambda: js(dash_duo, f"return document.querySelectorAll('{card} .m-row').length") == 3,
             message="the server's card: three departments late")
    assert js(dash_duo, f"return !document.querySelector(\"{row}\")")
    assert js(dash_duo, "return window.__flicker") is False
    with svc.engine.connect() as conn:
        task = next(t for t in d.list_tasks(conn, incident_id=inc["id"]) if t["id"] == police["id"])
        audit = [h for h in d.history(conn, inc["id"]) if h["action"] == "redispatch"]
    assert task["version"] == police["version"] + 1 and task["ack_due_ms"] > svc.clock()
    assert [(h["actor"], h["task_id"]) for h in audit] == [("zhang.wei", police["id"])]

    # escalate: the button goes at once, the confirmation names the incident, the card shows the mark
    assert js(dash_duo, f"""
        document.querySelector("{card} .m-actions .m-escalate").click();
        return getComputedStyle(document.querySelector("{card} .m-actions .m-escalate")).display === 'none';""")
    dash_duo.wait_for_text_to_equal("#mobile-message", f"已升级至深圳市应急管理局：{title}", timeout=10)
    dash_duo.wait_for_text_to_equal(f"{card} .badge-escalated", "已升级", timeout=10)
    wait_for(lambda: texts(dash_duo, f"{card} .m-actions .m-btn") == ["知悉"], message="nothing left to escalate")
    # the confirmation fades
    wait_for(lambda: js(dash_duo, "return getComputedStyle(document.querySelector('#mobile-message .m-ok')).opacity")
             == "0", timeout=15, message="the confirmation faded")

    # acknowledge: the card leaves at once
    click(dash_duo, f"{card} .m-acknowledge")
    assert js(dash_duo, f"return !document.querySelector(\"{card}\") || "
                        f"getComputedStyle(document.querySelector(\"{card}\")).display === 'none'")
    dash_duo.wait_for_text_to_equal("#mobile-message", f"已知悉：{title}", timeout=10)
    dash_duo.wait_for_text_to_equal("#decision-list .m-empty", "暂无待决策事项", timeout=10)
    assert dash_duo.get_logs() == []


def test_in_chromium_a_fire_late_at_one_department_and_returned_by_another_is_one_card(make_app, redis_client,
                                                                                        dash_duo):
    from tests.helpers import open_signed_in
    from tests.test_escalation_page import click, js, texts
    from tests.helpers import make_event
    from tests.test_api import ingest_now
    from dashboard.dispatch import desk

    app = make_app(PANORAMA_POLL_MS=700, PANORAMA_CLOCK=city_clock("10:00"))
    make_user(app, "zhang.wei", "commander")
    svc = svc_of(app)
    title = "火情 2"
    ingest_now(app, {"incident": [make_event(1, kind="fire", severity=3, ts=svc.clock(), lat=22.54, lon=114.02,
                                             title=title)]})
    with svc.engine.connect() as conn:
        inc = next(r for r in desk.queue(conn) if r["title"] == title)
    sent = desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, svc.clock() - 10 * MIN,
                      svc.city.rules, svc.city).tasks  # both missed the 3-minute acknowledge deadline
    police = next(t for t in sent if t["department"] == "police")
    reason = "不属本部门职责 <i>无治安情况</i>"  # the department's reason is text, never markup
    desk.write(svc, d.transition, police["id"], "rejected", police["version"], "pol", reason, svc.clock())
    dash_duo.start_server(app)
    dash_duo.get_logs()
    phone_screen(dash_duo.driver)
    open_signed_in(dash_duo, app, "zhang.wei", "/m")
    card = f"#decision-list #m-item-rejected-{inc['id']}"
    dash_duo.wait_for_element(f"{card} .m-row", timeout=15)
    # one card: the fire brigade late, the police returning it with their reason
    assert len(dash_duo.driver.find_elements("css selector", "#decision-list > li")) == 1
    assert js(dash_duo, f"return [...document.querySelectorAll('{card} .m-row')].map(e => e.dataset.department)"
              ) == ["fire", "police"]
    assert texts(dash_duo, f"{card} .m-reason") == [reason]
    assert js(dash_duo, "return document.querySelectorAll('.m-reason i').length") == 0
    meta = dash_duo.find_element(f"{card} .m-item-meta").text
    assert "1个部门超时" in meta and "1个部门退回" in meta
    assert texts(dash_duo, f"{card} .m-actions .m-btn") == ["知悉", "升级", "同意退回"]
    # the minutes late count on between refreshes: three minutes later by the phone's clock, three more
    [late] = texts(dash_duo, f"{card} .m-late[data-due]")
    n = int(late.removeprefix("未按时签收 · 超时").removesuffix("分钟"))
    js(dash_duo, "window.__now = Date.now.bind(Date); Date.now = () => window.__now() + 3 * 60000;")
    wait_for(lambda: texts(dash_duo, f"{card} .m-late[data-due]") == [f"未按时签收 · 超时{n + 3}分钟"], timeout=20,
             message="the minutes late counted on")
    js(dash_duo, "Date.now = window.__now;")
    # accepting the return re-routes to the rules' other departments; the card changes (fire still late)
    click(dash_duo, f"{card} .m-approve")
    dash_duo.wait_for_text_to_equal("#mobile-message", f"已批准：{title}", timeout=10)
    late_card = f"#decision-list #m-item-overdue-{inc['id']}"
    wait_for(lambda: js(dash_duo, f"return [...document.querySelectorAll('{late_card} .m-row')]"
                                  ".map(e => e.dataset.department)") == ["fire"],
             message="the card now lists only the late fire brigade")
    with svc.engine.connect() as conn:
        deps = sorted(t["department"] for t in d.list_tasks(conn, incident_id=inc["id"]))
    assert deps == ["emergency", "fire", "health", "police"]  # police's return answered, two more sent
    assert dash_duo.get_logs() == []
