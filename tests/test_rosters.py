"""Duty rosters (rosters.yaml): who is on duty at an instant, across midnight, with overrides; refused by line."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.core.city import load_city
from dashboard.core.rosters import Override, load_rosters
from dashboard.core.rules import RulesError

CITY = load_city("shenzhen")
DEPARTMENTS = [d["code"] for d in CITY.departments]
MIN = 60_000

GOOD = """\
policies:
  - name: std
    levels:
      - {role: officer, after: PT0M, channels: [sms, email]}
      - {role: deputy, after: PT10M}
      - {role: commander, after: PT20M, channels: [webhook]}
    rounds: 2
    round_every: PT30M
notify: {environment_duty: ecology}
fallback: ecology
rosters:
  - department: ecology
    policy: std
    webhook: http://127.0.0.1:9/hook
    people:
      - {id: ann, name: 安娜, name_en: An Na, role: officer, phone: "+8675500001901", email: ann@duty.example.org}
      - {id: bo, name: 薄波, name_en: Bo Bo, role: officer, phone: "+8675500001902", email: bo@duty.example.org}
      - {id: cai, name: 蔡军, name_en: Cai Jun, role: deputy, phone: "+8675500001903", email: cai@duty.example.org}
      - {id: dai, name: 戴明, name_en: Dai Ming, role: commander, phone: "+8675500001904", email: dai@duty.example.org}
    shifts:
      - {name: day, days: daily, time: "08:00-20:00", who: [ann, cai]}
      - {name: night, days: [mon, tue, wed, thu, fri, sat, sun], time: "20:00-08:00", who: [bo, cai]}
      - {name: leader, time: "00:00-24:00", who: [dai]}
