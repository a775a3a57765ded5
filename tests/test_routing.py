"""Routing rules: the Shenzhen pack loads, suggestions follow the rules, a broken file is refused by line."""

from __future__ import annotations

import shutil
import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.core.city import load_city
from dashboard.core.rules import RulesError, load_rules

CITY = load_city("shenzhen")
SZ = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 26, hour, minute, tzinfo=SZ)


def incident(kind: str, district: str = "440304", severity: int = 3, domain: str = "incident",
             street: str | None = None) -> dict:
    return {"domain": domain, "kind": kind, "district": district, "severity": severity, "street": street}


def write(tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path):
    return load_rules(path, CITY.departments, CITY.aliases, tz=CITY.timezone)


def test_shenzhen_rules_load_and_end_with_the_catch_all():
    rules = CITY.rules
    assert len(rules.rules) >= 20 and rules.rules[-1].catch_all
    assert not any(r.catch_all for r in rules.rules[:-1])
    assert rules.timezone == "Asia/Shanghai"


def test_fire_at_night_adds_the_district_office_and_day_does_not():
    night = CITY.rules.suggest(incident("fire"), at(23, 30))
    day = CITY.rules.suggest(incident("fire"), at(14, 0))
    assert night.rule_name == "fire_night" and day.rule_name == "fire"
    assert night.lead == day.lead == "fire"
    assert night.supporting == ("emergency", "police", "health", "district_440304")
    assert day.supporting == ("emergency", "police", "health")
    assert night.ack_deadline == at(23, 33) and day.resolve_deadline == at(16, 0)
    assert day.ack_due_ms == int(at(14, 3).timestamp() * 1000)


def test_time_of_day_is_the_citys_and_the_night_window_wraps_midnight():
    # 22:00-06:00 in Shenzhen is 14:00-22:00 UTC: the suggestion must read the city's clock, not UTC.
    expected = {(21, 59): "fire", (22, 0): "fire_night", (0, 0): "fire_night", (3, 0): "fire_night",
                (5, 59): "fire_night", (6, 0): "fire", (12, 0): "fire"}
    for (h, m), rule in expected.items():
        ms = int(at(h, m).timestamp() * 1000)
        assert CITY.rules.suggest(incident("fire"), ms).rule_name == rule, (h, m)


def test_daytime_window_does_not_wrap(tmp_path):
    rules = load(write(tmp_path, """\
        rules:
          - name: office_hours
            match: {time: "09:00-18:00"}
            lead: urban_mgmt
            acknowledge_within: PT1H
            resolve_within: P1D
          - name: catch_all
            lead: district_office
            acknowledge_within: PT2H
            resolve_within: P1D
        """))
    names = {h: rules.suggest(incident("public_complaint"), at(h)).rule_name for h in (8, 9, 17, 18, 23)}
    assert names == {8: "catch_all", 9: "office_hours", 17: "office_hours", 18: "catch_all", 23: "catch_all"}


def test_first_matching_rule_wins_and_severity_ranges_select():
    rules = CITY.rules
    assert rules.suggest(incident("flood", severity=2), at(10)).rule_name == "flood"
    assert rules.suggest(incident("flood", severity=3), at(10)).rule_name == "flood_major"
    assert rules.suggest(incident("accident", domain="traffic", severity=3), at(10)).departments == (
        "traffic_police", "health")
    assert rules.suggest(incident("accident", domain="traffic", severity=4), at(10)).rule_name == \
        "traffic_accident_critical"
    assert rules.suggest(incident("medical", severity=1), at(10)).departments == ("health",)
    assert rules.suggest(incident("water_level", domain="environment"), at(10)).lead == "water"


