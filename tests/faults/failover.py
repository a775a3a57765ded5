"""What the Redis failover tests share: the stack under test, publishers that note every acknowledgement, and
the check that only what the old master acknowledged in its last moments may be lost."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import orjson
import redis
import requests
from sqlalchemy import select

from dashboard.core import bus as buslib
from dashboard.core.channels import INGEST_GROUP, feed_names
from dashboard.storage.models import events
from feeds.publish import publish
from tests.faults.common import WsWatcher, listening, make_events, stored, totals, ws_url
from tests.faults.procs import gunicorn_argv, module_argv, service_env, wait_http
from tests.helpers import wait_for
from tests.redis_proc import free_port

# Redis replicates asynchronously: what a master acknowledged this long before it died has reached its replica.
REPLICATION_WINDOW_S = 1.0


class AckingPublisher(threading.Thread):
    """Send ``batches`` batches of ``size`` events through ``send(batch) -> bool`` (True: acknowledged) about
    every ``every_s`` seconds; resend a batch until it is acknowledged (the store keeps a repeated id once), and
    note when each was acknowledged."""

    def __init__(self, name: str, send, domain: str, first_id: int, batches: int, size: int = 20,
                 every_s: float = 0.02):
        super().__init__(daemon=True, name=name)
        self.send, self.domain, self.first_id = send, domain, first_id
        self.batches, self.size, self.every_s = batches, size, every_s
        self.acked: dict[str, float] = {}  # event id -> when it was acknowledged (monotonic)
        self.refused = 0  # attempts not acknowledged (an error, a 503, no answer): the batch is sent again
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for k in range(self.batches):
                batch = make_events(self.first_id + k * self.size, self.size, self.domain)
                while not self.stop_event.is_set() and not self.send(batch):
                    self.refused += 1
                    self.stop_event.wait(0.05)
                if self.stop_event.is_set():
                    return
                at = time.monotonic()
                self.acked.update((e["id"], at) for e in batch)
                self.stop_event.wait(self.every_s)
        except BaseException as err:  # noqa: BLE001 - the test reports it
            self.error = err

    def finish(self) -> None:
        self.stop_event.set()
        self.join(30)


def stream_sender(url: str):
    """``feeds.publish`` over ``url`` (a Sentinel or Cluster URL), as the simulator and a Python publisher use
    it: acknowledged when XADD answered; after any bus error the batch is sent again on a new client."""
    state = {"client": None}

    def send(batch: list[dict]) -> bool:
        try:
            state["client"] = state["client"] or buslib.connect(url, socket_connect_timeout=0.5, socket_timeout=2)
            publish(state["client"], batch[0]["id"].split("-")[0], batch, transport="stream")
            return True
        except buslib.BUS_DOWN:
            state["client"] = None
            return False
    return send


def http_sender(origin: str, token: str):
    """``POST /api/events`` through gunicorn: acknowledged when it answered 202."""
    def send(batch: list[dict]) -> bool:
        try:
            domain = batch[0]["id"].split("-")[0]
            r = requests.post(f"{origin}/api/events?domain={domain}", data=orjson.dumps(batch), timeout=5,
                              headers={"Authorization": f"Bearer {token}", "Connection": "close"})
        except requests.RequestException:
            return False
        if r.status_code == 202:
            assert r.json()["accepted"] == len(batch), r.text
            return True
        assert r.status_code == 503 and r.json()["error"]["code"] == "bus_unavailable", (r.status_code, r.text)
        return False
    return send


def stored_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(events.c.event_id)).scalars())


def settled(client) -> bool:
    """Tell whether the ingest group has read and acknowledged every entry of every feed stream (XINFO lag)."""
    for stream in feed_names():
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:
            continue  # no such stream (lost with a master that had not passed it on)
        mine = [g for g in groups if g["name"] in (INGEST_GROUP, INGEST_GROUP.encode())]
        if mine and (mine[0]["pending"] or mine[0].get("lag")):
            return False
    return True


def start_stack(procs, url: str, pg_url: str, pg_engine, app_workers: int) -> SimpleNamespace:
    """Start an ingest worker, a gateway and gunicorn on the bus ``url``, a websocket watcher, and two
    publishers on the product's own paths (XADD on traffic, POST /api/events on security), neither of which
    waits for a replica; return once events are stored and pushed."""
    gw_port, app_port = free_port(), free_port()
    env = service_env(REDIS_URL=url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="faults", PANORAMA_WS_PORT=gw_port,
                      PANORAMA_CLAIM_IDLE_MS=3000, PANORAMA_INGEST_TOKEN="faults-token")
    worker = procs.start("ingest", module_argv("feeds.ingest", "--transport", "stream"), env)
    procs.start("gateway", module_argv("dashboard.gateway"), env)
    gunicorn = procs.start("app", gunicorn_argv(app_port, app_workers), env)
    origin = f"http://127.0.0.1:{app_port}"
    wait_http(origin + "/api/health", gunicorn)
    wait_for(lambda: listening(gw_port), timeout=60, message="the gateway listening")
    watcher = WsWatcher(ws_url(gw_port, "faults"))
    watcher.start()
    publishers = [AckingPublisher("xadd", stream_sender(url), "traffic", 0, batches=300),
                  AckingPublisher("http", http_sender(origin, "faults-token"), "security", 1_000_000, batches=150,
                                  every_s=0.04)]
    for p in publishers:
        p.start()
    stack = SimpleNamespace(worker=worker, gunicorn=gunicorn, origin=origin, watcher=watcher, publishers=publishers)
    try:
        wait_for(lambda: stored(pg_engine) >= 1000, timeout=60, message="events stored through the bus")
        wait_for(lambda: watcher.event_ids(), timeout=30, message="deltas through the gateway")
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def stop_stack(stack: SimpleNamespace) -> None:
    """Stop the publishers and the watcher (the processes are the ``procs`` fixture's)."""
    for p in stack.publishers:
        p.finish()
    stack.watcher.ws.close()


def pushing_again_s(stack: SimpleNamespace, down_at: float) -> float:
    """Wait until the gateway pushes an event acknowledged after ``down_at``; return when that frame came."""
    def acked_after() -> set[str]:
        return {i for p in stack.publishers for i, at in list(p.acked.items()) if at > down_at}
    wait_for(lambda: any(at > down_at for p in stack.publishers for at in list(p.acked.values())), timeout=60,
             message="publishing acknowledged again after the failover")
    # Re-read each time: a frame carries a batch's newest events only, and the first ones acknowledged after
    # the failover may be among a catch-up batch's older ones.
    wait_for(lambda: acked_after() & stack.watcher.event_ids(down_at), timeout=60,
             message="the gateway pushing events published after the failover")
    after = acked_after()
    # when the frame came, not when this wait saw it
    return stack.watcher.first(lambda f: any(e["id"] in after for e in f.get("events", ())), down_at) - down_at


def losses(pg_engine, stack: SimpleNamespace, down_at: float, failover_s: float) -> dict:
    """Check that every acknowledged entry is stored once but those the old master acknowledged within
    ``REPLICATION_WINDOW_S`` of its death, and nothing unacknowledged is; return the figures of the loss."""
    assert stack.worker.poll() is None and stack.gunicorn.poll() is None
    publishers = stack.publishers
    in_db = stored_ids(pg_engine)
    counts = totals(pg_engine)
    assert counts["events"] == counts["distinct"] == counts["rollups"] == counts["district_minutes"] == len(in_db)
    acked = {i: at for p in publishers for i, at in p.acked.items()}
    lost = {i: at for i, at in acked.items() if i not in in_db}
    assert in_db <= set(acked), "stored only what was published"
    # Only what the old master acknowledged in its last moments may be gone; everything acknowledged after
    # the failover, and everything acknowledged earlier, is stored.
    late = {i: round(down_at - at, 3) for i, at in lost.items() if not down_at - REPLICATION_WINDOW_S <= at}
    assert not late, f"lost entries acknowledged long before the kill: {late}"
    assert not [i for i, at in lost.items() if at > down_at + failover_s], "lost an entry the new master took"
    lost_by = {p.name: sum(1 for i in p.acked if i in lost) for p in publishers}
    return dict(acknowledged_xadd=len(publishers[0].acked), acknowledged_http_202=len(publishers[1].acked),
                stored=len(in_db), lost_xadd=lost_by["xadd"], lost_http=lost_by["http"],
                lost_acknowledged_within_ms_of_kill=round(max((down_at - at for at in lost.values()), default=0)
                                                          * 1000),
                refused_and_resent_xadd=publishers[0].refused, refused_and_resent_http=publishers[1].refused)


def join_publishers(stack: SimpleNamespace, timeout: float) -> None:
    """Wait for every publisher to have sent all its batches, and fail on any publisher's error."""
    for p in stack.publishers:
        p.join(timeout)
        assert not p.is_alive() and p.error is None, (p.name, p.error)
