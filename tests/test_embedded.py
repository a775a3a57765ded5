"""The embedded default starts from a clean copy of the repository and the simulator's events reach SQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import wait_for
from tests.redis_proc import free_port

ROOT = Path(__file__).resolve().parent.parent


def clean_copy(dest: Path) -> Path:
    """Copy what a clone would hold (tracked and not-ignored files), nothing the machine made."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def test_embedded_default_runs_and_stores_simulated_events(tmp_path):
    repo = clean_copy(tmp_path / "panorama")
    assert not (repo / "instance").exists()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({"PANORAMA_PORT": str(port), "PANORAMA_WS_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"})
    log = (tmp_path / "app.log").open("w+")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def health():
            try:
                return requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
            except requests.RequestException:
                return None

        doc = wait_for(lambda: (h := health()) and h["feeds"]["traffic"]["last_event_age_s"] is not None and h,
                       timeout=60, message="the simulator's first events")
        assert doc["status"] == "ok" and doc["mode"] == "embedded"
        db = repo / "instance" / "panorama.db"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] > 0
            assert conn.execute("SELECT count(DISTINCT domain) FROM events").fetchone()[0] >= 2
        summary = requests.get(f"http://127.0.0.1:{port}/api/summary", timeout=5).json()
        assert sum(summary["totals"].values()) > 0
        log.seek(0)
        assert "embedded default" in log.read()
    finally:
        proc.terminate()
        proc.wait(10)
