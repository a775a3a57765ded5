"""The simulated fleet (feeds/fleet.py): valid reports for every unit, and a unit the desk sends drives to its
incident -- through real Redis, the ingest pipeline and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import orjson
from sqlalchemy import select

from dashboard.core import messages
from dashboard.core.city import load_city
from dashboard.dispatch.units import km_between
from dashboard.storage.models import units
from feeds.consumers import PubSubConsumer
from feeds.fleet import FleetSimulator
from feeds.pipeline import make_pipeline, now_ms
from feeds.unit_schema import parse_units
from tests.helpers import wait_for
from tests.test_access_matrix import dispatched, session

FLEET = load_city("shenzhen").units


def test_every_unit_reports_once_a_period_and_every_report_is_valid():
    sim = FleetSimulator(FLEET, every_s=5, seed=3)
    period = [r for slot in range(10) for r in sim.reports(now_ms(), slot, 10)]
    assert sorted(r["unit"] for r in period) == sorted(u["unit"] for u in FLEET)
    parsed = parse_units(orjson.dumps(period), {"received_ms": now_ms()})
    assert not parsed.rejects and len(parsed.reports) == len(FLEET)
    off = [r for r in period if r.get("status") == "off_duty"]
    assert 0 < len(off) < len(FLEET) / 4  # a share off shift, said once
    again = [r for slot in range(10) for r in sim.reports(now_ms(), slot, 10)]
    assert not any("status" in r for r in again)  # then only places: the desk and crews set the status


def test_a_unit_sent_drives_to_its_target_and_a_released_one_heads_back_to_base():
    sim = FleetSimulator(FLEET, seed=3)
    v = sim.vehicles["fe-futian-01"]
    base = v.base
    target = [base[0] + 0.05, base[1] + 0.05]  # about 7.6 km away
    view = {"unit": v.unit, "department": "fire", "kind": v.kind, "status": "en_route", "lat": v.lat, "lon": v.lon,
            "updated_at": None, "task_id": 7, "target": target}
    assert sim.learn(messages.encode_delta(now_ms(), units=[view])) == 1
    before = km_between(v.lat, v.lon, *target)
    sim.step(600)  # ten minutes at 35 km/h: 5.8 km
    assert km_between(v.lat, v.lon, *target) < before - 5
    sim.step(600)
    assert km_between(v.lat, v.lon, *target) < 0.01  # arrived, and stays
    sim.learn(messages.encode_delta(now_ms(), units=[{**view, "status": "available", "task_id": None}]))
    sim.step(3600)
    assert km_between(v.lat, v.lon, *base) < 0.01


def test_the_fleet_drives_a_unit_assigned_over_the_api_towards_its_incident(make_app, redis_client):
    prefix = f"t{uuid.uuid4().hex[:8]}"  # pub/sub channels are every Redis db's: this test's own feed
    app = make_app(PANORAMA_FEED_PREFIX=prefix)
    svc = app.server.extensions["panorama"]
    _, [task] = dispatched(app, ("fire",))  # a fire at 22.54, 114.02
    stop = threading.Event()
    sim = FleetSimulator([u for u in FLEET if u["department"] == "fire"], every_s=0.5, speed=120, seed=3,
                         off_duty=0)
    consumer = PubSubConsumer(make_pipeline(svc), svc.connect_bus, prefix=prefix)
    consumer.start()
    runner = threading.Thread(target=sim.run, args=(svc.connect_bus(), stop), kwargs={"prefix": prefix,
                                                                                      "tick_s": 0.1})
    try:
        wait_for(consumer.connected.is_set, timeout=10)
        runner.start()
        wait_for(lambda: redis_client.pubsub_numsub("panorama:updates")[0][1] >= 1, timeout=10)

        def place(unit):
            with svc.engine.connect() as conn:
                return conn.execute(select(units.c.lat, units.c.lon, units.c.status)
                                    .where(units.c.unit == unit)).one()
        far = "fe-longgang-01"  # some 25 km from the fire
        start = wait_for(lambda: (p := place(far)).lat != sim.vehicles[far].base[0] or p, timeout=10)
        officer, csrf = session(app, "officer")
        res = officer.post(f"/api/tasks/{task['id']}/units", json={"units": [far]}, headers={"X-CSRF-Token": csrf})
        assert res.status_code == 200
        d0 = km_between(start.lat, start.lon, 22.54, 114.02)
        wait_for(lambda: km_between(*place(far)[:2], 22.54, 114.02) < d0 - 3, timeout=30,
                 message="the unit driving towards the fire")
        assert place(far).status == "en_route"  # its place reported, its status the desk's
    finally:
        stop.set()
        consumer.stop()
        if runner.is_alive():
            runner.join(5)
