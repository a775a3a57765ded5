"""alerts.yaml and zones.yaml are refused by line like rules.yaml: each problem as ``file line N: problem``."""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboard.core.alerts import load_alert_rules, load_zones, place_of, say
from dashboard.core.city import load_city
from dashboard.core.rules import RulesError

CITY = load_city("shenzhen")

GOOD = """\
rules:
  - id: aqi
    type: threshold
    level: orange
    kind: aqi
    op: ">"
    value: 150
    for: PT10M
    say: {zh: "{place}空气质量指数 {value}", en: "{place}: AQI {value}"}
"""

ZONES = """\
zones:
  - code: port
    name: 福田口岸
    name_en: Futian Port
    district: futian
    kind: port_of_entry
    polygon: [[114.066, 22.5125], [114.074, 22.5125], [114.074, 22.5195], [114.066, 22.5195]]
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def load(tmp_path, text: str):
    return load_alert_rules(write(tmp_path, "alerts.yaml", text), CITY.aliases, CITY.zones, CITY.kinds,
                            tz=CITY.timezone)


def test_a_good_file_loads(tmp_path):
    [rule] = load(tmp_path, GOOD).rules
    assert (rule.id, rule.type, rule.level, rule.scope, rule.kind, rule.op, rule.value) == (
        "aqi", "threshold", "orange", "district", ("aqi",), ">", 150)
    assert rule.for_.total_seconds() == 600 and rule.severity == 3


# (case, the text replaced in GOOD -> its replacement, text on the offending line, the problem reported)
BROKEN = [
    ("unknown key", ("    for: PT10M\n", "    for: PT10M\n    fro: PT10M\n"), "fro:", "unknown key 'fro'"),
    ("bad level", ("level: orange", "level: purple"), "level:", "level: Input should be 'blue', 'yellow', 'orange'"),
    ("bad type", ("type: threshold", "type: forecast"), "type:", "type: Input should be 'threshold'"),
    ("threshold without op", ('    op: ">"\n    value: 150\n', ""), "- id: aqi", "a threshold rule needs 'op', 'value'"),
    ("bad duration", ("for: PT10M", "for: 10 minutes"), "for:", "bad duration '10 minutes'"),
    ("unknown placeholder", ('AQI {value}"}', 'AQI {valeu}"}'), "say:", "unknown placeholder {valeu}"),
    ("missing English", (', en: "{place}: AQI {value}"', ""), "say:", "missing key 'en'"),
    ("count on a threshold", ("    for: PT10M\n", "    for: PT10M\n    count: 3\n"), "- id: aqi",
     "'count' means nothing to a threshold rule"),
    ("unknown zone", ("    kind: aqi\n", "    kind: aqi\n    scope: zone\n    zone: atlantis\n"), "zone: atlantis",
     "unknown zone 'atlantis'"),
    ("unknown district", ("    kind: aqi\n", "    kind: aqi\n    districts: [futian, atlantis]\n"), "districts:",
     "unknown district 'atlantis'"),
    ("kind not in the catalogue", ("kind: aqi", "kind: aqii"), "kind: aqii", "kind 'aqii' is not in the city's"),
    ("bad kind", ("kind: aqi", "kind: AQI!"), "kind:", "bad kind 'AQI!'"),
    ("bad mute window", ("    for: PT10M\n", "    for: PT10M\n    mute: [\"25:00-05:00\"]\n"), "mute:",
     "bad time-of-day window '25:00-05:00'"),
    ("incident without a district", ("    kind: aqi\n", "    kind: aqi\n    scope: city\n    opens_incident: true\n"),
     "- id: aqi", "a rule of scope city cannot open one"),
    ("geofence outside a zone", ("type: threshold", "type: geofence"), "- id: aqi", "a geofence rule needs 'zone'"),
    ("silence of a street", ("type: threshold\n", "type: silence\n    domain: traffic\n    gap: PT5M\n    scope: street\n"),
     "- id: aqi", "a silence rule watches the whole feed (scope: city) or each district's"),
    ("duplicate key", ("    level: orange\n", "    level: orange\n    level: red\n"), "level: red",
     "duplicate key 'level'"),
    ("not YAML", ("say: {zh:", "say: [zh:"), "say:", "not valid YAML"),
]


@pytest.mark.parametrize("case,change,needle,problem", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_rule_is_refused_naming_its_line(tmp_path, case, change, needle, problem):
    old, new = change
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(RulesError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert f"alerts.yaml line {line_of(text, needle)}: " in message and problem in message, message


def test_every_problem_is_reported_at_once_and_a_duplicate_id_names_the_first(tmp_path):
    text = GOOD + GOOD.removeprefix("rules:\n").replace("kind: aqi", "kind: pm25")
    with pytest.raises(RulesError) as caught:
        load(tmp_path, text)
    second = [i for i, line in enumerate(text.splitlines(), 1) if "- id: aqi" in line]
    assert str(caught.value) == f"alerts.yaml line {second[1]}: duplicate rule id 'aqi' (first at line {second[0]})"
    with pytest.raises(RulesError) as caught:
        load(tmp_path, text.replace("level: orange", "level: pink").replace('"<"', '"<<"'))
    assert str(caught.value).count("alerts.yaml line") == 2


def test_an_empty_file_says_what_it_expected(tmp_path):
    with pytest.raises(RulesError, match=r"alerts.yaml line 1: the file is empty: expected a `rules:` list"):
        load(tmp_path, "# nothing yet\n")
    with pytest.raises(RulesError, match=r"zones.yaml line 1: the file is empty: expected a `zones:` list"):
        load_zones(write(tmp_path, "zones.yaml", ""), CITY.aliases)


ZONES_BROKEN = [
    ("crossing polygon", ("[114.074, 22.5125], [114.074, 22.5195]", "[114.074, 22.5195], [114.074, 22.5125]"),
     "polygon:", "the polygon crosses itself"),
    ("lat and lon swapped", ("[114.066, 22.5125]", "[22.5125, 114.066]"), "polygon:", "is not [lon, lat]"),
    ("unknown district", ("district: futian", "district: atlantis"), "district:", "unknown district 'atlantis'"),
    ("two corners", (", [114.074, 22.5195], [114.066, 22.5195]", ""), "polygon:", "polygon: List should have at least 3"),
    ("no English name", ("    name_en: Futian Port\n", ""), "- code: port", "missing key 'name_en'"),
    ("unknown key", ("    kind: port_of_entry\n", "    kind: port_of_entry\n    colour: red\n"), "colour:",
     "unknown key 'colour'"),
]


@pytest.mark.parametrize("case,change,needle,problem", ZONES_BROKEN, ids=[b[0] for b in ZONES_BROKEN])
def test_a_broken_zone_is_refused_naming_its_line(tmp_path, case, change, needle, problem):
    old, new = change
    assert old in ZONES
    text = ZONES.replace(old, new, 1)
    with pytest.raises(RulesError) as caught:
        load_zones(write(tmp_path, "zones.yaml", text), CITY.aliases)
    message = str(caught.value)
    assert f"zones.yaml line {line_of(text, needle)}: " in message and problem in message, message


def test_a_duplicate_zone_code_is_refused(tmp_path):
    text = ZONES + ZONES.removeprefix("zones:\n")
    second = len(ZONES.splitlines()) + 1
    assert "code: port" in text.splitlines()[second - 1]
    with pytest.raises(RulesError, match=rf"zones.yaml line {second}: duplicate zone code 'port'"):
        load_zones(write(tmp_path, "zones.yaml", text), CITY.aliases)


def test_a_broken_pack_file_stops_the_city_loading(tmp_path):
    import shutil

    from dashboard.core.city import PACKS_DIR

    shutil.copytree(PACKS_DIR / "shenzhen", tmp_path / "pack")
    (tmp_path / "pack" / "alerts.yaml").write_text(GOOD.replace("level: orange", "level: pink"), encoding="utf-8")
    with pytest.raises(RulesError, match=r"alerts.yaml line 4: level"):
        load_city(str(tmp_path / "pack")).alert_rules


class Ev:
    def __init__(self, **kw):
        self.__dict__.update({"domain": "security", "kind": "crowd_density", "district": "440304", "street": None,
                              "lat": None, "lon": None, "value": None, **kw})


def test_where_an_event_counts_for_a_rule():
    rules = CITY.alert_rules
    port = rules.by_id["crowd_futian_port"]
    inside = {"lat": 22.5160, "lon": 114.0700}
    assert place_of(port, Ev(value=3.6, **inside), rules.zones).scope == "zone:futian_port"
    assert place_of(port, Ev(value=3.0, **inside), rules.zones) is None  # too thin to count
    assert place_of(port, Ev(value=3.6, lat=22.6, lon=114.0), rules.zones) is None  # elsewhere
    assert place_of(port, Ev(value=3.6), rules.zones) is None  # no coordinates: not known to be inside
    assert place_of(port, Ev(value=3.6, kind="theft", **inside), rules.zones) is None
    aqi = rules.by_id["aqi_moderate"]
    assert place_of(aqi, Ev(kind="aqi", domain="environment", value=80), rules.zones).scope == "district:440304"
    assert place_of(aqi, Ev(kind="aqi", domain="environment"), rules.zones) is None  # no measurement
    assert say(aqi, "en", value=180.4, baseline=None, place="Futian") == \
        "Futian: AQI 180, above 150 for 10 minutes (moderate pollution)"


def test_a_mute_window_wraps_midnight_in_the_city_time(tmp_path):
    rule = load(tmp_path, GOOD.replace("    for: PT10M\n", '    for: PT10M\n    mute: ["23:00-05:00"]\n')).rules[0]
    at = lambda hhmm: int(datetime.fromisoformat(f"2026-12-06T{hhmm}:00+08:00").timestamp() * 1000)  # noqa: E731
    assert rule.muted(at("23:30"), "Asia/Shanghai") == (23 * 60, 5 * 60)
    assert rule.muted(at("04:59"), "Asia/Shanghai") is not None
    assert rule.muted(at("05:00"), "Asia/Shanghai") is None
    assert rule.muted(at("12:00"), "Asia/Shanghai") is None


def test_poisson_tail_matches_the_sum_and_survives_large_means():
    import math

    from dashboard.core.alerts import poisson_tail

    def direct(x, mu):  # the tail's terms themselves (1 minus the head loses a tiny tail to cancellation)
        return math.fsum(math.exp(-mu + i * math.log(mu) - math.lgamma(i + 1)) for i in range(x, x + 300))
    for x, mu in ((6, 1.0), (5, 1.0), (12, 1.0), (30, 10.0), (3, 0.2)):
        assert math.isclose(poisson_tail(x, mu), direct(x, mu), rel_tol=1e-9), (x, mu)
    assert poisson_tail(3, 5.0) == 1.0 and poisson_tail(0, 5.0) == 1.0  # at or below the mean: not improbable
    assert 0 < poisson_tail(1100, 1000.0) < 0.01 and poisson_tail(2000, 1000.0) < 1e-100  # e^-1000 underflows


def test_the_fast_yaml_parser_reads_every_pack_file_as_the_pure_one_does(tmp_path):
    """rules._compose parses with libyaml when PyYAML has it: the values and every key's line are the pure
    parser's, for the shipped pack and 500 generated rules, and a file neither accepts is refused in its words."""
    import yaml

    from bench.alert_rules import write_pack
    from dashboard.core.city import PACKS_DIR
    from dashboard.core.rules import _compose

    pack = write_pack(tmp_path / "p", 500)
    files = sorted((PACKS_DIR / "shenzhen").glob("*.yaml")) + [pack / "alerts.yaml"]
    for path in files:
        assert _compose(path, loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == _compose(
            path, loader=yaml.SafeLoader), path.name
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - id: a\n    say: [zh: x\n", encoding="utf-8")
    with pytest.raises(RulesError) as fast:
        _compose(broken)
    with pytest.raises(RulesError) as pure:
        _compose(broken, loader=yaml.SafeLoader)
    assert str(fast.value) == str(pure.value) and "not valid YAML" in str(fast.value)
