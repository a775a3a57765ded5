"""Connect to the message bus from REDIS_URL: a Redis, a Sentinel-watched one, a Redis Cluster; or the embedded bus."""

from __future__ import annotations

import fakeredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode, RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException
from redis.sentinel import Sentinel

from dashboard.core.bus_urls import (  # noqa: F401 (the URL forms, used through this module too)
    ClusterTarget,
    SentinelTarget,
    is_cluster_url,
    is_sentinel_url,
    parse_cluster_url,
    parse_sentinel_url,
    redacted,
)

# Short timeouts: a dead Redis must show up as "degraded" within seconds, not hang a request.
CLIENT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 15,
                  "retry_on_timeout": False}
# What a client raises when the bus is away. A cluster adds its own, which are not all ConnectionErrors:
# no node reachable (RedisClusterException, raised when a sync client is made, an async one initialised
# or a pub/sub subscribes), a slot no node serves (SlotNotCoveredError, one of those) and CLUSTERDOWN /
# MASTERDOWN while a master is down or a failover runs (ClusterDownError, a ResponseError).
BUS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError, RedisClusterException, ClusterDownError)
# Any failure of a bus command: redis-py's cluster exceptions are not RedisErrors.
BUS_ERRORS = (redis.RedisError, RedisClusterException)
# What the async cluster client takes of CLIENT_OPTIONS (it refuses unknown keywords).
_ASYNC_CLUSTER_OPTIONS = ("socket_connect_timeout", "socket_timeout", "health_check_interval", "retry")


def _sentinel_kwargs(target: SentinelTarget, options: dict) -> dict:
    # The sentinels themselves answer with the same short timeouts as the master.
    out = {k: options[k] for k in ("socket_connect_timeout", "socket_timeout") if k in options}
    if target.sentinel_password:
        out["password"] = target.sentinel_password
    return out


def _master_kwargs(target: SentinelTarget, options: dict) -> dict:
    return {**options, "db": target.db, "username": target.username, "password": target.password}


def make_embedded_server() -> fakeredis.FakeServer:
    """Create the in-process Redis-compatible server that the embedded default shares between threads."""
    return fakeredis.FakeServer()


def connect_cluster(target: ClusterTarget, **options) -> RedisCluster:
    """Return a cluster client: it asks the first node that answers for the slot map (raising
    RedisClusterException when none does) and follows MOVED redirections and failovers from then on."""
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.nodes], username=target.username,
                        password=target.password, **options)


def connect(url: str | None, server: fakeredis.FakeServer | None = None, **options) -> redis.Redis | RedisCluster:
    """Return a client of ``url``, or of the embedded ``server`` when no URL is configured.

    With ``redis+sentinel://`` the client asks the sentinels for the current master on every new
    connection, so after a failover the next reconnect (every consumer and request reconnects by
    itself) reaches the promoted replica. With ``redis+cluster://`` it connects at once (see
    ``connect_cluster``): a caller that must outlive a cluster outage makes it where it handles BUS_DOWN.
    """
    if url:
        opts = {**CLIENT_OPTIONS, **options}
        if is_cluster_url(url):
            # The cluster client retries timeouts itself (with a new slot map) and deprecates the option.
            opts.pop("retry_on_timeout", None)
            return connect_cluster(parse_cluster_url(url), **opts)
        if is_sentinel_url(url):
            target = parse_sentinel_url(url)
            sentinel = Sentinel(target.sentinels, sentinel_kwargs=_sentinel_kwargs(target, opts))
            return sentinel.master_for(target.master, **_master_kwargs(target, opts))
        return redis.Redis.from_url(url, **opts)
    if server is None:
        raise ValueError("no REDIS_URL and no embedded server: nothing to connect to")
    return fakeredis.FakeRedis(server=server)


def connect_async(url: str | None, server: fakeredis.FakeServer | None = None,
                  **options) -> aioredis.Redis | AsyncRedisCluster:
    """Return an asyncio client of ``url`` (plain, Sentinel or cluster), or of the embedded ``server``.

    A cluster client learns the slot map on its first command; a pub/sub needs ``initialized`` first.
    """
    if not url:
        from fakeredis.aioredis import FakeRedis

        return FakeRedis(server=server)
    if is_cluster_url(url):
        target = parse_cluster_url(url)
        return AsyncRedisCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in target.nodes],
                                 username=target.username, password=target.password,
                                 **{k: v for k, v in options.items() if k in _ASYNC_CLUSTER_OPTIONS})
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = AsyncSentinel(target.sentinels, sentinel_kwargs=_sentinel_kwargs(target, options))
        return sentinel.master_for(target.master, **_master_kwargs(target, options))
    return aioredis.Redis.from_url(url, **options)


def is_cluster(client) -> bool:
    """Tell whether ``client`` (or a pipeline of it) talks to a Redis Cluster."""
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


async def initialized(client):
    """Return ``client`` ready for pub/sub: a cluster client once it holds the slot map (redis-py's async
    ClusterPubSub cannot pick a node before: it fails with a KeyError), any other as it is."""
    if isinstance(client, AsyncRedisCluster):
        await client.initialize()
    return client


def slot_groups(client, keys: list[str]) -> list[list[str]]:
    """Group ``keys`` so that one multi-key command may take each group: all together on one server,
    by hash slot on a cluster (a command whose keys are in different slots is refused there)."""
    if not is_cluster(client):
        return [list(keys)] if keys else []
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(client.keyslot(key), []).append(key)
    return list(groups.values())


def ping(client: redis.Redis) -> tuple[bool, str]:
    """Ping the bus; return (ok, detail) without raising."""
    try:
        if is_cluster(client):
            # Every master must answer (each serves slots); a replica that is down costs nothing until a
            # failover needs it, so it does not make the bus "unreachable". redis-py pings every node by default.
            client.ping(target_nodes=RedisCluster.PRIMARIES)
        else:
            client.ping()
        return True, "ok"
    except BUS_DOWN as err:
        return False, f"unreachable: {err}"
