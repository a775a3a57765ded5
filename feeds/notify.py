"""Send the outbox's notifications: webhook (signed JSON), email (SMTP) and SMS (a gateway's HTTP template).

The sender runs in every ingest worker (and the embedded default): it takes due messages from the SQL outbox
(``dashboard.storage.outbox.claim_due``: a conditional take, ``SKIP LOCKED`` on PostgreSQL, so any number of
senders share the work), delivers each, and records the outcome: sent, or pending again after a backoff, or
failed after the last try. At least once: a message is settled only after its receiver answered, so a sender
that dies before that leaves it ``sending`` until its lease runs out, and another sends it again under the same
idempotency key (which every channel carries, for the receiver to drop the second copy).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.core.clock import now_ms
from dashboard.storage import briefings, outbox

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600  # how often a sender forgets settled messages older than the events' retention
BATCH = 4  # messages taken at once, and sent side by side: a slow receiver holds up at most the others of its batch
SIGNATURE_HEADER = "X-Panorama-Signature"
TIMESTAMP_HEADER = "X-Panorama-Timestamp"
KEY_HEADER = "X-Panorama-Idempotency-Key"
USER_AGENT = "Panorama-Notify/1"


@dataclass(frozen=True)
class Outcome:
    """What one delivery came to: ok, what to log, and whether trying again could help."""

    ok: bool
    detail: str
    permanent: bool = False


@dataclass(frozen=True)
class NotifyConfig:
    """The channels' settings, read from the configuration when a worker is created."""

    webhook_secret: str | None
    smtp_url: str | None
    smtp_from: str
    sms_url: str | None
    sms_token: str | None
    sms_template: str
    max_attempts: int
    retention_days: int
    backoff_ms: int
    backoff_cap_ms: int
    lease_ms: int
    poll_ms: int
    timeout_s: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "NotifyConfig":
        """Return the settings of ``cfg`` (``dashboard.core.config.load_config``'s)."""
        return cls(webhook_secret=cfg["PANORAMA_WEBHOOK_SECRET"] or None, smtp_url=cfg["PANORAMA_SMTP_URL"] or None,
                   smtp_from=cfg["PANORAMA_SMTP_FROM"], sms_url=cfg["PANORAMA_SMS_URL"] or None,
                   sms_token=cfg["PANORAMA_SMS_TOKEN"] or None, sms_template=cfg["PANORAMA_SMS_TEMPLATE"],
                   max_attempts=cfg["PANORAMA_NOTIFY_MAX_ATTEMPTS"], retention_days=cfg["PANORAMA_RETENTION_DAYS"],
                   backoff_ms=cfg["PANORAMA_NOTIFY_BACKOFF_MS"], backoff_cap_ms=cfg["PANORAMA_NOTIFY_BACKOFF_CAP_MS"],
                   lease_ms=cfg["PANORAMA_NOTIFY_LEASE_MS"], poll_ms=cfg["PANORAMA_NOTIFY_POLL_MS"],
                   timeout_s=float(cfg["PANORAMA_NOTIFY_TIMEOUT_S"]))

    @property
    def channels(self) -> tuple[str, ...]:
        """Return the channels this process can send (the others' messages wait for a process that can)."""
        return tuple(c for c, on in (("webhook", self.webhook_secret), ("email", self.smtp_url),
                                     ("sms", self.sms_url)) if on)


# --- the channels ----------------------------------------------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the webhook signature header's value: HMAC-SHA256 of ``timestamp.body`` under the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now_s: float | None = None,
           tolerance_s: int = 300) -> bool:
    """Tell whether a webhook is ours and fresh: what a receiver does (docs/alerts.md shows it in other words)."""
    try:
        age = abs((time.time() if now_s is None else now_s) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def _http_outcome(resp: requests.Response) -> Outcome:
    text = resp.text[:300].strip()
    if 200 <= resp.status_code < 300:
        return Outcome(True, f"HTTP {resp.status_code}")
    # A refusal (bad signature, unknown address) will not change by asking again; a busy or broken one may.
    permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 409, 425, 429)
    return Outcome(False, f"HTTP {resp.status_code}: {text}" if text else f"HTTP {resp.status_code}", permanent)


def send_webhook(cfg: NotifyConfig, row: Mapping[str, Any], session: requests.Session) -> Outcome:
    """POST the payload as JSON, signed, with its idempotency key; 2xx is delivered."""
    body = row["payload"].encode()
    stamp = str(int(time.time()))  # signed at each try, so a retry is not refused as a stale replay
    headers = {"Content-Type": "application/json; charset=utf-8", KEY_HEADER: row["key"], TIMESTAMP_HEADER: stamp,
               SIGNATURE_HEADER: sign(cfg.webhook_secret, stamp, body), "User-Agent": USER_AGENT}
    resp = session.post(row["address"], data=body, headers=headers, timeout=cfg.timeout_s, allow_redirects=False)
    return _http_outcome(resp)


