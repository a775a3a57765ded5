"""The risk score: each district against its own seasonal baseline, 0–100, held up by its open alerts."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, select

from dashboard.core.city import load_city
from dashboard.panorama.state import build_state
from dashboard.storage import risk
from dashboard.storage.events import EventStore
from dashboard.storage.models import alerts, district_hours
from dashboard.storage.queries import summary
from feeds.alerting import Evaluator
from feeds.pipeline import Pipeline
from tests.helpers import make_event
from tests.test_alerts import flush, pack

HOUR, WEEK, MIN = 3_600_000, 7 * 86_400_000, 60_000
TZ = "Asia/Shanghai"


# --- pure: the surprise, its scale, the alerts' floor ---------------------------------------------------------

def test_a_count_at_or_under_its_baseline_reads_zero_at_any_hour():
    assert risk.score(risk.surprise(1, [1.0, 1.0, 2.0, 0.0])) == 0.0  # 3 a.m., an ordinary night
    assert risk.score(risk.surprise(200, [210.0, 190.0, 205.0, 195.0])) == 0.0  # rush hour, an ordinary one
    assert risk.score(risk.surprise(0, [0.0, 0.0])) == 0.0


def test_a_surge_reads_high_at_3am_and_at_rush_hour_alike():
    night = risk.score(risk.surprise(8, [1.0, 0.0, 1.0, 2.0]))  # 8 where 1 is usual
    rush = risk.score(risk.surprise(320, [210.0, 190.0, 205.0, 195.0]))  # 320 where 200 is usual
    assert night >= 70 and rush >= 90
    # a little above the usual reads low in both, not the hour's volume
    assert risk.score(risk.surprise(2, [1.0, 1.0, 1.0, 1.0])) < 30
    assert risk.score(risk.surprise(210, [210.0, 190.0, 205.0, 195.0])) < 30


def test_the_scale_pins_the_anomaly_rules_p_at_the_orange_line_and_saturates():
    assert risk.score(0.0) == 0.0 and risk.score(-1.0) == 0.0
    assert risk.score(3.0) == 70.0  # p = 0.001, the anomaly rules' default
    assert [risk.score(s) for s in (1, 2, 6)] == [33.1, 55.2, 91.0]
    assert risk.score(risk.MAX_SURPRISE) == 100.0
    # a count so improbable its tail underflows is 100, not an error
    assert risk.score(risk.surprise(10_000, [1.0, 1.0])) == 100.0


def test_weeks_that_vary_widen_what_counts_as_ordinary():
    steady = risk.surprise(1160, [1000.0, 1000.0, 1000.0, 1000.0])
    swinging = risk.surprise(1160, [850.0, 1150.0, 900.0, 1100.0])  # weeks 15 % apart: 1160 is near one
    assert risk.score(steady) >= 90 and risk.score(swinging) < 40


def test_open_alerts_hold_the_risk_up_by_level():
    assert risk.raised(12.0, ["red"]) == 90.0 and risk.raised(12.0, ["orange", "blue"]) == 70.0
    assert risk.raised(95.0, ["yellow"]) == 95.0 and risk.raised(12.0, []) == 12.0
    assert risk.raised(12.0, ["unknown"]) == 12.0


def test_a_baseline_needs_two_weeks_the_system_was_running():
    now = 100 * WEEK
    assert risk.past_spans(now - HOUR, now, None) == []
    spans = risk.past_spans(now - HOUR, now, now - 2 * WEEK - HOUR)
    assert spans == [(now - HOUR - WEEK, now - WEEK), (now - HOUR - 2 * WEEK, now - 2 * WEEK)]


def test_only_minor_and_worse_events_count():
    assert risk.notable([10, 7, 2, 1, 0]) == 3


# --- against real rollups (PostgreSQL and SQLite): the state the screens show ----------------------------------

def _now() -> int:
    return int(time.time() * 1000)


def history(engine, now: int, per_hour: dict[str, int], weeks: int = 4, domain: str = "security") -> None:
    """Write hour rollups: ``per_hour`` minor events in each district for the day around now, each past week."""
    rows = []
    for k in range(1, weeks + 1):
        base = now - k * WEEK
        for h in range(-12, 13):
            hour = base - base % HOUR + h * HOUR
            rows += [{"hour_ms": hour, "district": d, "domain": domain, "n": n + 50, "sev1": 50, "sev2": n,
                      "sev3": 0, "sev4": 0} for d, n in per_hour.items()]
    with engine.begin() as conn:
        conn.execute(insert(district_hours), rows)


def thefts(district: str, n: int, at: int, first: int = 0, severity: int = 2) -> list[dict]:
    return [make_event(first + i, kind="theft", district=district, ts=at - i * 1000, severity=severity)
            for i in range(n)]


@pytest.fixture
def city():
    return load_city("shenzhen")


def test_a_district_above_its_own_baseline_reads_high_and_one_at_it_low(any_engine, city, redis_client):
    now = _now()
    # Futian usually has 8 minor thefts an hour (2 in 15 minutes), Nanshan 40 (10 in 15 minutes).
    history(any_engine, now, {"440304": 8, "440305": 40})
    pipe = Pipeline(EventStore(any_engine, city), city.aliases)
    flush(pipe, redis_client, "security", thefts("futian", 12, now) + thefts("nanshan", 10, now, 100)
          + thefts("luohu", 30, now, 200, severity=1))  # routine reports do not count
    with any_engine.connect() as conn:
        state = build_state(conn, city, now, {})
    w = state["windows"]["15m"]
    assert w["risk_basis"] == "baseline"
    futian, nanshan, luohu = (w["districts"][c]["risk"] for c in ("440304", "440305", "440303"))
    assert futian >= 70, futian  # 12 where 2 are usual
    assert nanshan < 30, nanshan  # 10 where 10 are usual, at its busier rate
    assert luohu == 0.0
    # the same counts against a day of the usual: still Futian's surge, now diluted
    day = state["windows"]["24h"]
    assert day["risk_basis"] == "baseline" and day["districts"]["440304"]["risk"] < futian
    # the 30 days have no four weeks of 30-day history before them: the population fallback, said so
    assert state["windows"]["30d"]["risk_basis"] == "population"
    # the REST summary reads the same score
    with any_engine.connect() as conn:
        doc = summary(conn, city, 15, now, TZ)
    assert {d["code"]: d["risk"] for d in doc["districts"]}["440304"] == futian


def test_no_baseline_falls_back_to_the_population_pressure(any_engine, city, redis_client):
    now = _now()
    pipe = Pipeline(EventStore(any_engine, city), city.aliases)
    flush(pipe, redis_client, "security", thefts("futian", 5, now, severity=3))
    with any_engine.connect() as conn:
        state = build_state(conn, city, now, {})
    w = state["windows"]["1h"]
    futian = city.by_code["440304"]
    assert w["risk_basis"] == "population"
    assert w["districts"]["440304"]["risk"] == risk.pressure_score((0, 0, 5, 0), 60, futian.population) > 0


def test_a_firing_red_alert_raises_its_district_and_a_resolved_one_no_longer(tmp_path, any_engine, redis_client):
    rules = """\
