"""Free text cannot blow up what screens read: streets and kinds the city pack does not know fold into "other"."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from dashboard.figures import panorama as figures
from dashboard.core.city import OTHER, load_city
from dashboard.storage.models import events, rollups
from dashboard.storage.events import EventStore
from feeds.pipeline import Batch
from layouts.district import incident_items
from tests.helpers import make_event, write_from_two_workers
from tests.test_access_matrix import session
from tests.test_api import now_event
from tests.test_callback_inputs import events_page, post
from tests.test_store import T0, events_of
from feeds.pipeline import make_pipeline

CITY = load_city("shenzhen")
FUTIAN = CITY.by_code["440304"]


def junk(n: int, start: int = 0, ts=T0, **over) -> list[dict]:
    """Return ``n`` traffic events in Futian, each with a street and a kind of its own that no pack knows."""
    return [make_event(start + i, street=f"<a href='https://evil.example'>街 {start + i}</a>", kind=f"junk_{start + i}",
                       ts=ts if isinstance(ts, str) else ts + i, **over) for i in range(n)]


def rollup_keys(engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(select(rollups.c.street, rollups.c.kind, func.sum(rollups.c.n))
                            .group_by(rollups.c.street, rollups.c.kind)).all()
    return {(street, kind): int(n) for street, kind, n in rows}


def test_rollups_fold_what_the_pack_does_not_know_and_events_keep_it(any_engine):
    store = EventStore(any_engine, CITY)
    evs = events_of("traffic", junk(600) + [make_event(1000 + i, street="莲花街道", kind="congestion", ts=T0 + i)
                                            for i in range(5)] + [make_event(2000, kind="speed", ts=T0)])
    first = store.write(evs, 1)
    assert len(first.stored) == 606
    assert first.folded == {("traffic", "street"): 600, ("traffic", "kind"): 600}
    # the same events again: stored once, so counted and folded once
    again = store.write(evs, 2)
    assert again.stored == [] and again.folded == {}
    assert rollup_keys(any_engine) == {(OTHER, OTHER): 600, ("莲花街道", "congestion"): 5, ("", "speed"): 1}
    with any_engine.connect() as conn:  # the events keep what was sent
        streets = conn.execute(select(func.count(func.distinct(events.c.street)))).scalar_one()
        kinds = conn.execute(select(func.count(func.distinct(events.c.kind)))).scalar_one()
    assert (streets, kinds) == (601, 602)


def test_rollup_rows_of_a_district_minute_are_bounded_by_the_pack(any_engine):
    store = EventStore(any_engine, CITY)
    # every street and kind the pack knows, no street, and 2,000 unknown ones, all in one minute
    known = [make_event(10_000 + i, street=s.name, kind=k, ts=T0)
             for i, (s, k) in enumerate((s, k) for s in FUTIAN.streets for k in sorted(CITY.kinds))]
    store.write(events_of("traffic", known + junk(2000, ts=T0) + [make_event(9999, ts=T0)]), 1)
    with any_engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(rollups)
                            .where(rollups.c.district == "440304", rollups.c.minute_ms == T0)).scalar_one()
    bound = (len(FUTIAN.streets) + 2) * (len(CITY.kinds) + 1)  # streets, none, other × kinds, other
    assert rows == len(known) + 2 <= bound  # each known pair, (other, other) and ("", congestion)


def test_two_writers_fold_and_count_exactly_once(pg_engine):
    evs = events_of("traffic", junk(3000))
    results = write_from_two_workers(lambda: EventStore(pg_engine, CITY), evs)
    assert rollup_keys(pg_engine) == {(OTHER, OTHER): 3000}
    assert sum(r.folded.get(("traffic", "street"), 0) for r in results) == 3000


def test_street_chart_is_the_top_streets_and_the_rest():
    streets = [{"name": f"街道{i}", "name_en": f"Street {i}", "counts": {"traffic": i}} for i in range(5000)]
    fig = figures.make_street_bars(streets, "zh", other={"traffic": 7, "security": 2})
    names = list(fig.data[0].y)
    assert len(names) == figures.STREET_BARS + 1 and fig.layout.height <= 30 * (figures.STREET_BARS + 1) + 70
    assert names[-1] == "街道4999" and names[0] == "其余街道"  # busiest on top, the rest at the bottom
    traffic = dict(zip(fig.data[1].y, fig.data[1].x))
    assert traffic["其余街道"] == sum(range(4990)) + 7 and dict(zip(fig.data[0].y, fig.data[0].x))["其余街道"] == 2
    assert list(figures.make_street_bars(streets, "en", other={}).data[0].y)[0] == "Other streets"
    # nothing left over: no "rest" bar
    few = figures.make_street_bars(streets[:3], "zh", other={"traffic": 0})
    assert list(few.data[0].y) == ["街道0", "街道1", "街道2"]


def test_open_incidents_list_says_how_many_more_there_are():
    rows = [{"id": i, "severity": 3, "title": f"t{i}", "kind": "fire", "status": "open", "reports": 1,
             "opened_ms": T0} for i in range(20)]
    items = incident_items(rows, "zh", "Asia/Shanghai", total=25)
    assert len(items) == 21 and items[-1].children == "其余 5 起未结事件"
    assert incident_items(rows, "en", "Asia/Shanghai", total=25)[-1].children == "5 more open incidents"
    assert len(incident_items(rows, "zh", "Asia/Shanghai", total=20)) == 20


def ingest(app, evs: list[dict], domain: str = "traffic") -> None:
    """Store events through the app's pipeline in messages of 200 (each well under the 64 KiB limit)."""
    svc = app.server.extensions["panorama"]
    pipeline = make_pipeline(svc)
    for start in range(0, len(evs), 200):
        batch = Batch()
        pipeline.add(batch, f"feeds:{domain}", domain, orjson.dumps(evs[start:start + 200]), 0)
        assert not batch.rejects, batch.rejects[:1]
        pipeline.flush(batch, svc.redis)


