"""The outbox across a crash: real ingest workers (``python -m feeds.ingest``) killed after the alert commits and
before its notification is sent, or while sending it; a restarted worker delivers it, under one key."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import select

from dashboard.storage import outbox
from dashboard.storage.models import alerts
from feeds.publish import publish
from tests.helpers import wait_for
from tests.receivers import HttpReceiver
from tests.test_alerts import MIN, aqi, now_ms
from tests.test_alerts_workers import _env
from tests.test_notify import RULES, SECRET, pack

HOOK_ONLY = """\
policies:
  - id: env
    to:
      - {{channel: webhook, address: "{hook}"}}
  - id: urgent_only
    levels: [red]
    to:
      - {{channel: webhook, address: "{hook}/urgent"}}
"""


@pytest.fixture
def hook():
    receiver = HttpReceiver(SECRET)
    yield receiver
    receiver.close()


def start_worker(procs, name, env, redis_client):
    procs.start(name, [sys.executable, "-m", "feeds.ingest", "--transport", "stream", "--consumer", name], env)
    wait_for(lambda: "ingest worker:" in procs.log(name), timeout=60, message=f"{name} started")


def fire(redis_client, pg_engine) -> dict:
    """Publish readings that fire the red AQI rule at once; return the alert when it has committed."""
    now = now_ms()
    for ev in (aqi(1, 180, now - 11 * MIN), aqi(2, 190, now)):
        publish(redis_client, "environment", ev, transport="stream")

    def fired():
        with pg_engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.rule == "aqi_high")).mappings().first()
        return dict(row) if row and row["status"] == "firing" else None
    return wait_for(fired, timeout=60, message="the alert firing")


def the_message(pg_engine, alert_id: int, hook: HttpReceiver) -> dict:
    with pg_engine.connect() as conn:
        row = outbox.get(conn, f"alert:{alert_id}:firing:webhook:{hook.url('')}")
        assert row is not None
        return {**row, "log": outbox.attempts_of(conn, [row["id"]])[row["id"]]}


@pytest.mark.timeout(240)
def test_a_worker_killed_after_the_alert_commits_and_before_sending_leaves_it_to_the_next(
        pg_url, pg_engine, redis_url, redis_client, tmp_path, procs, hook):
    city = pack(tmp_path, hook.url(""), RULES)
    (city.path / "notifications.yaml").write_text(HOOK_ONLY.format(hook=hook.url("")), encoding="utf-8")
    env = _env(REDIS_URL=redis_url, DATABASE_URL=pg_url, PANORAMA_CITY=str(city.path),
               PANORAMA_WEBHOOK_SECRET=SECRET)
    # The first worker's sender looks for due messages once at its start and then not for ten minutes: the alert
    # commits with its message in that gap, and the worker dies before sending it. (A setting every sender has,
    # not a hook for the test: the gap between commit and send is what is widened, the code is the same.)
    start_worker(procs, "w1", {**env, "PANORAMA_NOTIFY_POLL_MS": "600000"}, redis_client)
    alert = fire(redis_client, pg_engine)
    msg = the_message(pg_engine, alert["id"], hook)
    assert (msg["status"], msg["attempts"]) == ("pending", 0)
    procs.kill("w1")  # SIGKILL: no goodbye
    assert hook.got == []
    start_worker(procs, "w2", {**env, "PANORAMA_NOTIFY_POLL_MS": "100"}, redis_client)
    wait_for(lambda: the_message(pg_engine, alert["id"], hook)["status"] == "sent", timeout=60,
             message="the restarted worker sent it")
    [req] = hook.got
    assert req.verified and req.key == msg["key"] and req.json["alert"]["id"] == alert["id"]
    done = the_message(pg_engine, alert["id"], hook)
    assert done["attempts"] == 1 and [a["ok"] for a in done["log"]] == [True]
    assert procs.dead() == []


@pytest.mark.timeout(240)
def test_a_worker_killed_while_sending_is_taken_over_after_its_lease_under_the_same_key(
        pg_url, pg_engine, redis_url, redis_client, tmp_path, procs, hook):
    city = pack(tmp_path, hook.url(""), RULES)
    (city.path / "notifications.yaml").write_text(HOOK_ONLY.format(hook=hook.url("")), encoding="utf-8")
    env = _env(REDIS_URL=redis_url, DATABASE_URL=pg_url, PANORAMA_CITY=str(city.path),
               PANORAMA_WEBHOOK_SECRET=SECRET, PANORAMA_NOTIFY_POLL_MS="100")
    hook.hold.clear()  # the receiver takes the first request and does not answer yet
    # A lease of 5 s, a timeout of a minute: the worker is still waiting on the receiver when it is killed.
    start_worker(procs, "w1", {**env, "PANORAMA_NOTIFY_LEASE_MS": "5000", "PANORAMA_NOTIFY_TIMEOUT_S": "60"},
                 redis_client)
    alert = fire(redis_client, pg_engine)
    wait_for(lambda: len(hook.got) == 1, timeout=60, message="the first worker sending")
    assert the_message(pg_engine, alert["id"], hook)["status"] == "sending"
    procs.kill("w1")
    hook.hold.set()
    start_worker(procs, "w2", env, redis_client)
    wait_for(lambda: the_message(pg_engine, alert["id"], hook)["status"] == "sent", timeout=60,
             message="the second worker took it over after the lease")
    # Delivered at least once: the receiver saw the same key twice (the first copy was never answered), and
    # deduplicating by the key it acts once.
    assert len(hook.got) == 2 and {r.key for r in hook.got} == {f"alert:{alert['id']}:firing:webhook:{hook.url('')}"}
    assert all(r.verified for r in hook.got)
    done = the_message(pg_engine, alert["id"], hook)
    assert done["attempts"] == 2
    assert [(a["ok"], (a["detail"] or "")[:13]) for a in done["log"]] == [(False, "lease expired"), (True, "HTTP 200")]
    assert procs.dead() == []
