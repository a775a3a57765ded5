"""Scale-out: two gateway processes on one Redis both deliver; the app under gunicorn with three workers
serves the same summary, sessions, sign-in limits and writes from any worker (nothing lives in one worker)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import psutil
import pytest
import redis
import requests

from dashboard.storage.db import make_engine
from dashboard.storage.users import create_user
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


WORKERS = 3


class AccessLog:
    """Gunicorn's access log, one line a request: ``<pid> METHOD PATH STATUS`` (``%(p)s %(m)s %(U)s %(s)s``),
    so the test knows which worker served each request without the product knowing about tests."""

    FORMAT = "%(p)s %(m)s %(U)s %(s)s"

    def __init__(self, path):
        self.path = path

    def lines(self) -> list[tuple[int, str, str, str]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            pid, method, path, status = line.split(" ")
            out.append((int(pid.strip("<>")), method, path, status))
        return out

    def mark(self) -> int:
        return len(self.lines())

    def pids(self, since: int, method: str, path: str, status: str) -> set[int]:
        """The workers that answered ``method path`` with ``status`` in the lines after ``since``."""
        return {pid for pid, m, p, s in self.lines()[since:] if (m, p, s) == (method, path, status)}


def workers_of(master: int) -> set[int]:
    return {p.pid for p in psutil.Process(master).children()}


def worker_holding(workers: set[int], sock: socket.socket) -> int | None:
    """The worker that has accepted the connection ``sock`` (our end), if one has."""
    ours = sock.getsockname()
    for pid in workers:
        try:
            if any(c.raddr and tuple(c.raddr) == ours for c in psutil.Process(pid).net_connections("tcp")):
                return pid
        except psutil.NoSuchProcess:
            pass
    return None


def test_gunicorn_with_three_workers_serves_the_same_city_and_sessions_from_any_worker(
        redis_proc, pg_url, pg_engine, procs, tmp_path, figures):
    port = free_port()
    log = AccessLog(tmp_path / "access.log")
    env = service_env(REDIS_URL=redis_proc.url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults",
                      INSTANCE_PATH=str(tmp_path / "instance"))
    procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    app = procs.start("app", gunicorn_argv(port, WORKERS, "--access-logfile", str(log.path),
                                           "--access-logformat", AccessLog.FORMAT), env)
    origin = f"http://127.0.0.1:{port}"
    wait_http(origin + "/api/health", app)
    workers = wait_for(lambda: len(w := workers_of(app.pid)) == WORKERS and w, timeout=30,
                       message=f"{WORKERS} gunicorn workers")
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
    requests_made = 1

    def get(path: str) -> tuple[int, dict]:
        # a fresh connection each time (no keep-alive), several at once: the workers share them out
        resp = requests.get(origin + path, cookies=signed.cookies, headers={"Connection": "close"}, timeout=10)
        return resp.status_code, resp.json()

    def from_every_worker(path: str) -> list[tuple[int, dict]]:
        """GET ``path`` in rounds of concurrent requests until each worker has answered it with a 200."""
        nonlocal requests_made
        since, answers = log.mark(), []

        def one_round():
            with ThreadPoolExecutor(6) as pool:
                answers.extend(pool.map(get, [path] * 12))
            return log.pids(since, "GET", path.split("?")[0], "200") == workers

        wait_for(one_round, timeout=60, interval=0, message=f"every worker answering {path}")
        requests_made += len(answers)
        return answers

    summaries = from_every_worker("/api/summary?window=1h")
    listed = from_every_worker("/api/incidents?status=open")
    assert {s for s, _ in summaries + listed} == {200}
    strip = lambda doc: {k: v for k, v in doc.items() if k not in ("generated_at", "window")}  # noqa: E731
    assert len({repr(strip(d)) for _, d in summaries}) == 1, "every worker shows the same city"
    assert len({repr(d) for _, d in listed}) == 1
    incident = listed[0][1]["incidents"][0] if isinstance(listed[0][1], dict) else listed[0][1][0]
    # A write through one worker is seen by every worker.
    w = signed.post(f"{origin}/api/incidents/{incident['id']}/dispatch", json={},
                    headers={"X-CSRF-Token": csrf, "Connection": "close"})
    requests_made += 1
    assert w.status_code in (200, 201), w.text
    after = from_every_worker(f"/api/incidents/{incident['id']}")
    assert {s for s, _ in after} == {200}
    # (the rules' suggestion is worked out at request time: its deadlines move with the clock)
    assert len({repr({k: v for k, v in d.items() if k != "suggestion"}) for _, d in after}) == 1
    assert all(d["tasks"] for _, d in after), "the dispatched tasks seen by every worker"

    # Failed sign-ins are counted in Redis: the limit holds however the requests are spread over the workers.
    # The first failure is held by one worker (its body comes later) while the second goes in: it must go to
    # another worker. With a count kept in each worker the limit of 5 would then never be reached by one.
    since = log.mark()
    body = orjson.dumps({"username": "scale-officer", "password": "wrong"})
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    held.sendall(f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:8])
    holder = wait_for(lambda: worker_holding(workers, held), timeout=10, message="a worker reading the held sign-in")

    def fail() -> int:
        return requests.post(origin + "/api/session", json={"username": "scale-officer", "password": "wrong"},
                             headers={"Connection": "close"}, timeout=10).status_code

    codes = [fail()]
    held.sendall(body[8:])
    answer = b""
    while chunk := held.recv(65536):
        answer += chunk
    held.close()
    codes.insert(0, int(answer.split(b" ", 2)[1]))
    codes += [fail() for _ in range(3)]
    assert codes == [401] * 5, codes
    for password in ("wrong", TEST_PASSWORD):  # the limit reached: even the right password waits now
        r = requests.post(origin + "/api/session", json={"username": "scale-officer", "password": password},
                          headers={"Connection": "close"}, timeout=10)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts", r.text
    requests_made += 7
    failed_on = wait_for(lambda: len(p := log.pids(since, "POST", "/api/session", "401")) >= 2 and p, timeout=10,
                         message="the failed sign-ins logged by more than one worker")
    assert holder in failed_on and failed_on <= workers
    refused_by = wait_for(lambda: log.pids(since, "POST", "/api/session", "429"), timeout=10,
                          message="the refusals logged")
    figures(scale="gunicorn -w 3", workers=len(workers), workers_that_answered_every_read=len(workers),
            requests=requests_made, identical_answers=True, failed_sign_ins=5,
            workers_that_counted_the_failures=len(failed_on), workers_that_refused=len(refused_by))
