"""Name the Redis channels, streams and keys that Panorama uses."""

DOMAINS = ("security", "traffic", "environment", "incident")
DEFAULT_PREFIX = "feeds"
UNITS = "units"  # the units' feed (SPEC section 11): read by the same consumers, not an event domain
UPDATES_CHANNEL = "panorama:updates"
INGEST_GROUP = "panorama-ingest"
CLIENTS_KEY_PREFIX = "panorama:gateway:clients:"  # + the gateway's id; the key expires when a gateway dies


def feed_name(domain: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Return the channel (and stream key) of one domain, e.g. ``feeds:traffic``."""
    return f"{prefix}:{domain}"


def feed_names(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Map each channel / stream name to its domain."""
    return {feed_name(d, prefix): d for d in DOMAINS}


def units_feed(prefix: str = DEFAULT_PREFIX) -> str:
    """Return the channel (and stream key) of the units' reports, ``feeds:units``."""
    return f"{prefix}:{UNITS}"


def ingest_channels(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Map every channel / stream an ingest worker reads to its domain (the four feeds, and ``units``)."""
    return {**feed_names(prefix), units_feed(prefix): UNITS}


def deadletter_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Return the capped list that keeps rejected messages."""
    return f"{prefix}:deadletter"


def reject_counts_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Return the hash that counts rejects by ``domain|reason``."""
    return f"{prefix}:deadletter:counts"


def ingested_counts_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Return the hash that counts stored events by domain."""
    return f"{prefix}:ingested:counts"


def folded_counts_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Return the hash that counts stored events whose street or kind the rollups folded, by ``domain|field``."""
    return f"{prefix}:folded:counts"


def clients_key(gateway_id: str) -> str:
    """Return the key where one gateway keeps its client count (``/metrics`` sums them)."""
    return CLIENTS_KEY_PREFIX + gateway_id


def open_rate_key(key_id: int, window: int) -> str:
    """Return the counter of one open-data API key's requests in one fixed window (dashboard/web/ratelimit.py)."""
    return f"panorama:open:rate:{key_id}:{window}"
