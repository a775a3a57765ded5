"""Real receivers for notification tests: a local HTTP server (webhooks, the SMS gateway) and an SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from bench.procs import free_port
from feeds.notify import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Received:
    """One request the HTTP receiver got: path, headers, body, whether its signature checked, what it answered."""

    path: str
    headers: dict
    body: bytes
    verified: bool
    answered: int | None = None

    @property
    def key(self) -> str:
        return self.headers.get(KEY_HEADER.lower(), "")

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A threaded HTTP server on 127.0.0.1 recording every POST; it answers ``statuses`` in turn (then 200), or
    those of the request's path in ``by_path``; while ``hold`` is clear it keeps each request waiting unanswered
    (a receiver that hangs)."""

    secret: str = "test-secret"
    statuses: list[int] = field(default_factory=list)
    by_path: dict[str, list[int]] = field(default_factory=dict)
    got: list[Received] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.hold.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server spelling
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                item = Received(self.path, headers, body, verify(receiver.secret, headers.get(
                    TIMESTAMP_HEADER.lower(), ""), body, headers.get(SIGNATURE_HEADER.lower(), "")))
                with receiver._lock:
                    receiver.got.append(item)
                receiver.hold.wait(120)
                with receiver._lock:
                    queue = receiver.by_path.get(self.path, receiver.statuses)
                    status = queue.pop(0) if queue else 200
                item.answered = status
                payload = b'{"ok": true}' if status < 300 else b"busy, try later"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender died while we held it

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def answered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.got if r.answered is not None]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class _Mailbox:
    def __init__(self, refuse: set[str]):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 keeping every message; addresses in ``refuse`` get 550."""

    def __init__(self, refuse: set[str] | None = None):
        self.box = _Mailbox(refuse or set())
        self.controller = Controller(self.box, hostname="127.0.0.1", port=free_port())
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return list(self.box.messages)

    def close(self) -> None:
        self.controller.stop()
