"""The production entry points of SPEC section 8 run as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from sqlalchemy import func, select

from dashboard.storage.models import events
from feeds.publish import publish
from tests.helpers import make_event, wait_for
from tests.redis_proc import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


def test_ingest_worker_process_stores_stream_and_pubsub(pg_url, pg_engine, redis_url, redis_client, tmp_path):
    log = (tmp_path / "ingest.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "feeds.ingest"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=_env(REDIS_URL=redis_url, DATABASE_URL=pg_url))
    try:
        wait_for(lambda: redis_client.pubsub_numsub("feeds:traffic")[0][1] >= 1, timeout=30,
                 message="the worker subscribed")
        publish(redis_client, "traffic", [make_event(i) for i in range(100)], transport="stream")
        publish(redis_client, "traffic", [make_event(i) for i in range(100, 150)], transport="pubsub")

        def count():
            with pg_engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(events)).scalar_one()

        wait_for(lambda: count() == 150, timeout=30, message="150 events stored by the worker")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0


def test_ingest_worker_refuses_to_start_without_redis_url():
    out = subprocess.run([sys.executable, "-m", "feeds.ingest"], cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "REDIS_URL" in out.stderr


def test_gunicorn_serves_the_app(pg_url, redis_url, redis_client, tmp_path):
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen([str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "app:server"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(REDIS_URL=redis_url, DATABASE_URL=pg_url, PANORAMA_SECRET_KEY="k"))
    try:
        def get(path):
            try:
                return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            except requests.RequestException:
                return None

        health = wait_for(lambda: get("/api/health"), timeout=60, message="gunicorn answering")
        assert health.status_code == 200 and health.json()["mode"] == "production"
        page = get("/")
        assert page.status_code == 200 and "城市运行全景" in page.text
    finally:
        proc.terminate()
        proc.wait(15)
