"""Connect to the message bus: a real Redis from REDIS_URL, or the embedded in-process one."""

from __future__ import annotations

import fakeredis
import redis

# Short timeouts: a dead Redis must show up as "degraded" within seconds, not hang a request.
CLIENT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 15,
                  "retry_on_timeout": False}


def make_embedded_server() -> fakeredis.FakeServer:
    """Create the in-process Redis-compatible server that the embedded default shares between threads."""
    return fakeredis.FakeServer()


def connect(url: str | None, server: fakeredis.FakeServer | None = None, **options) -> redis.Redis:
    """Return a client of ``url``, or of the embedded ``server`` when no URL is configured."""
    if url:
        return redis.Redis.from_url(url, **{**CLIENT_OPTIONS, **options})
    if server is None:
        raise ValueError("no REDIS_URL and no embedded server: nothing to connect to")
    return fakeredis.FakeRedis(server=server)


def ping(client: redis.Redis) -> tuple[bool, str]:
    """Ping the bus; return (ok, detail) without raising."""
    try:
        client.ping()
        return True, "ok"
    except (redis.ConnectionError, redis.TimeoutError, OSError) as err:
        return False, f"unreachable: {err}"
