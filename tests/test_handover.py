"""District centres: which centre runs an incident, the automatic hand-up (severity, spanning districts), the
hand-up and hand-down over HTTP for every role and every wrong input, the live deltas, the timeline's words."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from dashboard.core.channels import UPDATES_CHANNEL
from dashboard.core.city import load_centres, load_city
from dashboard.core.i18n import audit_text
from dashboard.dispatch import desk
from dashboard.storage import users
from dashboard.storage.models import incidents
from feeds.pipeline import now_ms
from layouts.dispatch import district_names
from tests.helpers import make_event
from tests.test_api import ingest_now
from tests.test_dispatch_api import PASSWORD, Session, dapp  # noqa: F401 (dapp: the fixture)
from tests.test_merge_api import deltas

FUTIAN, LUOHU, NANSHAN = "440304", "440303", "440305"


def district_user(app, name: str, role: str, district: str) -> None:
    svc = app.server.extensions["panorama"]
    users.create_user(svc.engine, name, PASSWORD, role, None, [], district=district,
                      districts=[d.code for d in svc.city.districts])


@pytest.fixture
def happ(dapp):  # noqa: F811
    """Give the dispatch app with district-centre users too: Futian's officer and commander, Luohu's officer."""
    district_user(dapp, "futian-o", "officer", FUTIAN)
    district_user(dapp, "futian-c", "commander", FUTIAN)
    district_user(dapp, "luohu-o", "officer", LUOHU)
    district_user(dapp, "futian-v", "viewer", FUTIAN)
    return dapp


def report(app, n: int, *, district: str = "futian", severity: int = 3, kind: str = "fire", lat: float = 22.54,
           lon: float = 114.05, ts: int | None = None) -> None:
    ingest_now(app, {"incident": [make_event(n, kind=kind, severity=severity, district=district, lat=lat, lon=lon,
                                             ts=ts or now_ms(), title=f"火情 {n}")]})


def row(app, title: str) -> dict:
    with app.server.extensions["panorama"].engine.connect() as conn:
        return dict(conn.execute(select(incidents).where(incidents.c.title == title)).mappings().one())


def trail(session: Session, incident_id: int) -> list[dict]:
    return [h for h in session.get(f"/api/incidents/{incident_id}").json["history"] if h["action"] == "handover"]


# --- the city pack -------------------------------------------------------------------------------------------------


def test_the_shenzhen_pack_names_its_threshold_and_a_bad_one_is_refused():
    assert load_city("shenzhen").centres.hand_up_severity == 4
    assert load_centres(None) is None
    assert load_centres({"hand_up_severity": None}).hand_up_severity is None
    for bad in ({"hand_up_severity": 5}, {"hand_up_severity": "4"}, {"hand_up_severity": True}, {"level": 3}, [4]):
        with pytest.raises(ValueError, match="centres"):
            load_centres(bad)


# --- the automatic hand-up -----------------------------------------------------------------------------------------


def test_a_new_incident_goes_to_its_districts_centre_unless_its_severity_is_the_citys(happ):
    report(happ, 1, severity=3)
    report(happ, 2, severity=4, kind="gas_leak", district="luohu", lat=22.57, lon=114.14)
    minor, grave = row(happ, "火情 1"), row(happ, "火情 2")
    assert (minor["centre"], grave["centre"]) == (FUTIAN, None)
    officer = Session(happ, "olga")
    listed = {i["title"]: i for i in officer.get("/api/incidents").json["incidents"]}
    assert (listed["火情 1"]["centre"], listed["火情 2"]["centre"]) == (FUTIAN, None)
    assert trail(officer, minor["id"]) == []
    [up] = trail(officer, grave["id"])
    assert (up["actor"], up["code"], up["params"]) == (
        "system", "auto_up_severity", {"district": LUOHU, "severity": 4, "threshold": 4})


def test_a_report_that_raises_the_severity_to_the_citys_sends_the_incident_up_once(happ, redis_client):
    report(happ, 1, severity=3)
    inc = row(happ, "火情 1")
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    report(happ, 2, severity=4, lon=114.051)  # the same fire, graver
    (delta,) = deltas(listener, 1)
    assert [(i["id"], i["severity"], i["centre"]) for i in delta["incidents"]] == [(inc["id"], 4, None)]
    officer = Session(happ, "olga")
    [up] = trail(officer, inc["id"])
    assert (up["code"], up["params"]) == ("auto_up_severity", {"district": FUTIAN, "severity": 4, "threshold": 4})
    # the city centre hands it down: a further report at the same severity leaves it there
    assert officer.post(f"/api/incidents/{inc['id']}/hand-down", {"district": FUTIAN}).status_code == 200
    report(happ, 3, severity=4, lon=114.052)
    assert row(happ, "火情 1")["centre"] == FUTIAN and row(happ, "火情 1")["reports"] == 3
    assert [h["code"] for h in trail(officer, inc["id"])] == ["auto_up_severity", "handed_down"]


def test_a_merge_that_makes_an_incident_span_districts_sends_it_up(happ):
    report(happ, 1, district="futian")
    report(happ, 2, district="luohu", lat=22.57, lon=114.14)
    a, b = row(happ, "火情 1"), row(happ, "火情 2")
    assert (a["centre"], b["centre"]) == (FUTIAN, LUOHU)
    commander = Session(happ, "cmdr")
    r = commander.post(f"/api/incidents/{a['id']}/merge", {"into": b["id"], "version": a["version"]})
    assert r.status_code == 200, r.json
    assert r.json["incidents"][1]["centre"] is None
    history = commander.get(f"/api/incidents/{b['id']}").json["history"]
    assert [h["code"] for h in history][-2:] == ["merged_from", "auto_up_span"]  # said after the merge it follows
    assert history[-1]["params"] == {"district": LUOHU, "districts": [LUOHU, FUTIAN]}
    # handed down to Luohu, a new report from Futian (already one of its districts) joins and leaves it there
    assert commander.post(f"/api/incidents/{b['id']}/hand-down", {"district": "luohu"}).status_code == 200
    report(happ, 3, district="futian", lon=114.051)
    after = row(happ, "火情 2")
    assert (after["reports"], after["centre"]) == (3, LUOHU)


def test_a_report_joined_through_a_merge_from_a_district_new_to_the_incident_sends_it_up(happ):
    """Ingest's own spanning check: an alert's incident (no reports) in Futian merged into Luohu's; handed down to
    Luohu; a Futian report near the merged-away incident joins Luohu's, whose reports had no Futian one yet."""
    from dashboard.storage.incidents import open_incident

    svc = happ.server.extensions["panorama"]
    report(happ, 1, district="luohu", lat=22.57, lon=114.14)
    luohu = row(happ, "火情 1")
    with svc.engine.begin() as conn:
        alert = open_incident(conn, domain="incident", kind="fire", district=FUTIAN, street=None, severity=3,
                              title="烟雾告警", lat=22.54, lon=114.05, at_ms=now_ms(), centres=svc.city.centres)
    assert alert["centre"] == FUTIAN
    commander = Session(happ, "cmdr")
    r = commander.post(f"/api/incidents/{alert['id']}/merge", {"into": luohu["id"], "version": 1})
    assert r.status_code == 200 and r.json["incidents"][1]["centre"] is None  # Futian's own district: it spans
    assert commander.post(f"/api/incidents/{luohu['id']}/hand-down", {"district": LUOHU}).status_code == 200
    report(happ, 2, district="futian", lat=22.5401, lon=114.0501)
    after = row(happ, "火情 1")
    assert (after["reports"], after["centre"]) == (2, None)
    assert [(h["code"], h["params"]) for h in trail(commander, luohu["id"])] == [
        ("auto_up_span", {"district": LUOHU, "districts": [LUOHU, FUTIAN]}),
        ("handed_down", {"to_district": LUOHU}),
        ("auto_up_span", {"district": LUOHU, "districts": [LUOHU, FUTIAN]})]