"""


def write(tmp_path, text: str):
    path = tmp_path / "rosters.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path, text: str = GOOD):
    return load_rosters(write(tmp_path, text), DEPARTMENTS, tz="Asia/Shanghai")


def at(local: str, tz: str = "Asia/Shanghai") -> int:
    """Return epoch ms of a wall-clock time in ``tz`` ("2026-12-07 19:59")."""
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def ids(people) -> list[str]:
    return [p.id for p in people]


def test_day_and_night_shifts_hand_over_at_their_hours_and_the_night_runs_past_midnight(tmp_path):
    r = load(tmp_path)
    eco = r.rosters["ecology"]
    # Monday 2026-12-07 in Shenzhen
    assert ids(r.on_duty(eco, "officer", at("2026-12-07 07:59"))) == ["bo"]  # Sunday's night shift, still on
    assert ids(r.on_duty(eco, "officer", at("2026-12-07 08:00"))) == ["ann"]
    assert ids(r.on_duty(eco, "officer", at("2026-12-07 19:59"))) == ["ann"]
    assert ids(r.on_duty(eco, "officer", at("2026-12-07 20:00"))) == ["bo"]
    assert ids(r.on_duty(eco, "officer", at("2026-12-08 00:30"))) == ["bo"]  # across midnight
    assert ids(r.on_duty(eco, "deputy", at("2026-12-08 03:00"))) == ["cai"]
    assert ids(r.on_duty(eco, "commander", at("2026-12-08 03:00"))) == ["dai"]


def test_the_city_time_decides_not_utc_and_shanghai_has_no_daylight_saving(tmp_path):
    r = load(tmp_path)
    eco = r.rosters["ecology"]
    # 12:30 UTC is 20:30 in Shenzhen all year round: the night officer, in January and in July alike
    for month in ("01", "07"):
        utc = int(datetime.fromisoformat(f"2026-{month}-15T12:30:00+00:00").timestamp() * 1000)
        assert r.local(utc)[1] == 20 * 60 + 30
        assert ids(r.on_duty(eco, "officer", utc)) == ["bo"]
        utc = int(datetime.fromisoformat(f"2026-{month}-15T00:30:00+00:00").timestamp() * 1000)
        assert ids(r.on_duty(eco, "officer", utc)) == ["ann"]  # 08:30 local


def test_a_night_shift_listed_for_some_days_covers_the_morning_after_only_those(tmp_path):
    text = GOOD.replace('{name: night, days: [mon, tue, wed, thu, fri, sat, sun], time: "20:00-08:00", who: [bo, cai]}',
                        '{name: night, days: [fri], time: "20:00-08:00", who: [bo, cai]}\n'
                        '      - {name: night, days: [sat, sun, mon, tue, wed, thu], time: "20:00-08:00", who: [ann, cai]}')
    r = load(tmp_path, text)
    eco = r.rosters["ecology"]
    assert ids(r.on_duty(eco, "officer", at("2026-12-11 23:00"))) == ["bo"]  # Friday night
    assert ids(r.on_duty(eco, "officer", at("2026-12-12 07:59"))) == ["bo"]  # Saturday morning: Friday's shift
    assert ids(r.on_duty(eco, "officer", at("2026-12-12 20:00"))) == ["ann"]  # Saturday night


def test_an_override_takes_the_role_for_its_time_and_no_longer(tmp_path):
    r = load(tmp_path)
    eco = r.rosters["ecology"]
    start, end = at("2026-12-07 10:00"), at("2026-12-07 14:00")
    cover = Override("ecology", "bo", "officer", start, end, id=1)
    other = Override("police", "bo", "officer", start, end, id=2)  # another department's: not this one's
    assert ids(r.on_duty(eco, "officer", start - 1, [cover, other])) == ["ann"]
    assert ids(r.on_duty(eco, "officer", start, [cover, other])) == ["bo"]
    assert ids(r.on_duty(eco, "officer", end - 1, [cover])) == ["bo"]
    assert ids(r.on_duty(eco, "officer", end, [cover])) == ["ann"]
    assert ids(r.on_duty(eco, "deputy", start, [cover])) == ["cai"]  # other roles as the shifts say
    # a deputy may stand in as the officer; two overrides at once: both are told
    both = [cover, Override("ecology", "cai", "officer", start, end, id=3)]
    assert ids(r.on_duty(eco, "officer", start, both)) == ["bo", "cai"]


def test_the_ladder_climbs_each_round_with_who_is_on_duty_when_each_step_is_due(tmp_path):
    r = load(tmp_path)
    start = at("2026-12-07 19:45")
    steps = r.steps("ecology", start)
    assert [(s.round, s.level, s.role, (s.due_ms - start) // MIN, ids(s.people), s.channels) for s in steps] == [
        (1, 1, "officer", 0, ["ann"], ("sms", "email")),
        (1, 2, "deputy", 10, ["cai"], ("sms", "email")),
        (1, 3, "commander", 20, ["dai"], ("webhook",)),
        (2, 1, "officer", 30, ["bo"], ("sms", "email")),  # 20:15: the night officer by then
        (2, 2, "deputy", 40, ["cai"], ("sms", "email")),
        (2, 3, "commander", 50, ["dai"], ("webhook",))]
    # a department without a roster escalates through the fallback's; none at all without a fallback
    assert ids(r.on_duty_level("district_440303", 1, start)) == ["ann"]
    assert r.roster_for("district_440303").department == "ecology"


# (the text replaced in GOOD -> its replacement, text on the offending line, the problem reported)
BAD = [
    ("department: ecology", "department: ecologee", "department: ecologee", "unknown department 'ecologee'"),
    ("policy: std\n    webhook", "policy: fast\n    webhook", "policy: fast", "unknown policy 'fast'"),
    ('who: [ann, cai]}', 'who: [ann, zed]}', "who: [ann, zed]", "'zed' is not one of ecology's people"),
    ('"08:00-20:00"', '"08:00-25:00"', '"08:00-25:00"', "bad shift time"),
    ("days: daily", "days: [mon, tuesday]", "tuesday", "bad days"),
    ('phone: "+8675500001902"', 'phone: 8675500001902', "8675500001902", "phone"),
    ("{role: commander, after: PT20M", "{role: commander, after: PT30M", "- name: std", "longer than the last"),
    ("{role: deputy, after: PT10M}", "{role: deputy, after: PT0M}", "- name: std", "later than the one before"),
    ("role: commander, phone", "role: chief, phone", "role: chief", "role"),
    ("fallback: ecology", "fallback: police", "fallback: police", "'police' has no roster here"),
    ("notify: {environment_duty: ecology}", "notify: {environment_duty: water}", "notify:", "no roster here"),
    ("    rounds: 2", "    rounds: 2\n    color: red", "color: red", "unknown key 'color'"),
    # the night shift gone: nobody is the officer from 20:00 to 08:00
    ('      - {name: night, days: [mon, tue, wed, thu, fri, sat, sun], time: "20:00-08:00", who: [bo, cai]}\n', "",
     "shifts:", "no officer on duty mon 00:00-08:00"),
]


@pytest.mark.parametrize("old,new,where,problem", BAD, ids=[b[3][:30] for b in BAD])
def test_a_broken_file_is_refused_naming_the_line(tmp_path, old, new, where, problem):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(RulesError) as err:
        load(tmp_path, text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if where in s)
    said = str(err.value)
    assert f"rosters.yaml line {line}: " in said and problem in said, said


def test_the_shenzhen_pack_loads_and_every_alert_notify_name_reaches_a_duty(tmp_path):
    r = CITY.rosters
    assert {"police", "fire", "emergency", "ecology", "traffic_police"} <= set(r.rosters)
    for rule in CITY.alert_rules.rules:
        assert rule.notify is None or rule.notify in r.notify, rule.id
    monday_3am = at("2026-12-07 03:00")
    for dep, roster in r.rosters.items():
        for level in range(1, len(roster.policy.levels) + 1):
            assert r.on_duty_level(dep, level, monday_3am), (dep, level)
    assert r.roster_for("street_440304_lianhua").department == r.fallback == "emergency"


def test_the_coverage_check_finds_the_gap_that_asking_each_minute_finds():
    """rosters._uncovered marks the week shift by shift; the reference asks Shift.covers for every minute."""
    import random
    from types import SimpleNamespace

    from dashboard.core.rosters import WEEK_MIN, Shift, _uncovered

    def reference(holders):
        start = None
        for m in range(WEEK_MIN):
            on = any(s.covers(m // 1440, m % 1440) for s in holders)
            if not on and start is None:
                start = m
            elif on and start is not None:
                return start, m
        return (start, WEEK_MIN) if start is not None else None

    rnd = random.Random(15)
    people = {"a": SimpleNamespace(role="officer"), "b": SimpleNamespace(role="deputy")}
    edges = [0, 1, 480, 1200, 1439, 1440]
    for _ in range(300):
        shifts = tuple(Shift(f"s{i}", tuple(sorted(rnd.sample(range(7), rnd.randint(1, 7)))),
                             rnd.choice(edges[:-1] + [rnd.randrange(1440)]), rnd.choice(edges + [rnd.randrange(1, 1441)]),
                             tuple(rnd.sample(["a", "b"], rnd.randint(1, 2)))) for i in range(rnd.randint(0, 4)))
        roster = SimpleNamespace(shifts=shifts, people=people)
        for role in ("officer", "deputy"):
            holders = [s for s in shifts if any(people[p].role == role for p in s.who)]
            assert _uncovered(roster, role) == reference(holders), shifts
