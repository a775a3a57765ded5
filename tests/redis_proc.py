"""Run a private redis-server that a test may stop and restart (the shared one must stay up)."""

from __future__ import annotations

import random
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


CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on its port + 10000 for the cluster bus


def free_cluster_port(attempts: int = 200) -> int:
    """Return a port free on the loopback now whose cluster-bus port (+10000) is free too."""
    rng = random.Random()
    for _ in range(attempts):
        port = rng.randrange(20000, 65535 - CLUSTER_BUS_OFFSET)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports for a cluster node")


class ClusterNodeProcess(_Server):
    """One master of a private Redis Cluster: no persistence but its ``nodes-<port>.conf``, so it can restart."""

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.port = free_cluster_port()

    def start(self) -> None:
        self._launch(["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                      "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{self.port}.conf",
                      "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
                      "--loglevel", "warning"], "cluster node")


class RedisCluster:
    """A private Redis Cluster, three masters by default with no replicas, made with ``redis-cli --cluster create``."""

    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 0):
        self.cli = shutil.which("redis-cli")
        if self.cli is None:
            raise RuntimeError("redis-cli is not installed (run tests/services.sh)")
        self.replicas = replicas
        self.nodes = [ClusterNodeProcess(workdir) for _ in range(masters * (1 + replicas))]

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes) + "/"

    def start(self) -> None:
        """Start the nodes, join them into one cluster and wait until every node says it is ok."""
        for node in self.nodes:
            node.start()
        subprocess.run([self.cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"], check=True, capture_output=True,
                       timeout=60)
        self.wait_ok()
        # cluster_state:ok comes before the replicas' first sync; a failover before it would lose everything
        wait_for(lambda: all(_synced(n.port) for n in self.nodes), timeout=60, interval=0.1,
                 message="every replica in sync with its master")

    def start_stopped(self) -> None:
        """Start again every node that is not running (same port, same cluster config) and wait until all are ok."""
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                node.start()
        self.wait_ok()

    def wait_ok(self, timeout: float = 30) -> None:
        """Wait until every node reports ``cluster_state:ok`` (all slots served, all nodes known)."""
        wait_for(lambda: all(_cluster_state(n.port) == "ok" for n in self.nodes), timeout=timeout,
                 interval=0.1, message="cluster_state:ok on every node")

    def client(self, port: int | None = None) -> redis.Redis:
        """A plain client of one node (the first by default): for CLUSTER commands and per-node checks."""
        return redis.Redis(port=port or self.nodes[0].port)

    def keyslot(self, key: str) -> int:
        """Ask the cluster which hash slot ``key`` is in (CLUSTER KEYSLOT)."""
        with self.client() as c:
            return int(c.execute_command("CLUSTER KEYSLOT", key))

    def owner(self, key: str) -> int:
        """Return the port of the master serving ``key``'s slot."""
        slot = self.keyslot(key)
        with self.client() as c:
            for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise AssertionError(f"slot {slot} is not served")

    def node(self, port: int) -> ClusterNodeProcess:
        """Return the node listening on ``port``."""
        return next(n for n in self.nodes if n.port == port)

    def flushall(self) -> None:
        """Empty every master (replicas follow)."""
        for node in self.nodes:
            with self.client(node.port) as c:
                if c.info("replication")["role"] == "master":
                    c.flushall()

    def stop(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.stop()


def _cluster_state(port: int) -> str | None:
    client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        return client.cluster("info").get("cluster_state")
    except (redis.ConnectionError, redis.TimeoutError):
        return None
    finally:
        client.close()


def _synced(port: int) -> bool:
    """Tell whether the node on ``port`` is a master or a replica whose link to its master is up."""
    client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        info = client.info("replication")
        return info["role"] == "master" or info.get("master_link_status") == "up"
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()
