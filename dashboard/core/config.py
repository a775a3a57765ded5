"""Read Panorama's configuration from the environment when an app or worker is created."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Mapping

# The repository's root: assets/, instance/ and the tools' working directory.
ROOT = Path(__file__).resolve().parent.parent.parent

# Seconds of silence after which a domain's feed reads "stale": environment
# sensors report every few minutes, incidents can be quiet for a while.
DEFAULT_STALE_AFTER = {"security": 120, "traffic": 120, "environment": 600, "incident": 900}

_INT_KEYS = {"PANORAMA_PORT", "PANORAMA_WS_PORT", "PANORAMA_BATCH_SIZE", "PANORAMA_FLUSH_MS",
             "PANORAMA_DEADLETTER_CAP", "PANORAMA_WALL_CYCLE_S", "PANORAMA_POLL_MS",
             "PANORAMA_LOGIN_MAX_FAILURES", "PANORAMA_LOGIN_WINDOW_S", "PANORAMA_SESSION_HOURS", "PANORAMA_PROXY_HOPS",
             "PANORAMA_CLAIM_IDLE_MS", "PANORAMA_HOLD_LIMIT", "PANORAMA_BRIEFING_RETENTION_DAYS",
             "PANORAMA_BRIEFING_REFRESH_MS", "PANORAMA_WS_SOCKETS_PER_USER", "PANORAMA_STREAM_CAP",
             "PANORAMA_RETENTION_DAYS", "PANORAMA_ROLLUP_RETENTION_DAYS", "PANORAMA_NOTIFY_MAX_ATTEMPTS",
             "PANORAMA_NOTIFY_BACKOFF_MS", "PANORAMA_NOTIFY_BACKOFF_CAP_MS", "PANORAMA_NOTIFY_LEASE_MS",
             "PANORAMA_NOTIFY_POLL_MS", "PANORAMA_NOTIFY_TIMEOUT_S",
             "PANORAMA_OPEN_MAX_DAYS", "PANORAMA_EXPORT_MAX_ROWS"}
_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def default_config(instance_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Return the defaults of SPEC section 7 (and the tunables it leaves open)."""
    instance = Path(instance_path or Path.cwd() / "instance")
    return {
        "REDIS_URL": None,  # None: the embedded in-process bus
        "DATABASE_URL": f"sqlite:///{instance / 'panorama.db'}",
        # A PostgreSQL streaming replica for the pages' and the API's reads (None: the primary serves them).
        "DATABASE_READ_URL": None,
        "PANORAMA_CITY": "shenzhen",
        "SECRET_KEY": None,
        # None: the city pack's own zone (city.yaml; Shenzhen: Asia/Shanghai). The one place it is resolved is
        # dashboard.storage.services.build_services, which writes the zone in effect back here.
        "PANORAMA_TZ": None,
        "PANORAMA_WS_PORT": 8051,
        "PANORAMA_SIMULATE": None,  # None: on only in the embedded mode
        "PANORAMA_BRIEFING_CRON": "0 8,18 * * *",
        # Briefings older than this are pruned by the scheduler; their language (zh or en).
        "PANORAMA_BRIEFING_RETENTION_DAYS": 90,
        "PANORAMA_BRIEFING_LANG": "zh",
        # Events are kept this many days, minute rollups this many (hour rollups for ever): on PostgreSQL
        # whole day partitions are dropped (dashboard.storage.partitions), on SQLite old rows deleted.
        "PANORAMA_RETENTION_DAYS": 30,
        "PANORAMA_ROLLUP_RETENTION_DAYS": 90,
        # How often an open /briefings page asks whether the list changed (a scheduled briefing, another
        # replica's) and redraws it only then; 0: never (a reload shows them).
        "PANORAMA_BRIEFING_REFRESH_MS": 15_000,
        # The Chromium that draws the briefings' images and PDF (kaleido / choreographer read the same
        # variable); unset: the first chromium / google-chrome on PATH, and none: HTML and JSON only.
        "BROWSER_PATH": None,
        "PANORAMA_HOST": "127.0.0.1",
        "PANORAMA_PORT": 8050,
        "PANORAMA_INGEST_TOKEN": None,
        "PANORAMA_FEED_PREFIX": "feeds",
        "PANORAMA_BATCH_SIZE": 5000,
        "PANORAMA_FLUSH_MS": 250,
        "PANORAMA_DEADLETTER_CAP": 10_000,
        # Stream entries a worker took but did not acknowledge for this long are claimed by the others
        # (XAUTOCLAIM): longer than any batch write, short enough that a dead worker's entries move on.
        "PANORAMA_CLAIM_IDLE_MS": 60_000,
        # Pub/sub events one consumer holds in memory while the database is down; beyond it they are
        # counted in panorama:ingest:dropped (streams hold nothing in memory: entries wait in Redis).
        "PANORAMA_HOLD_LIMIT": 100_000,
        # Entries a feed stream may hold before POST /api/events answers 503 backlog_full. Nothing of ours
        # trims a stream by length (that would drop entries nobody has read); ingest trims what every
        # consumer group has acknowledged, so the streams stay short while ingest keeps up.
        "PANORAMA_STREAM_CAP": 1_000_000,
        "PANORAMA_STALE_AFTER": dict(DEFAULT_STALE_AFTER),
        "PANORAMA_AUTO_MIGRATE": True,
        # Where browsers reach the gateway; unset: ws://<the page's host>:PANORAMA_WS_PORT/
        "PANORAMA_WS_URL": None,
        # Origins the gateway accepts (comma-separated); unset: the app's own host and port
        "PANORAMA_WS_ORIGINS": None,
        "PANORAMA_WS_HOST": "127.0.0.1",
        # Websockets one user (or one kiosk token) may hold open at once, across every gateway
        "PANORAMA_WS_SOCKETS_PER_USER": 8,
        "PANORAMA_WALL_CYCLE_S": 15,
        # How often a page polls /api/summary?live=1 when it cannot reach the gateway
        "PANORAMA_POLL_MS": 3000,
        # Sign-in: the session cookie gets Secure (set it behind HTTPS), its lifetime, and the
        # failed sign-ins allowed per username and address within the window before a 429.
        "PANORAMA_SECURE_COOKIES": False,
        "PANORAMA_SESSION_HOURS": 12,
        "PANORAMA_LOGIN_MAX_FAILURES": 5,
        "PANORAMA_LOGIN_WINDOW_S": 300,
        # Trusted reverse proxies in front of the app: their X-Forwarded-For/-Proto/-Host give the
        # client's address (what the sign-in rate limit counts by); 0 ignores those headers.
        "PANORAMA_PROXY_HOPS": 0,
        # Notifications (docs/alerts.md, "Notifications"): a channel whose setting is unset sends nothing, its
        # messages wait in the outbox. Webhooks are signed with HMAC-SHA256 under this secret (unset: no webhooks).
        "PANORAMA_WEBHOOK_SECRET": None,
        # smtp://[user:password@]host:port (STARTTLS with ?starttls=1) or smtps://... (TLS from the start).
        "PANORAMA_SMTP_URL": None,
        "PANORAMA_SMTP_FROM": "panorama@localhost",
        # The SMS gateway: JSON {"template", "to", "params", "key"} POSTed here, with a bearer token if set.
        "PANORAMA_SMS_URL": None,
        "PANORAMA_SMS_TOKEN": None,
        "PANORAMA_SMS_TEMPLATE": "panorama_alert",
        # Tries before a message is given up as failed; the wait after the n-th failed try is
        # BACKOFF_MS * 2^(n-1), at most BACKOFF_CAP_MS (5 s, 10 s, 20 s ... 10 min).
        "PANORAMA_NOTIFY_MAX_ATTEMPTS": 8,
        "PANORAMA_NOTIFY_BACKOFF_MS": 5_000,
        "PANORAMA_NOTIFY_BACKOFF_CAP_MS": 600_000,
        # A message a sender took and did not settle within this long (it died) is taken again by another: keep
        # it well above a slow delivery (a few times the timeout), or a live sender's message is sent twice.
        "PANORAMA_NOTIFY_LEASE_MS": 120_000,
        # How often the sender looks for due messages; how long one delivery may take.
        "PANORAMA_NOTIFY_POLL_MS": 1_000,
        "PANORAMA_NOTIFY_TIMEOUT_S": 10,
        # Open data (SPEC section 14): requests per API key ("N/second|minute|hour|day", read when the app is
        # created), and how many days one request may span.
        "PANORAMA_OPEN_RATE": "60/minute",
        "PANORAMA_OPEN_MAX_DAYS": 31,
        # Single sign-on (SPEC section 13, docs/operations.md): the city's OpenID Connect provider, found by discovery
        # from its issuer (unset: no single sign-on), the scopes asked for, which claim gives each field of the user
        # ("field=claim,...", over dashboard.core.sso.DEFAULT_CLAIMS) and what the role claim's values mean
        # ("value=role,..."; unset: they are Panorama's role names).
        "PANORAMA_OIDC_ISSUER": None,
        "PANORAMA_OIDC_CLIENT_ID": None,
        "PANORAMA_OIDC_CLIENT_SECRET": None,
        "PANORAMA_OIDC_SCOPE": "openid profile",
        "PANORAMA_OIDC_CLAIMS": None,
        "PANORAMA_OIDC_ROLE_MAP": None,
        # Password accounts (POST /api/session): kept for break-glass; off, only the identity provider signs in.
        "PANORAMA_LOCAL_LOGIN": True,
        # The most rows one export of a table may hold (an Excel sheet holds 1,048,576).
        "PANORAMA_EXPORT_MAX_ROWS": 1_000_000,
        "INSTANCE_PATH": str(instance),
    }


