"""Run a private redis-server that a test may stop and restart (the shared one must stay up)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import redis

from tests.helpers import wait_for


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """A ``redis-server`` process on a free port of its own, in ``workdir``: started, waited for, killed."""

    def __init__(self, workdir: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (run tests/services.sh)")
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def _launch(self, argv: list[str], what: str) -> None:
        """Run ``redis-server <argv>`` and wait until it answers PING."""
        self.proc = subprocess.Popen([self.binary, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_for(lambda: _pings(client), timeout=10, message=f"{what} on port {self.port}")
        client.close()

    def stop(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


class RedisProcess(_Server):
    """A redis-server on its own port and folder, durable (AOF, fsync always) like a production one."""

    def __init__(self, workdir: Path, *extra_args: str):
        super().__init__(workdir)
        self.extra_args = list(extra_args)  # e.g. "--replicaof", "127.0.0.1", "6380"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self._launch(["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                      "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--loglevel", "warning",
                      *self.extra_args], "redis-server")

    def run_id(self) -> str:
        """Return the server's run id: it changes with every start."""
        client = redis.Redis(port=self.port)
        try:
            return client.info("server")["run_id"]
        finally:
            client.close()

    def restart(self) -> None:
        """Crash and start again on the same port and data."""
        self.stop()
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


class SentinelProcess(_Server):
    """A ``redis-server --sentinel`` watching one master (quorum 1, quick to fail over: it is a test)."""

    def __init__(self, workdir: Path, master: str, master_port: int, down_after_ms: int = 1000):
        super().__init__(workdir)
        self.master = master
        self.conf = workdir / f"sentinel-{self.port}.conf"
        # Sentinel rewrites its file as it learns the topology: it must be writable and its own.
        self.conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n"
                             f"sentinel monitor {master} 127.0.0.1 {master_port} 1\n"
                             f"sentinel down-after-milliseconds {master} {down_after_ms}\n"
                             f"sentinel failover-timeout {master} 10000\n"
                             f"sentinel parallel-syncs {master} 1\n")

    def start(self) -> None:
        self._launch([str(self.conf), "--sentinel", "--loglevel", "warning"], "sentinel")

    def master_port(self) -> int | None:
        """Return the port of the master the sentinel names now."""
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            addr = client.sentinel_get_master_addr_by_name(self.master)
            return int(addr[1]) if addr else None
        except (redis.ConnectionError, redis.TimeoutError):
            return None
        finally:
            client.close()