def message_id(key: str, domain: str = "panorama.invalid") -> str:
    """Return the Message-ID of a notification: the same for every copy of one key, so re-sends are recognisable."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email: its name and content (text is sent as UTF-8 HTML, bytes as a PDF)."""

    filename: str
    content: str | bytes


class MissingAttachment(Exception):
    """A file a message names is no longer stored (its briefing was pruned): sending again cannot help."""


def attachments(engine: Engine, row: Mapping[str, Any]) -> list[Attachment]:
    """Return the files an outbox row's payload names (``attach``: a briefing's stored HTML report, its PDF, in
    the language each names -- the reader's; none named, the briefing's own), read when it is sent rather than
    copied into every recipient's row; none for an alert's message."""
    payload = json.loads(row["payload"])
    wanted = payload.get("attach") if isinstance(payload, dict) else None
    if not wanted:
        return []
    bid = payload["briefing"]["id"]
    stored = briefings.get(engine, bid)
    if stored is None or stored["status"] != "ready":
        raise MissingAttachment(f"briefing {bid} is no longer stored: nothing to attach")
    reports: dict[str, dict | None] = {}
    out = []
    for item in wanted:
        lang = item.get("lang") or stored["lang"]
        if lang not in reports:
            reports[lang] = briefings.rendition(engine, bid, lang)
        content = (reports[lang] or {}).get(item["part"])
        if content is None:
            raise MissingAttachment(f"briefing {bid} has no {item['part']} in {lang}")
        out.append(Attachment(item["filename"], content if isinstance(content, str) else bytes(content)))
    return out


def build_email(cfg: NotifyConfig, row: Mapping[str, Any], files: Sequence[Attachment] = ()) -> EmailMessage:
    """Return the email of an outbox row: its subject and both-language body, a Message-ID from its key; with
    ``files``, multipart/mixed with each attached after the text."""
    msg = EmailMessage()
    msg["From"] = cfg.smtp_from
    msg["To"] = row["address"]
    msg["Subject"] = row["subject"]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(row["key"])
    msg[KEY_HEADER] = row["key"]
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a machine
    msg.set_content(row["body"], charset="utf-8")
    for f in files:
        if isinstance(f.content, str):
            # As bytes (base64): the file arrives exactly as stored and downloaded, not re-wrapped with CRLFs.
            msg.add_attachment(f.content.encode("utf-8"), maintype="text", subtype="html", filename=f.filename,
                               params={"charset": "utf-8"})
        else:
            msg.add_attachment(f.content, maintype="application", subtype="pdf", filename=f.filename)
    return msg


def send_email(cfg: NotifyConfig, row: Mapping[str, Any], files: Sequence[Attachment] = ()) -> Outcome:
    """Send the row's email (with ``files`` attached) through the configured SMTP server; accepted by it is
    delivered."""
    url = urlsplit(cfg.smtp_url)
    if url.scheme not in ("smtp", "smtps"):
        return Outcome(False, f"PANORAMA_SMTP_URL: unknown scheme {url.scheme!r} (smtp or smtps)", True)
    port = url.port or (465 if url.scheme == "smtps" else 25)
    client = (smtplib.SMTP_SSL(url.hostname, port, timeout=cfg.timeout_s, context=ssl.create_default_context())
              if url.scheme == "smtps" else smtplib.SMTP(url.hostname, port, timeout=cfg.timeout_s))
    try:
        if parse_qs(url.query).get("starttls", ["0"])[0] in ("1", "true", "yes"):
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        refused = client.send_message(build_email(cfg, row, files))
    except smtplib.SMTPRecipientsRefused as err:
        code, text = next(iter(err.recipients.values()))
        return Outcome(False, f"SMTP {code}: {text.decode(errors='replace')}", 500 <= code < 600)
    except smtplib.SMTPResponseException as err:
        msg = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        return Outcome(False, f"SMTP {err.smtp_code}: {msg}", 500 <= err.smtp_code < 600)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
    if refused:
        return Outcome(False, f"SMTP refused {sorted(refused)}", True)
    return Outcome(True, f"SMTP accepted by {url.hostname}:{port}")


def sms_request(cfg: NotifyConfig, row: Mapping[str, Any]) -> dict:
    """Return the SMS gateway's JSON: the template, the number and the template's parameters (Chinese: a text
    message in China is sent in the registered template's language)."""
    payload = json.loads(row["payload"])
    alert = payload.get("alert") or {}
    level = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}.get(alert.get("level"), "")
    status = {"alert_firing": "发布", "alert_resolved": "解除"}.get(payload.get("type"), "")
    return {"template": cfg.sms_template, "to": row["address"], "key": row["key"],
            "params": {"level": level, "status": status, "title": alert.get("title", row["subject"])[:120],
                       "time": payload.get("at", ""), "alert": alert.get("id")}}


