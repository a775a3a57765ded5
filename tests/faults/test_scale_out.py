"""Scale-out: two gateway processes on one Redis both deliver; the app under gunicorn with three workers
serves the same summary, sessions, sign-in limits and writes from any worker (nothing lives in one worker)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from dashboard.db import make_engine
from dashboard.users import create_user
from feeds.publish import publish
from tests.faults.common import Producer, WsWatcher, client_count, listening, make_events, stored, ws_url
from tests.faults.procs import gunicorn_argv, module_argv, service_env, wait_http
from tests.helpers import TEST_PASSWORD, wait_for
from tests.redis_proc import free_port

pytestmark = pytest.mark.faults


def test_two_gateway_processes_on_one_redis_both_deliver(redis_proc, pg_url, pg_engine, procs, figures):
    ports = free_port(), free_port()
    base = dict(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults")
    procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), service_env(**base))
    for k, port in enumerate(ports):
        procs.start(f"gateway{k}", module_argv("dashboard.gateway"), service_env(**base, PANORAMA_WS_PORT=port))
    for port in ports:
        wait_for(lambda: listening(port), timeout=60, message=f"a gateway on {port}")
    watchers = [WsWatcher(ws_url(port, "faults")) for port in ports for _ in range(2)]
    for w in watchers:
        w.start()
    bus = redis.Redis.from_url(redis_proc.url)
    wait_for(lambda: client_count(bus) == 4, timeout=20, message="both gateways count their clients for /metrics")
    sent_at = time.monotonic()
    publish(bus, "traffic", make_events(0, 10, "traffic"), transport="stream")
    for w in watchers:
        wait_for(lambda: {f"traffic-{i}" for i in range(10)} <= w.event_ids(sent_at), timeout=30,
                 message="every client of both gateways got the events")
    slowest = max(w.first(lambda f: "traffic-9" in {e["id"] for e in f.get("events", ())}, sent_at)
                  for w in watchers) - sent_at
    assert stored(pg_engine) == 10
    for w in watchers:
        w.ws.close()
    figures(scale="2 gateway processes, 4 clients", delivered_to=len(watchers), slowest_delivery_s=round(slowest, 2))


def test_gunicorn_with_three_workers_serves_the_same_city_and_sessions_from_any_worker(
        redis_proc, pg_url, pg_engine, procs, tmp_path, figures):
    port = free_port()
    access = tmp_path / "access.log"
    env = service_env(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults",
                      INSTANCE_PATH=str(tmp_path / "instance"))
    procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    # %(p)s: the pid of the worker that answered each request
    app = procs.start("app", gunicorn_argv(port, 3, "--access-logfile", str(access), "--access-logformat",
                                           "%(p)s %(m)s %(U)s %(s)s"), env)
    origin = f"http://127.0.0.1:{port}"
    wait_http(origin + "/api/health", app)
    engine = make_engine(pg_url)
    create_user(engine, "scale-officer", TEST_PASSWORD, "officer", None, [])
    engine.dispose()
    bus = redis.Redis.from_url(redis_proc.url)
    producer = Producer(lambda: bus, 600, rate=10_000, incident_every=100)
    producer.run()
    fire = {"id": "fire-1", "ts": int(time.time() * 1000), "kind": "fire", "district": "futian", "severity": 4,
            "title": "横向扩展火情"}
    publish(bus, "incident", [fire], transport="stream")
    wait_for(lambda: stored(pg_engine) == 601, timeout=30, message="events stored")

    signed = requests.Session()
    r = signed.post(origin + "/api/session", json={"username": "scale-officer", "password": TEST_PASSWORD})
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]

    def get(path: str) -> tuple[int, dict]:
        # a fresh connection each time (no keep-alive), several at once: the workers share them out
        resp = requests.get(origin + path, cookies=signed.cookies, headers={"Connection": "close"}, timeout=10)
        return resp.status_code, resp.json()

    with ThreadPoolExecutor(6) as pool:
        summaries = list(pool.map(get, ["/api/summary?window=1h"] * 30))
        listed = list(pool.map(get, ["/api/incidents?status=open"] * 30))
    assert {s for s, _ in summaries + listed} == {200}
    strip = lambda doc: {k: v for k, v in doc.items() if k not in ("generated_at", "window")}  # noqa: E731
    assert len({repr(strip(d)) for _, d in summaries}) == 1, "every worker shows the same city"
    assert len({repr(d) for _, d in listed}) == 1
    incident = listed[0][1]["incidents"][0] if isinstance(listed[0][1], dict) else listed[0][1][0]
    # A write through one worker is seen by every worker.
    w = signed.post(f"{origin}/api/incidents/{incident['id']}/dispatch", json={},
                    headers={"X-CSRF-Token": csrf, "Connection": "close"})
    assert w.status_code in (200, 201), w.text
    with ThreadPoolExecutor(6) as pool:
        after = list(pool.map(get, [f"/api/incidents/{incident['id']}"] * 18))
    assert {s for s, _ in after} == {200}
    # (the rules' suggestion is worked out at request time: its deadlines move with the clock)
    assert len({repr({k: v for k, v in d.items() if k != "suggestion"}) for _, d in after}) == 1
    assert all(d["tasks"] for _, d in after), "the dispatched tasks seen by every worker"
    # Failed sign-ins are counted in Redis: the limit holds however requests are spread over the workers.
    codes = []
    for _ in range(7):
        codes.append(requests.post(origin + "/api/session", json={"username": "scale-officer", "password": "wrong"},
                                   headers={"Connection": "close"}, timeout=10).status_code)
    assert codes[:5] == [401] * 5 and codes[-1] == 429, codes
    pids = {}
    for line in access.read_text().splitlines():
        pid, method, path, status = line.split(" ")
        pids.setdefault(pid.strip("<>"), set()).add((method, path, status))
    served = {pid for pid, reqs in pids.items() if any(p.startswith("/api/") and s == "200" for _, p, s in reqs)}
    assert len(served) >= 2, f"all requests went to one worker: {pids.keys()}"
    figures(scale="gunicorn -w 3", workers_that_answered=len(served), requests=len(summaries) + len(listed) + 19,
            identical_answers=True)