def parse_bool(value: Any) -> bool | None:
    """Read a boolean setting; None stays None (meaning: decide by mode)."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None,
                instance_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Merge defaults, the environment and explicit overrides, in that order."""
    env = os.environ if environ is None else environ
    cfg = default_config(instance_path)
    for key in cfg:
        env_key = "PANORAMA_SECRET_KEY" if key == "SECRET_KEY" else key
        if env_key in env and env[env_key] != "":
            cfg[key] = env[env_key]
    if overrides:
        cfg.update(overrides)
    for key in _INT_KEYS:
        cfg[key] = int(cfg[key])
    for key in ("PANORAMA_RETENTION_DAYS", "PANORAMA_ROLLUP_RETENTION_DAYS"):
        if cfg[key] < 1:
            raise ValueError(f"{key} must be at least 1 (days), not {cfg[key]}")
    cfg["PANORAMA_SIMULATE"] = parse_bool(cfg["PANORAMA_SIMULATE"])
    cfg["PANORAMA_AUTO_MIGRATE"] = parse_bool(cfg["PANORAMA_AUTO_MIGRATE"])
    cfg["PANORAMA_SECURE_COOKIES"] = bool(parse_bool(cfg["PANORAMA_SECURE_COOKIES"]))
    cfg["PANORAMA_LOCAL_LOGIN"] = bool(parse_bool(cfg["PANORAMA_LOCAL_LOGIN"]))
    oidc = [k for k in ("PANORAMA_OIDC_ISSUER", "PANORAMA_OIDC_CLIENT_ID", "PANORAMA_OIDC_CLIENT_SECRET") if cfg[k]]
    if oidc and len(oidc) < 3:
        raise ValueError("single sign-on needs PANORAMA_OIDC_ISSUER, PANORAMA_OIDC_CLIENT_ID and "
                         "PANORAMA_OIDC_CLIENT_SECRET together")
    if not cfg["PANORAMA_LOCAL_LOGIN"] and not oidc:
        # Nobody could sign in at all.
        raise ValueError("PANORAMA_LOCAL_LOGIN=0 needs single sign-on (PANORAMA_OIDC_ISSUER and the client)")
    if isinstance(cfg["PANORAMA_STALE_AFTER"], str):
        # "traffic=60,incident=600" overrides the listed domains only
        stale = dict(DEFAULT_STALE_AFTER)
        for part in filter(None, cfg["PANORAMA_STALE_AFTER"].split(",")):
            name, _, seconds = part.partition("=")
            stale[name.strip()] = int(seconds)
        cfg["PANORAMA_STALE_AFTER"] = stale
    if isinstance(cfg["PANORAMA_WS_ORIGINS"], str):
        cfg["PANORAMA_WS_ORIGINS"] = [o.strip() for o in cfg["PANORAMA_WS_ORIGINS"].split(",") if o.strip()]
    if not cfg["PANORAMA_WS_ORIGINS"]:
        port = cfg["PANORAMA_PORT"]
        hosts = {cfg["PANORAMA_HOST"], "127.0.0.1", "localhost"} - {"0.0.0.0", "::"}
        cfg["PANORAMA_WS_ORIGINS"] = sorted(f"http://{h}:{port}" for h in hosts)
    if cfg["PANORAMA_NOTIFY_MAX_ATTEMPTS"] < 1:
        raise ValueError("PANORAMA_NOTIFY_MAX_ATTEMPTS must be at least 1")
    cfg["EMBEDDED"] = not cfg["REDIS_URL"]
    if cfg["PANORAMA_SIMULATE"] is None:
        cfg["PANORAMA_SIMULATE"] = cfg["EMBEDDED"]
    return cfg


def secret_key(cfg: Mapping[str, Any]) -> str:
    """Return the configured secret, or one kept in the instance folder so restarts keep sessions.

    The app signs sessions with it and the gateway checks socket tickets with it: a gateway in its own
    process needs the same PANORAMA_SECRET_KEY (or the same instance folder).
    """
    if cfg.get("SECRET_KEY"):
        return cfg["SECRET_KEY"]
    path = Path(cfg["INSTANCE_PATH"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Workers starting together must agree on one key: write it whole, then link it into place;
        # only the first link wins, the others read the winner's key.
        draft = path.with_name(f"secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