def test_a_merge_within_one_district_below_the_threshold_stays_with_its_centre(happ):
    report(happ, 1)
    report(happ, 2, lon=114.08, kind="flood")
    a, b = row(happ, "火情 1"), row(happ, "火情 2")
    r = Session(happ, "cmdr").post(f"/api/incidents/{a['id']}/merge", {"into": b["id"], "version": a["version"]})
    assert r.status_code == 200 and r.json["incidents"][1]["centre"] == FUTIAN


def test_a_split_gives_the_new_incident_a_centre_as_any_new_one(happ):
    report(happ, 1, severity=3)
    inc = row(happ, "火情 1")
    officer = Session(happ, "olga")
    assert officer.post(f"/api/incidents/{inc['id']}/hand-up").status_code == 200  # the city centre takes it up
    report(happ, 2, severity=3, lon=114.051)
    version = officer.get(f"/api/incidents/{inc['id']}").json["incident"]["version"]
    r = officer.post(f"/api/incidents/{inc['id']}/split", {"reports": ["ev-2"], "version": version})
    assert r.status_code == 200, r.json
    orig, new = r.json["incidents"]
    assert (orig["centre"], new["centre"]) == (None, FUTIAN)


# --- by hand over HTTP ---------------------------------------------------------------------------------------------