def test_district_rules_and_the_catch_all_resolve_the_district_office():
    rules = CITY.rules
    baoan = rules.suggest(incident("pollution_discharge", "440306", domain="environment"), at(10))
    futian = rules.suggest(incident("pollution_discharge", "440304", domain="environment"), at(10))
    assert baoan.rule_name == "pollution_discharge_maozhou" and baoan.supporting == ("water", "district_440306")
    assert futian.rule_name == "pollution_discharge" and futian.supporting == ("water",)
    other = rules.suggest(incident("theft", "440308", severity=2, domain="security"), at(10))
    assert (other.rule_name, other.lead, other.supporting) == ("catch_all", "district_440308", ())
    # no street named: the street office stands in as the district office
    complaint = rules.suggest(incident("public_complaint", "440305", severity=1), at(10))
    assert complaint.departments == ("district_440305", "urban_mgmt")


def test_street_office_is_the_office_of_the_incidents_street_however_it_is_spelled():
    rules = CITY.rules
    codes = {d["code"] for d in CITY.departments}
    offices = [d for d in CITY.departments if d["kind"] == "street_office"]
    assert len(offices) == 71 and all(d["district"] in CITY.by_code for d in offices)
    # every street of the registry has its office, and every district its government
    assert {(d["district"], d["street"]) for d in offices} == {
        (x.code, s.name) for x in CITY.districts for s in x.streets}
    assert {f"district_{x.code}" for x in CITY.districts} <= codes
    for street in ("莲花街道", "莲花", "Lianhua", " lianhua ", "street_440304_lianhua"):
        s = rules.suggest(incident("public_complaint", "440304", severity=1, street=street), at(10))
        assert (s.rule_name, s.lead, s.supporting) == ("public_complaint", "street_440304_lianhua", ("urban_mgmt",))
    # a street of another district, or one the pack does not know: the district office
    for street in ("南头街道", "Atlantis", ""):
        s = rules.suggest(incident("public_complaint", "440304", severity=1, street=street), at(10))
        assert s.lead == "district_440304", street
    flood = rules.suggest(incident("flood", "440305", severity=4, street="南头街道"), at(10))
    assert flood.rule_name == "flood_major" and flood.supporting[-1] == "street_440305_nantou"
    assert rules.resolve("district_office", {"district": "440305"}) == "district_440305"
    assert rules.resolve("fire", {"district": "440305"}) == "fire"


def test_street_office_needs_street_offices_in_the_pack(tmp_path):
    text = doc(FIRE.replace("[police]", "[police, street_office]"), CATCH_ALL)
    assert load(write(tmp_path, text)).rules[0].supporting == ("police", "street_office")
    without = [d for d in CITY.departments if d.get("kind") != "street_office"]
    with pytest.raises(RulesError) as caught:
        load_rules(write(tmp_path, text), without, CITY.aliases, tz=CITY.timezone)
    assert f"rules.yaml line {line_of(text, 'street_office')}: street_office: departments.yaml has no street " \
           "office" in str(caught.value)


FIRE = """\
  - name: fire
    match: {domain: incident, kind: fire, severity: 3+, district: [futian], time: "22:00-06:00"}
    lead: fire
    supporting: [police]
    acknowledge_within: PT3M
    resolve_within: PT2H
"""
CATCH_ALL = """\
  - name: catch_all
    lead: district_office
    acknowledge_within: PT30M
    resolve_within: P1D
"""


def doc(*rules: str) -> str:
    return "rules:\n" + "".join(rules)


