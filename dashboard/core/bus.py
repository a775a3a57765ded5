"""Connect to the message bus: a real Redis (or a Sentinel-watched one) from REDIS_URL, or the embedded bus."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import fakeredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

# Short timeouts: a dead Redis must show up as "degraded" within seconds, not hang a request.
CLIENT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 15,
                  "retry_on_timeout": False}
SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are and which master (and database) of theirs to use."""

    sentinels: list[tuple[str, int]]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str | None) -> bool:
    """Tell whether ``url`` names a master through Redis Sentinel."""
    return bool(url) and url.lower().startswith(SENTINEL_SCHEME)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db][?sentinel_password=]``.

    The password is the master's (and its replicas'); sentinels that need one of their own take
    ``sentinel_password``. A host without a port is on 26379, Sentinel's default.
    """
    if not is_sentinel_url(url):
        raise ValueError(f"not a redis+sentinel:// URL: {url!r}")
    rest = url[len(SENTINEL_SCHEME):]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, sep, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    sentinels = []
    for part in filter(None, hosts.split(",")):
        host, sep, port = part.rpartition(":") if not part.endswith("]") else (part, "", "")
        if not sep:
            host, port = part, str(SENTINEL_PORT)
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ValueError(f"bad sentinel address {part!r} in REDIS_URL")
        sentinels.append((host, int(port)))
    parts = [unquote(p) for p in path.split("/") if p]
    if not sentinels or not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("REDIS_URL must look like redis+sentinel://host:26379[,host:26379...]/master[/db]")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    if set(params) - {"sentinel_password"}:
        raise ValueError(f"unknown REDIS_URL parameters {sorted(set(params) - {'sentinel_password'})}")
    return SentinelTarget(sentinels=sentinels, master=parts[0], db=int(parts[1]) if len(parts) == 2 else 0,
                          username=username, password=password, sentinel_password=params.get("sentinel_password"))


def _sentinel_kwargs(target: SentinelTarget, options: dict) -> dict:
    # The sentinels themselves answer with the same short timeouts as the master.
    out = {k: options[k] for k in ("socket_connect_timeout", "socket_timeout") if k in options}
    if target.sentinel_password:
        out["password"] = target.sentinel_password
    return out


def _master_kwargs(target: SentinelTarget, options: dict) -> dict:
    return {**options, "db": target.db, "username": target.username, "password": target.password}


def redacted(url: str | None) -> str:
    """Return ``url`` fit for a log line: any password replaced by ``***``."""
    if not url:
        return "the embedded bus"
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}"


def make_embedded_server() -> fakeredis.FakeServer:
    """Create the in-process Redis-compatible server that the embedded default shares between threads."""
    return fakeredis.FakeServer()


def connect(url: str | None, server: fakeredis.FakeServer | None = None, **options) -> redis.Redis:
    """Return a client of ``url``, or of the embedded ``server`` when no URL is configured.

    With ``redis+sentinel://`` the client asks the sentinels for the current master on every new
    connection, so after a failover the next reconnect (every consumer and request reconnects by
    itself) reaches the promoted replica.
    """
    if url:
        opts = {**CLIENT_OPTIONS, **options}
        if is_sentinel_url(url):
            target = parse_sentinel_url(url)
            sentinel = Sentinel(target.sentinels, sentinel_kwargs=_sentinel_kwargs(target, opts))
            return sentinel.master_for(target.master, **_master_kwargs(target, opts))
        return redis.Redis.from_url(url, **opts)
    if server is None:
        raise ValueError("no REDIS_URL and no embedded server: nothing to connect to")
    return fakeredis.FakeRedis(server=server)


def connect_async(url: str | None, server: fakeredis.FakeServer | None = None, **options) -> aioredis.Redis:
    """Return an asyncio client of ``url`` (plain or Sentinel), or of the embedded ``server``."""
    if not url:
        from fakeredis.aioredis import FakeRedis

        return FakeRedis(server=server)
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = AsyncSentinel(target.sentinels, sentinel_kwargs=_sentinel_kwargs(target, options))
        return sentinel.master_for(target.master, **_master_kwargs(target, options))
    return aioredis.Redis.from_url(url, **options)


def ping(client: redis.Redis) -> tuple[bool, str]:
    """Ping the bus; return (ok, detail) without raising."""
    try:
        client.ping()
        return True, "ok"
    except (redis.ConnectionError, redis.TimeoutError, OSError) as err:
        return False, f"unreachable: {err}"