def test_hand_up_and_down_for_every_role(happ, redis_client):
    report(happ, 1)
    inc = row(happ, "火情 1")
    up, down = f"/api/incidents/{inc['id']}/hand-up", f"/api/incidents/{inc['id']}/hand-down"
    # nobody signed in; and the roles that do not hand over, of the city or of the district
    assert Session(happ, None).client.post(up, json={}).status_code == 401
    for name in ("vic", "fay", "futian-v"):
        for path in (up, down):
            r = Session(happ, name).post(path, {})
            assert (r.status_code, r.json["error"]["code"]) == (403, "forbidden"), (name, path)
    # CSRF: a signed-in officer's write without the header
    assert Session(happ, "futian-o").client.post(up, json={}).status_code == 403
    assert row(happ, "火情 1")["centre"] == FUTIAN
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(UPDATES_CHANNEL)
    # another district's officer may not hand it up; its own district's may; a district never hands down
    r = Session(happ, "luohu-o").post(up, {})
    assert (r.status_code, r.json["error"]["code"]) == (403, "not_your_centre")
    r = Session(happ, "futian-o").post(down, {"district": FUTIAN})
    assert (r.status_code, r.json["error"]["code"]) == (403, "district_cannot_hand_down")
    r = Session(happ, "futian-o").post(up, {"note": "涉及地铁站，需市级协调"})
    assert r.status_code == 200, r.json
    assert (r.json["incident"]["centre"], r.json["tasks"]) == (None, [])
    (delta,) = deltas(listener, 1)
    assert [(i["id"], i["centre"]) for i in delta["incidents"]] == [(inc["id"], None)]
    r = Session(happ, "futian-c").post(up, {})
    assert (r.status_code, r.json["error"]["code"]) == (422, "already_city_centre")
    # the city centre hands it down (officer), takes it up (commander), hands it down again (admin)
    for name, path, body, centre in (("olga", down, {"district": "福田"}, FUTIAN), ("cmdr", up, None, None),
                                     ("root", down, None, FUTIAN)):
        r = Session(happ, name).post(path, body)
        assert r.status_code == 200 and r.json["incident"]["centre"] == centre, (name, r.json)
    r = Session(happ, "futian-c").post(up, {})  # the district's commander hands it up in turn
    assert r.status_code == 200
    olga = Session(happ, "olga")
    got = [(h["actor"], h["code"], h["params"], h["note"]) for h in trail(olga, inc["id"])]
    assert got == [("futian-o", "handed_up", {"district": FUTIAN}, "涉及地铁站，需市级协调"),
                   ("olga", "handed_down", {"to_district": FUTIAN}, None),
                   ("cmdr", "taken_up", {"district": FUTIAN}, None),
                   ("root", "handed_down", {"to_district": FUTIAN}, None),
                   ("futian-c", "handed_up", {"district": FUTIAN}, None)]
    assert all(h["from"] == h["to"] == "open" for h in trail(olga, inc["id"]))


def test_every_wrong_hand_over_is_refused_with_its_code(happ):
    report(happ, 1)
    report(happ, 2, district="luohu", lat=22.57, lon=114.14)
    inc, luohu = row(happ, "火情 1"), row(happ, "火情 2")
    up, down = f"/api/incidents/{inc['id']}/hand-up", f"/api/incidents/{inc['id']}/hand-down"
    olga = Session(happ, "olga")

    def refused(path, body, status, code):
        r = olga.post(path, body)
        assert (r.status_code, r.json["error"]["code"]) == (status, code), (path, body, r.json)
        assert r.json["error"]["message"]

    refused("/api/incidents/999999/hand-up", {}, 404, "not_found")
    refused("/api/incidents/999999/hand-down", {}, 404, "not_found")
    refused(down, {"district": "atlantis"}, 400, "unknown_district")
    refused(down, {"district": ""}, 400, "bad_request")
    refused(down, {"district": 440304}, 400, "bad_request")
    refused(down, {"district": FUTIAN, "extra": 1}, 400, "bad_request")
    refused(up, {"note": 5}, 400, "bad_request")
    refused(up, {"note": "x" * 2001}, 400, "bad_request")
    refused(down, {"district": FUTIAN}, 422, "already_that_centre")
    refused(down, None, 422, "already_that_centre")  # no district: the incident's own
    refused(down, {"district": NANSHAN}, 422, "district_not_involved")
    refused(f"/api/incidents/{luohu['id']}/hand-down", {"district": "futian"}, 422, "district_not_involved")
    # a resolved or closed incident (a merged-away one is closed) is not handed over any more
    r = Session(happ, "cmdr").post(f"/api/incidents/{luohu['id']}/merge", {"into": inc["id"],
                                                                          "version": luohu["version"]})
    assert r.status_code == 200
    refused(f"/api/incidents/{luohu['id']}/hand-up", {}, 422, "incident_done")
    refused(f"/api/incidents/{luohu['id']}/hand-down", {"district": LUOHU}, 422, "incident_done")
    assert row(happ, "火情 2")["centre"] == LUOHU  # nothing refused changed it


