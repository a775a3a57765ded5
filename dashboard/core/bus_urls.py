"""Parse the REDIS_URL forms redis-py cannot: a master through Sentinel, and a Redis Cluster."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_PORT = 26379
CLUSTER_SCHEME = "redis+cluster://"
CLUSTER_PORT = 6379


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are and which master (and database) of theirs to use."""

    sentinels: list[tuple[str, int]]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


@dataclass(frozen=True)
class ClusterTarget:
    """Some nodes of a Redis Cluster (any one that answers tells the client of the others) and who to sign in as."""

    nodes: list[tuple[str, int]]
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str | None) -> bool:
    """Tell whether ``url`` names a master through Redis Sentinel."""
    return bool(url) and url.lower().startswith(SENTINEL_SCHEME)


def is_cluster_url(url: str | None) -> bool:
    """Tell whether ``url`` names a Redis Cluster."""
    return bool(url) and url.lower().startswith(CLUSTER_SCHEME)


def _credentials(netloc: str) -> tuple[str | None, str | None, str]:
    """Split ``[[user]:password@]hosts`` into (username, password, hosts)."""
    userinfo, _, hosts = netloc.rpartition("@")
    if not userinfo:
        return None, None, hosts
    user, sep, pw = userinfo.partition(":")
    return unquote(user) or None, unquote(pw) if sep else None, hosts


def _addresses(hosts: str, default_port: int, what: str) -> list[tuple[str, int]]:
    """Parse ``host[:port][,host[:port]...]`` (IPv6 hosts in brackets); a host without a port gets ``default_port``."""
    out = []
    for part in filter(None, hosts.split(",")):
        host, sep, port = part.rpartition(":") if not part.endswith("]") else (part, "", "")
        if not sep:
            host, port = part, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ValueError(f"bad {what} address {part!r} in REDIS_URL")
        out.append((host, int(port)))
    return out


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db][?sentinel_password=]``.

    The password is the master's (and its replicas'); sentinels that need one of their own take
    ``sentinel_password``. A host without a port is on 26379, Sentinel's default.
    """
    if not is_sentinel_url(url):
        raise ValueError(f"not a redis+sentinel:// URL: {url!r}")
    rest, _, query = url[len(SENTINEL_SCHEME):].partition("?")
    netloc, _, path = rest.partition("/")
    username, password, hosts = _credentials(netloc)
    sentinels = _addresses(hosts, SENTINEL_PORT, "sentinel")
    parts = [unquote(p) for p in path.split("/") if p]
    if not sentinels or not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("REDIS_URL must look like redis+sentinel://host:26379[,host:26379...]/master[/db]")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    if set(params) - {"sentinel_password"}:
        raise ValueError(f"unknown REDIS_URL parameters {sorted(set(params) - {'sentinel_password'})}")
    return SentinelTarget(sentinels=sentinels, master=parts[0], db=int(parts[1]) if len(parts) == 2 else 0,
                          username=username, password=password, sentinel_password=params.get("sentinel_password"))


def parse_cluster_url(url: str) -> ClusterTarget:
    """Parse ``redis+cluster://[[user]:password@]host[:port][,host[:port]...]/``.

    Name several nodes: the client starts from the first that answers and learns the rest from it. A host
    without a port is on 6379. A cluster has database 0 only, so the path is empty (``/0`` is allowed).
    """
    if not is_cluster_url(url):
        raise ValueError(f"not a redis+cluster:// URL: {url!r}")
    rest = url[len(CLUSTER_SCHEME):]
    if "?" in rest:
        raise ValueError("a redis+cluster:// REDIS_URL takes no parameters")
    netloc, _, path = rest.partition("/")
    username, password, hosts = _credentials(netloc)
    nodes = _addresses(hosts, CLUSTER_PORT, "cluster node")
    if not nodes or path.strip("/") not in ("", "0"):
        raise ValueError("REDIS_URL must look like redis+cluster://host:6379[,host:6379...]/ (a cluster has db 0 only)")
    return ClusterTarget(nodes=nodes, username=username, password=password)


def redacted(url: str | None) -> str:
    """Return ``url`` fit for a log line: any password replaced by ``***``."""
    if not url:
        return "the embedded bus"
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}"