def send_sms(cfg: NotifyConfig, row: Mapping[str, Any], session: requests.Session) -> Outcome:
    """POST the row's template request to the SMS gateway; 2xx is delivered."""
    headers = {KEY_HEADER: row["key"], "User-Agent": USER_AGENT}
    if cfg.sms_token:
        headers["Authorization"] = f"Bearer {cfg.sms_token}"
    resp = session.post(cfg.sms_url, json=sms_request(cfg, row), headers=headers, timeout=cfg.timeout_s,
                        allow_redirects=False)
    return _http_outcome(resp)


def deliver(cfg: NotifyConfig, row: Mapping[str, Any], session: requests.Session,
            engine: Engine | None = None) -> Outcome:
    """Send one outbox row by its channel (an email with the files its payload names, read from ``engine``); a
    fault of the network or the receiver is a failed try, not a crash."""
    try:
        if row["channel"] == "webhook":
            return send_webhook(cfg, row, session)
        if row["channel"] == "email":
            return send_email(cfg, row, attachments(engine, row) if engine is not None else ())
        if row["channel"] == "sms":
            return send_sms(cfg, row, session)
        return Outcome(False, f"unknown channel {row['channel']!r}", True)
    except MissingAttachment as err:
        return Outcome(False, str(err), True)
    except (requests.RequestException, smtplib.SMTPException, OSError, ValueError, SQLAlchemyError) as err:
        return Outcome(False, f"{type(err).__name__}: {err}")


# --- the sender ----------------------------------------------------------------------------------------------

class Sender:
    """Take due messages from the outbox, deliver them, record each try; until stopped."""

    def __init__(self, engine: Engine, cfg: NotifyConfig, stop_event: threading.Event, *, clock=now_ms):
        self.engine, self.cfg, self.stop_event, self.clock = engine, cfg, stop_event, clock
        self.channels = cfg.channels
        self.sent = self.failed = 0
        self.thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Take one batch of due messages and settle each; return how many were taken."""
        if not self.channels:
            return 0
        with self.engine.begin() as conn:
            rows = outbox.claim_due(conn, now_ms=self.clock(), lease_ms=self.cfg.lease_ms, limit=BATCH,
                                    channels=self.channels)
        if not rows:
            return 0
        with requests.Session() as session, ThreadPoolExecutor(len(rows), thread_name_prefix="notify") as pool:
            outcomes = list(pool.map(lambda r: deliver(self.cfg, r, session, self.engine), rows))
        for row, outcome in zip(rows, outcomes):
            self._settle(row, outcome)
        return len(rows)

    def _settle(self, row: dict, outcome: Outcome) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            if outcome.ok:
                outbox.mark_sent(conn, row["id"], attempts=row["attempts"], now_ms=now, detail=outcome.detail)
                self.sent += 1
                log.info("notification %s sent (%s)", row["key"], outcome.detail)
                return
            status = outbox.mark_failed(
                conn, row["id"], attempts=row["attempts"], error=outcome.detail, now_ms=now,
                max_attempts=row["attempts"] if outcome.permanent else self.cfg.max_attempts,
                base_ms=self.cfg.backoff_ms, cap_ms=self.cfg.backoff_cap_ms)
        if status == "failed":
            self.failed += 1
            log.error("notification %s failed after %d tries: %s", row["key"], row["attempts"], outcome.detail)
        else:
            log.warning("notification %s: try %d failed (%s); again later", row["key"], row["attempts"],
                        outcome.detail)

    def prune(self) -> int:
        """Forget settled messages older than the events' retention (PANORAMA_RETENTION_DAYS); return how many."""
        with self.engine.begin() as conn:
            return outbox.prune(conn, self.clock() - self.cfg.retention_days * 86_400_000)

    def _run(self) -> None:
        pruned_at = 0.0
        while not self.stop_event.is_set():
            try:
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    self.prune()
                if self.run_once():
                    continue  # more may be due: look again at once
            except Exception:  # noqa: BLE001 - a database blip must not end the sender; the lease saves its rows
                log.exception("notification sender: a round failed; retrying")
            self.stop_event.wait(self.cfg.poll_ms / 1000)

    def start(self) -> "Sender":
        """Start the sender thread."""
        self.thread = threading.Thread(target=self._run, name="notify-sender", daemon=True)
        self.thread.start()
        return self


def start_sender(services, stop_event: threading.Event) -> Sender:
    """Start the notification sender of a worker (or the embedded default) on ``services``."""
    cfg = NotifyConfig.from_config(services.config)
    sender = Sender(services.engine, cfg, stop_event)
    if cfg.channels:
        log.info("notifications: sending %s", ", ".join(cfg.channels))
    else:
        log.info("notifications: no channel configured (PANORAMA_WEBHOOK_SECRET, PANORAMA_SMTP_URL, "
                 "PANORAMA_SMS_URL); messages wait in the outbox")
    return sender.start()