def test_a_city_with_no_district_centres_runs_everything_at_the_city_centre(make_app, redis_client, tmp_path):
    import shutil

    from dashboard.core.city import PACKS_DIR

    pack = tmp_path / "onecentre"
    shutil.copytree(PACKS_DIR / "shenzhen", pack)
    manifest = pack / "city.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("centres:\n  hand_up_severity: 4\n  briefings: true\n", ""), encoding="utf-8")
    app = make_app(PANORAMA_CITY=str(pack))
    assert app.server.extensions["panorama"].city.centres is None
    from tests.test_dispatch_api import make_user, wired

    wired(app)
    make_user(app, "olga", "officer")
    report(app, 1)
    inc = row(app, "火情 1")
    assert inc["centre"] is None
    r = Session(app, "olga").post(f"/api/incidents/{inc['id']}/hand-down", {"district": FUTIAN})
    assert (r.status_code, r.json["error"]["code"]) == (422, "no_district_centres")


# --- the queue and the timeline's words ----------------------------------------------------------------------------


def test_a_district_users_queue_puts_its_centres_incidents_first(happ):
    report(happ, 1, severity=3)  # Futian's centre
    report(happ, 2, severity=4, kind="gas_leak")  # the city's: graver, first in the city's order
    report(happ, 3, severity=3, district="luohu", lat=22.57, lon=114.14)
    with happ.server.extensions["panorama"].engine.connect() as conn:
        city = [r["title"] for r in desk.queue(conn)]
        futian = [r["title"] for r in desk.queue(conn, first=FUTIAN)]
    assert city[0] == "火情 2" and futian[0] == "火情 1" and sorted(futian) == sorted(city)


def test_the_timeline_says_each_hand_over_in_both_languages():
    city = load_city("shenzhen")
    zh, en = district_names(city, "zh"), district_names(city, "en")
    said = {code: (audit_text(code, params, "zh", {}, zh), audit_text(code, params, "en", {}, en))
            for code, params in (("handed_up", {"district": LUOHU}), ("taken_up", {"district": LUOHU}),
                                 ("handed_down", {"to_district": LUOHU}),
                                 ("handed_across", {"district": LUOHU, "to_district": FUTIAN}),
                                 ("auto_up_severity", {"district": FUTIAN, "severity": 4, "threshold": 4}),
                                 ("auto_up_span", {"district": LUOHU, "districts": [LUOHU, FUTIAN]}))}
    assert said == {
        "handed_up": ("罗湖区指挥中心 上报市指挥中心", "handed up by the Luohu centre to the city centre"),
        "taken_up": ("市指挥中心 收回罗湖区指挥中心处置的事件", "taken up by the city centre from the Luohu centre"),
        "handed_down": ("市指挥中心 下派罗湖区指挥中心", "handed down by the city centre to the Luohu centre"),
        "handed_across": ("市指挥中心 将事件由罗湖区指挥中心改派福田区指挥中心",
                          "moved by the city centre from the Luohu centre to the Futian centre"),
        "auto_up_severity": ("严重程度 S4 达到上报标准（S4 及以上）：福田区指挥中心 自动上报市指挥中心",
                             "severity S4 reaches the hand-up level (S4 or more): handed up automatically by the "
                             "Futian centre to the city centre"),
        "auto_up_span": ("上报涉及多个区（罗湖区、福田区）：罗湖区指挥中心 自动上报市指挥中心",
                         "reports span districts (Luohu, Futian): handed up automatically by the Luohu centre to the "
                         "city centre"),
    }
    # without the city's names (an older caller) a code is said as it is, never dropped
    assert audit_text("handed_up", {"district": LUOHU}, "en") == "handed up by the 440303 centre to the city centre"


def test_the_detail_page_names_the_centre_and_the_hand_over_in_its_timeline(happ):
    from dash.development.base_component import Component

    from layouts.dispatch import detail_view

    report(happ, 1)
    inc = row(happ, "火情 1")
    olga = Session(happ, "olga")
    assert olga.post(f"/api/incidents/{inc['id']}/hand-up", {}).status_code == 200
    doc = olga.get(f"/api/incidents/{inc['id']}").json
    city = happ.server.extensions["panorama"].city

    def texts(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, (list, tuple)):
            return [t for n in node for t in texts(n)]
        if isinstance(node, Component):
            return texts(getattr(node, "children", None) or [])
        return []

    for lang, centre, line in (("zh", "处置中心：市指挥中心", "市指挥中心 收回福田区指挥中心处置的事件"),
                               ("en", "Run by: the city centre", "taken up by the city centre from the Futian centre")):
        words = " ".join(texts(detail_view(doc, city, lang)))
        assert centre in words and line in words, words
        assert orjson.dumps(doc["incident"]["centre"]) == b"null"
