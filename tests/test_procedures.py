"""Standard procedures (预案): the city pack's checklists, ticked by officers and the responsible department's
liaisons (audited, said in words), overdue steps escalated through the duty rosters as tasks are."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.core.city import load_city
from dashboard.core.i18n import audit_text
from dashboard.core.procedures import load_procedures
from dashboard.core.rules import RulesError
from dashboard.dispatch import board as d
from dashboard.dispatch import desk
from dashboard.dispatch.deadlines import DeadlineChecker
from dashboard.storage.models import outbox
from feeds.pipeline import now_ms
from tests.test_dispatch_api import Session, make_user
from tests.test_major import open_incident

MIN = 60_000


def test_the_shenzhen_pack_has_checklists_and_a_broken_one_is_refused_by_line(tmp_path):
    city = load_city("shenzhen")
    fire = city.procedures.steps("fire")
    assert [s.step for s in fire][:2] == ["cordon", "evacuate"] and fire[0].department == "police"
    assert city.procedures.steps("public_complaint") == ()
    bad = tmp_path / "procedures.yaml"
    bad.write_text("procedures:\n  - kind: fire\n    steps:\n"
                   "      - {step: a, title: 甲, title_en: A, department: nobody}\n"
                   "      - {step: a, title: 乙, title_en: B, department: fire, due_min: 0}\n", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_procedures(bad, [dep["code"] for dep in city.departments])
    assert "line 5" in str(err.value) and "due_min" in str(err.value)
    bad.write_text("procedures:\n  - kind: fire\n    steps:\n"
                   "      - {step: a, title: 甲, title_en: A, department: nobody}\n"
                   "      - {step: a, title: 乙, title_en: B, department: fire}\n", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_procedures(bad, [dep["code"] for dep in city.departments])
    assert "line 4: unknown department 'nobody'" in str(err.value) and "line 5: step 'a' is listed twice" in str(err.value)


def dispatched(app, minutes_ago: int = 0) -> dict:
    svc = app.server.extensions["panorama"]
    inc = open_incident(app)
    desk.write(svc, d.dispatch, inc["id"], ["fire", "police"], "olga", None, now_ms() - minutes_ago * MIN,
               svc.city.rules, svc.city)
    return inc


@pytest.fixture
def people(app):
    make_user(app, "olga", "officer")
    make_user(app, "fred", "liaison", "fire")
    make_user(app, "cora", "commander")
    return {"officer": Session(app, "olga"), "fire": Session(app, "fred"), "commander": Session(app, "cora")}


def test_ticked_by_the_officer_and_the_departments_liaison_only_audited_in_words(app, people):
    inc = dispatched(app)
    doc = people["officer"].get(f"/api/incidents/{inc['id']}").json
    steps = {s["step"]: s for s in doc["procedure"]}
    assert list(steps)[:3] == ["cordon", "evacuate", "fire_attack"]
    assert steps["cordon"]["due"] is not None and steps["public_notice"]["due"] is None  # no deadline in the pack
    assert steps["cordon"]["done_at"] is None and not steps["cordon"]["escalated"]
    base = f"/api/incidents/{inc['id']}/steps"
    assert people["fire"].post(f"{base}/cordon").status_code == 403  # the police's step
    assert people["commander"].post(f"{base}/cordon").status_code == 403
    r = people["fire"].post(f"{base}/fire_attack", {"note": "两车到场"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert next(s for s in r.json["procedure"] if s["step"] == "fire_attack")["done_by"] == "fred"
    assert people["officer"].post(f"{base}/cordon").status_code == 200
    again = people["officer"].post(f"{base}/cordon")
    assert again.status_code == 422 and again.json["error"]["code"] == "invalid_transition"
    assert people["officer"].post(f"{base}/no_such_step").status_code == 404
    assert people["officer"].post("/api/incidents/999999/steps/cordon").status_code == 404
    assert people["officer"].client.post(f"{base}/evacuate").status_code == 403  # no CSRF header
    history = [h for h in people["officer"].get(f"/api/incidents/{inc['id']}").json["history"]
               if h["action"] == "procedure"]
    assert [(h["actor"], h["code"], h["note"]) for h in history] == [("fred", "step_done", "两车到场"),
                                                                     ("olga", "step_done", None)]
    names = {"fire": "消防", "police": "公安"}
    assert audit_text(history[0]["code"], history[0]["params"], "zh", names) == "预案步骤完成：灭火救援力量到场展开（消防）"
    assert audit_text(history[1]["code"], history[1]["params"], "en", {"police": "Police"}) == (
        "procedure step done: Cordon off the area and divert traffic (Police)")


def test_overdue_steps_are_escalated_once_through_the_duty_roster_and_a_tick_stops_it(app, people):
    svc = app.server.extensions["panorama"]
    inc = dispatched(app, minutes_ago=16)  # cordon and fire_attack (15 min) are late; evacuate (20) not yet
    checker = DeadlineChecker(svc)
    assert [i["id"] for i in checker.check_steps(now_ms())] == [inc["id"]]
    assert checker.check_steps(now_ms()) == []  # once
    doc = people["officer"].get(f"/api/incidents/{inc['id']}").json
    assert sorted(s["step"] for s in doc["procedure"] if s["escalated"]) == ["cordon", "fire_attack"]
    overdue = [h for h in doc["history"] if h["code"] == "step_overdue"]
    assert sorted(h["params"]["step_en"] for h in overdue) == ["Cordon off the area and divert traffic",
                                                               "Fire crews on scene and deployed"]
    with svc.engine.connect() as conn:
        keys = conn.execute(select(outbox.c.key, outbox.c.status)).all()
    police = [k for k, status in keys if k.startswith(f"esc:step:{inc['id']}.cordon:")]
    assert police and all(status == "pending" or status == "sending" or status == "sent"
                          for k, status in keys if k in police)
    assert people["officer"].post(f"/api/incidents/{inc['id']}/steps/cordon").status_code == 200
    with svc.engine.connect() as conn:
        left = conn.execute(select(outbox.c.status).where(outbox.c.key.startswith(
            f"esc:step:{inc['id']}.cordon:"), outbox.c.status == "pending")).all()
    assert left == []  # the tick cancelled what was not sent yet
    # 20 minutes on, evacuate is late too
    assert [i["id"] for i in checker.check_steps(now_ms() + 5 * MIN)] == [inc["id"]]