# (case, file text, text on the offending line (None: line 1), the problem reported)
BROKEN = [
    ("unknown department", doc(FIRE.replace("lead: fire", "lead: fyre"), CATCH_ALL), "fyre",
     "unknown department 'fyre'"),
    ("unknown supporting department", doc(FIRE.replace("[police]", "[police, polise]"), CATCH_ALL), "polise",
     "unknown department 'polise'"),
    ("unknown domain", doc(FIRE.replace("domain: incident", "domain: weather"), CATCH_ALL), "weather",
     "unknown domain 'weather'"),
    ("bad severity range", doc(FIRE.replace("severity: 3+", "severity: 4-2"), CATCH_ALL), "4-2",
     "bad severity range '4-2'"),
    ("severity out of scale", doc(FIRE.replace("severity: 3+", "severity: 5"), CATCH_ALL), "severity: 5",
     "bad severity range 5"),
    ("bad time window", doc(FIRE.replace("22:00-06:00", "25:00-06:00"), CATCH_ALL), "25:00",
     "bad time-of-day window '25:00-06:00'"),
    ("empty time window", doc(FIRE.replace("22:00-06:00", "06:00-06:00"), CATCH_ALL), "06:00-06:00",
     "bad time-of-day window"),
    ("unknown district", doc(FIRE.replace("[futian]", "[futian, atlantis]"), CATCH_ALL), "atlantis",
     "unknown district 'atlantis'"),
    ("bad duration", doc(FIRE.replace("PT3M", "PT3X"), CATCH_ALL), "PT3X", "bad duration 'PT3X'"),
    ("minutes as a bare number", doc(FIRE.replace("PT3M", "3"), CATCH_ALL), "acknowledge_within: 3",
     "bad duration 3"),
    ("resolve before acknowledge", doc(FIRE.replace("PT2H", "PT1M"), CATCH_ALL), "PT1M",
     "resolve_within is shorter than acknowledge_within"),
    ("unknown key in a rule", doc(FIRE.replace("lead: fire", "lead: fire\n    colour: red"), CATCH_ALL),
     "colour", "unknown key 'colour'"),
    ("unknown key in a match", doc(FIRE.replace("kind: fire,", "kind: fire, street: x,"), CATCH_ALL), "match:",
     "unknown key 'street'"),
    ("missing key", doc(FIRE.replace("    acknowledge_within: PT3M\n", ""), CATCH_ALL), "- name: fire",
     "missing key 'acknowledge_within'"),
    ("duplicate key", doc(FIRE.replace("lead: fire", "lead: fire\n    lead: police"), CATCH_ALL), "lead: police",
     "duplicate key 'lead'"),
    ("missing catch-all", doc(FIRE), "- name: fire", "missing catch-all"),
    ("catch-all not last", doc(CATCH_ALL, FIRE, CATCH_ALL.replace("catch_all", "catch_all_2")),
     "- name: catch_all\n", "catch-all rule 'catch_all' (no match) must be the last rule"),
    ("duplicate rule name", doc(FIRE, FIRE.replace("name: fire", "name: fire "), CATCH_ALL), "name: fire \n",
     "duplicate rule name 'fire'"),
    ("not YAML", doc(FIRE.replace("supporting: [police]", "supporting: [police"), CATCH_ALL), "acknowledge_within",
     "not valid YAML"),
    ("empty file", "", None, "the file is empty"),
]


def line_of(text: str, marker: str | None) -> int:
    return 1 if marker is None else text[:text.index(marker)].count("\n") + 1


@pytest.mark.parametrize("text, marker, problem", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_rules_file_is_refused_naming_the_line(tmp_path, text, marker, problem):
    with pytest.raises(RulesError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    assert f"rules.yaml line {line_of(text, marker)}: {problem}" in message, message


def test_every_problem_is_reported_with_its_own_line(tmp_path):
    text = doc(FIRE.replace("lead: fire", "lead: fyre").replace("PT3M", "soon"), CATCH_ALL)
    with pytest.raises(RulesError) as caught:
        load(write(tmp_path, text))
    assert [line for line, _ in caught.value.problems] == [line_of(text, "fyre"), line_of(text, "soon")]


def test_city_pack_with_a_broken_rules_file_is_refused(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(CITY.path, pack)
    rules = pack / "rules.yaml"
    text = rules.read_text(encoding="utf-8").replace("lead: water\n", "lead: waterworks\n", 1)
    rules.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=rf"rules.yaml line {line_of(text, 'waterworks')}: unknown department"):
        load_city(str(pack)).rules