def test_5000_junk_streets_keep_the_district_summary_small_and_searchable(make_app, redis_client):
    app = make_app(BROWSER_PATH="none")
    now = now_event(0)["ts"]
    ingest(app, junk(5000, ts=now - 5000) + [now_event(90_000 + i, street="华强北街道") for i in range(3)])
    client = app.server.test_client()
    res = client.get("/api/districts/futian/summary")
    doc = res.get_json()
    assert res.status_code == 200 and len(res.data) < 4000  # 741 KB before
    assert [s["name"] for s in doc["streets"]] == [s.name for s in FUTIAN.streets]
    assert doc["other_streets"]["traffic"] == 5000 and doc["other_kinds"]["traffic"] == 5000
    assert {k["kind"] for k in doc["kinds"]} == {"congestion"} and doc["totals"]["traffic"] == 5003
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'panorama_rollup_folded_total{domain="traffic",field="street"} 5000.0' in metrics
    assert 'panorama_rollup_folded_total{domain="traffic",field="kind"} 5000.0' in metrics
    # the raw values stay on the events: the district table finds them by street, kind and title
    viewer, csrf = session(app, "viewer")
    for query in ("{street} = \"<a href='https://evil.example'>街 17</a>\"", "{kind} = junk_17",
                  "{street} contains \"街 17<\" && {kind} contains junk"):
        res = post(viewer, csrf, events_page(app, filter_query=query))
        table = res.get_json()["response"]["district-events"]
        assert [r["id"] for r in table["data"]] == ["traffic:ev-17"], query
        assert table["page_count"] >= 1
    # a street the pack knows is still counted from the rollups: exact, and one page
    res = post(viewer, csrf, events_page(app, filter_query="{street} = 华强北街道"))
    table = res.get_json()["response"]["district-events"]
    assert len(table["data"]) == 3 and table["page_count"] == 1


def test_rows_written_before_folding_are_folded_when_read(any_engine):
    from dashboard.storage import queries

    with any_engine.begin() as conn:
        conn.execute(rollups.insert(), [
            {"minute_ms": T0, "district": "440304", "street": f"旧街 {i}", "domain": "traffic", "kind": f"old_{i}",
             "n": 1, "sev1": 1, "sev2": 0, "sev3": 0, "sev4": 0, "value_sum": 0.0, "value_n": 0} for i in range(300)])
    with any_engine.connect() as conn:
        doc = queries.district_summary(conn, CITY, FUTIAN, 60, T0, "Asia/Shanghai")
    assert len(doc["streets"]) == len(FUTIAN.streets) and doc["kinds"] == []
    assert doc["other_streets"]["traffic"] == 300 and doc["other_kinds"]["traffic"] == 300


def test_every_kind_the_pack_knows_has_a_name_in_both_languages():
    from dashboard.core.i18n import kind_labels

    assert CITY.kinds == set(kind_labels("zh")) == set(kind_labels("en"))
    assert CITY.rollup_kind("fire") == "fire" and CITY.rollup_kind("fire_2") == OTHER
    assert CITY.rollup_street("440304", "莲花街道") == "莲花街道" and CITY.rollup_street("440305", "莲花街道") == OTHER
    assert CITY.rollup_street("440304", None) == CITY.rollup_street("440304", "") == ""


def test_the_dispatch_queue_and_the_phone_say_how_many_incidents_they_do_not_show(app):
    from dashboard.dispatch import desk
    from tests.test_access_matrix import caller, payload

    svc = app.server.extensions["panorama"]
    now = svc.clock()
    # Junk kinds each open an incident of their own (severity 3): more than a queue draws.
    n = desk.QUEUE_ROWS + 3
    evs = [make_event(i, kind=f"junk_{i}", severity=3, ts=now, lat=22.5, lon=113.9 + i * 0.0001) for i in range(n)]
    pipeline, batch = make_pipeline(svc), Batch()
    for start in range(0, n, 250):
        pipeline.add(batch, "feeds:security", "security", orjson.dumps(evs[start:start + 250]), now)
    pipeline.flush(batch, svc.redis)
    with svc.engine.connect() as conn:
        assert desk.queue_total(conn, desk.queue(conn)) == n

    client, headers = caller(app, "officer")
    body = payload(app, "..incident-list.children...incident-rest.children...task-board.children"
                        "...dispatch-shown.data..", {"dispatch-pulse.data": 1, "lang.data": "en"},
                   "dispatch-pulse.data")
    out = client.post("/_dash-update-component", json=body, headers=headers).get_json()["response"]
    assert len(out["incident-list"]["children"]) == desk.QUEUE_ROWS  # one child per incident shown
    assert out["incident-rest"]["children"] == "3 more open incidents"

    client, headers = caller(app, "commander")
    body = payload(app, "..decision-list.children...decision-count.children...incident-list.children"
                        "...incident-count.children...mobile-digest.data..", {"mobile-bump.data": 1, "lang.data": "en"})
    out = client.post("/_dash-update-component", json=body, headers=headers).get_json()["response"]
    assert out["incident-count"]["children"] == f"{desk.QUEUE_ROWS}/{n}"
