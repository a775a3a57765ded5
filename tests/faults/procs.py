"""Start the product's real processes for fault tests, and end them by pid (children included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import requests

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def service_env(**extra: str) -> dict[str, str]:
    """Return this environment without Panorama's settings, plus ``extra`` (a process configured from scratch)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL", "PANORAMA_"))}
    env.update({k: str(v) for k, v in extra.items()}, PYTHONUNBUFFERED="1")
    return env


def module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def gunicorn_argv(port: int, workers: int, *extra: str) -> list[str]:
    return [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "--graceful-timeout", "3",
            "-b", f"127.0.0.1:{port}", *extra, "app:server"]


class Processes:
    """The processes one test started; ``stop_all()`` at teardown ends whatever is left."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.logdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
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
        for kid in kids:
            try:
                kid.kill()
            except psutil.NoSuchProcess:
                pass
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None


def http_get(url: str, **kwargs) -> requests.Response | None:
    """GET without raising on a refused connection (a server starting or gone): None then."""
    try:
        return requests.get(url, timeout=5, **kwargs)
    except requests.RequestException:
        return None


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> requests.Response:
    """Wait until ``url`` answers at all (any status) while ``proc`` lives."""
    def up():
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        return http_get(url)
    return wait_for(up, timeout=timeout, interval=0.2, message=f"{url} answering")