rules:
  - id: aqi_red
    type: threshold
    level: red
    scope: district
    kind: aqi
    op: ">"
    value: 200
    say: {zh: "{place}空气质量指数 {value}", en: "{place}: AQI {value}"}
"""
    city = pack(tmp_path, rules)
    now = _now()
    history(any_engine, now, {"440304": 8})
    ev = Evaluator(any_engine, city, TZ)
    pipe = Pipeline(EventStore(any_engine, city), city.aliases, alerts=ev)
    aqi = {"kind": "aqi", "district": "luohu", "unit": "AQI"}
    flush(pipe, redis_client, "environment", [make_event(1, **aqi, value=230, ts=now - 2000)])
    ev.tick(redis_client, now)
    with any_engine.connect() as conn:
        fired = conn.execute(select(alerts.c.fired_ms).where(alerts.c.status == "firing")).scalar_one()
        state = build_state(conn, city, max(now, fired), {})
    # one AQI reading is no surge against the baseline, but the red alert holds Luohu at 90 in every window
    assert {w["districts"]["440303"]["risk"] for w in state["windows"].values()} == {90.0}
    assert state["windows"]["15m"]["districts"]["440304"]["risk"] < 30
    flush(pipe, redis_client, "environment", [make_event(2, **aqi, value=60, ts=now)])
    ev.tick(redis_client, _now())
    with any_engine.connect() as conn:
        resolved = conn.execute(select(alerts.c.resolved_ms).where(alerts.c.status == "resolved")).scalar_one()
        after = build_state(conn, city, resolved + 1, {})["windows"]["15m"]["districts"]["440303"]["risk"]
        # replayed at a minute when it was firing, the summary is raised as it was then
        replay = summary(conn, city, 15, fired, TZ)
    assert after < 30
    assert {d["code"]: d["risk"] for d in replay["districts"]}["440303"] == 90.0


def test_a_partial_hour_counts_pro_rata(any_engine):
    now = 1000 * WEEK + 30 * MIN  # half past an hour
    with any_engine.begin() as conn:
        conn.execute(insert(district_hours), [
            {"hour_ms": now - k * WEEK - 30 * MIN, "district": "440304", "domain": "traffic", "n": 60, "sev1": 0,
             "sev2": 60, "sev3": 0, "sev4": 0} for k in (1, 2)])
    with any_engine.connect() as conn:
        [base] = risk.baselines(conn, {15: (now - 15 * MIN, now)}).values()
    assert base.weeks == 2 and base.of("440304", "traffic") == [15.0, 15.0]
    assert base.of("440305", "traffic") == [0.0, 0.0]


def test_the_map_says_when_the_risk_has_no_baseline_yet(city):
    from dashboard.figures.panorama import make_city_map

    early = make_city_map({"risk_basis": "population", "districts": {}}, city, "risk", "en")
    later = make_city_map({"risk_basis": "baseline", "districts": {}}, city, "risk", "en")
    assert early.data[0].colorbar.title.text == "Risk (no baseline yet: per resident)"
    assert later.data[0].colorbar.title.text == "Risk score" and later.layout.meta["basis"] == "baseline"
    assert make_city_map({"risk_basis": "population"}, city, "all", "en").layout.meta["basis"] == "baseline"


class _Moved:
    """A clock the test moves (the app's ``PANORAMA_CLOCK``)."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self) -> int:
        return self.at


def test_reads_within_the_freshness_share_one_risk_and_an_alert_change_recomputes(make_app, redis_client):
    """The REST summary and the pages' live state of one process share its Services' risk: a second read within
    FRESH_MS computes nothing, an alert firing computes afresh (and shows), and so does the window running out."""
    from callbacks.live import live_state

    now = _now()
    clock = _Moved(now)
    app = make_app(PANORAMA_CLOCK=clock)
    svc = app.server.extensions["panorama"]
    history(svc.engine, now, {"440304": 8})
    flush(Pipeline(EventStore(svc.engine, svc.city), svc.city.aliases), redis_client, "security",
          thefts("futian", 12, now))
    client = app.server.test_client()

    def risks() -> dict[str, float]:
        res = client.get("/api/summary?window=15m")
        assert res.status_code == 200
        return {d["code"]: d["risk"] for d in res.get_json()["districts"]}

    first = risks()
    assert first["440304"] >= 70 and first["440303"] < 30 and svc.risk.computed == 1
    assert risks() == first and svc.risk.computed == 1  # within the freshness: reused
    live = live_state(svc, now)["windows"]["15m"]["districts"]
    assert live["440304"]["risk"] == first["440304"] and svc.risk.computed == 2  # the live state's windows: its own
    live_state(svc, now + 1000)
    assert svc.risk.computed == 2
    # a red alert fires in Luohu (written by a worker: nothing in this process is told): the next read sees it
    with svc.engine.begin() as conn:
        conn.execute(insert(alerts).values(rule="r", scope="district:440303", level="red", status="firing",
                                           district="440303", started_ms=now, fired_ms=now, title="t",
                                           title_en="t", updated_ms=now))
    assert risks()["440303"] == 90.0 and svc.risk.computed == 3
    assert risks()["440303"] == 90.0 and svc.risk.computed == 3
    clock.at = now + risk.FRESH_MS  # the freshness ran out: computed again
    risks()
    assert svc.risk.computed == 4
