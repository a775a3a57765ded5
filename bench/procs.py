"""Start real processes with a log file each, and end them by pid (children included)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


class Processes:
    """Named processes started from the repository root, each writing to ``<logdir>/<name>.log``;
    ``stop_all()`` ends whatever is left."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with (self.logdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[name] = proc
        return proc

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def signal(self, name: str, sig: int) -> None:
        os.kill(self.procs[name].pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL the process, as a crash or the OOM killer would; reap it."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def stop(self, name: str) -> int | None:
        """End a process politely (SIGTERM), then by force; also any child it left; return its exit code."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for kid in kids:  # gunicorn's workers normally leave with their master
            try:
                kid.kill()
            except psutil.NoSuchProcess:
                pass
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def log(self, name: str) -> str:
        """Everything the process wrote so far ("" before it wrote anything)."""
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, name: str, n: int = 3000) -> str:
        """The last ``n`` characters of the process's log."""
        return self.log(name)[-n:]

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def dead(self) -> list[str]:
        """The names of the processes that have exited (and were not stopped)."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(procs: Processes, name: str = "redis", timeout: float = 20) -> str:
    """Start a private redis-server (no persistence) and return its URL once it answers.

    The shipped ingest worker publishes its deltas on ``panorama:updates``, and pub/sub channels are shared by
    every db of a server: a server of the benchmark's own lets it run the worker unchanged without flooding
    other people's gateways.
    """
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = procs.start(name, [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], dict(os.environ))
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}: {procs.tail(name)}")
        try:
            with redis.Redis.from_url(url, socket_timeout=1) as client:
                client.ping()
            return url
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {port} within {timeout:.0f} s") from None
            time.sleep(0.05)


def quit_browser(driver, known: list[int] = ()) -> None:
    """Quit a Selenium Chromium, then kill whatever of it outlived quit(): the driver's children now and ``known``."""
    pids = set(known)
    try:
        pids.update(p.pid for p in psutil.Process(driver.service.process.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        pass
    try:
        driver.quit()
    except Exception:  # noqa: BLE001  (a browser that already died cannot be quit; it is killed below)
        pass
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
