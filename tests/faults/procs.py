"""The product's real processes for fault tests: their command lines, environments and HTTP readiness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import wait_for


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


def http_get(url: str, **kwargs) -> requests.Response | None:
    """GET without raising on a refused connection or no answer in time (a server starting or gone): None then."""
    kwargs.setdefault("timeout", 5)
    try:
        return requests.get(url, **kwargs)
    except requests.RequestException:
        return None


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> requests.Response:
    """Wait until ``url`` answers at all (any status) while ``proc`` lives."""
    def up():
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        return http_get(url)
    return wait_for(up, timeout=timeout, interval=0.2, message=f"{url} answering")
