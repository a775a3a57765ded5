"""Run a private PostgreSQL server (initdb + pg_ctl in a temporary folder) that a test may stop and start.

The shared server on 5432 must never be stopped: other test runs use it. Debian keeps the server binaries
under /usr/lib/postgresql/<version>/bin; initdb refuses to run as root, so as root the cluster belongs to
the ``postgres`` user and every command runs as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg

from tests.helpers import wait_for
from tests.redis_proc import free_port


def find_bindir() -> Path | None:
    """Return the newest Debian PostgreSQL server bin folder that has initdb and pg_ctl, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresProcess:
    """A PostgreSQL cluster on its own port and folder; ``stop()`` is an immediate shutdown, like a crash."""

    def __init__(self, workdir: Path):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries are not installed (run tests/services.sh)")
        self.workdir = Path(workdir)
        self.data = self.workdir / "pgdata"
        self.port = free_port()
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (trust authentication on the loopback only)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._user:
            pw = pwd.getpwnam(self._user)
            shutil.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
                  "--no-instructions")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.workdir / "server.log"), "-w",
                  "-t", "30", "start")
        wait_for(self.accepts, timeout=30, message=f"PostgreSQL on port {self.port}")

    def stop(self) -> None:
        """Stop the server at once (immediate mode: no checkpoint, every connection cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def accepts(self) -> bool:
        """Tell whether the server answers a query."""
        try:
            with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                                 connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """Create ``name``, migrate it to head and return its URL."""
        from dashboard.storage.db import make_engine, upgrade

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url(name)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url

    def destroy(self) -> None:
        """Stop the server if it runs and remove its folder."""
        if self.running():
            try:
                self.stop()
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


class ReplicaProcess(PostgresProcess):
    """A streaming replica of ``primary`` (``pg_basebackup -R``: a standby that follows its WAL)."""

    def __init__(self, workdir: Path, primary: PostgresProcess):
        super().__init__(workdir)
        self.primary = primary

    def init(self) -> None:
        """Copy the primary's cluster and configure it to follow the primary."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._user:
            pw = pwd.getpwnam(self._user)
            shutil.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                  "-D", str(self.data), "-R", "-X", "stream", "--no-sync", "-c", "fast")

    def replay_paused(self, paused: bool) -> None:
        """Pause or resume applying the primary's WAL (the replica then lags on purpose)."""
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
