"""Run the tests' OpenID Connect provider (tests/oidc_provider.mjs, the certified npm oidc-provider) behind a proxy.

The provider's issuer is the proxy's address: Panorama and the browser reach the provider only through it, so a
test can rewrite the ID token of a token response on its way to Panorama, as an attacker between them would
(``rewrite``), with the provider's own signing key, which the test made (``resign``), or without it (``tamper``).
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from joserfc import jwt
from joserfc.jwk import RSAKey

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "oidc_provider.mjs"
CLIENT_ID = "panorama"
CLIENT_SECRET = "panorama-test-secret-0123456789abcdef"
KID = "test-signing-key"
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class OidcProvider:
    """The provider process and its proxy; ``issuer`` is known before ``start`` (Panorama's app needs it first)."""

    def __init__(self, workdir: Path, accounts: dict[str, dict], scopes: tuple[str, ...] = ("panorama",)):
        self.workdir = workdir
        self.accounts = accounts
        self.scopes = scopes
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        # Called with each ID token a token response carries; what it returns goes to Panorama instead.
        self.rewrite: Callable[[str], str] | None = None
        self.upstream: int | None = None
        self.proc: subprocess.Popen | None = None
        self.proxy = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.proxy.daemon_threads = True
        threading.Thread(target=self.proxy.serve_forever, name="oidc-proxy", daemon=True).start()
        self.issuer = f"http://127.0.0.1:{self.proxy.server_port}"

    def start(self, app_url: str, timeout: float = 30.0) -> None:
        """Start the provider with Panorama at ``app_url`` as its client (callback and sign-out addresses)."""
        app_url = app_url.rstrip("/")
        config = {
            "issuer": self.issuer, "port": 0, "accounts": self.accounts, "scopes": list(self.scopes),
            "jwks": {"keys": [self.key.as_dict(private=True)]},
            "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "redirect_uris": [f"{app_url}/auth/oidc/callback"],
                         "post_logout_redirect_uris": [f"{app_url}/login"],
                         "grant_types": ["authorization_code"], "response_types": ["code"],
                         "token_endpoint_auth_method": "client_secret_basic"}],
        }
        path = self.workdir / "oidc-provider.json"
        path.write_text(json.dumps(config))
        self.log = open(self.workdir / "oidc-provider.log", "wb")
        self.proc = subprocess.Popen(["node", str(SCRIPT), str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=self.log)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"the OIDC provider did not start: {line!r}, see {self.log.name}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line += self.proc.stdout.read1(256)
        self.upstream = int(line.split()[1])

    def stop(self) -> None:
        """Stop the provider and the proxy."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc.stdout.close()
            self.log.close()
        self.proxy.shutdown()
        self.proxy.server_close()

    def resign(self, **changes) -> Callable[[str], str]:
        """Return a rewrite that changes the ID token's claims and signs it again with the provider's key."""
        def rewrite(token: str) -> str:
            return jwt.encode({"alg": "RS256", "kid": KID}, {**_claims_of(token), **changes}, self.key)
        return rewrite

    @staticmethod
    def tamper(**changes) -> Callable[[str], str]:
        """Return a rewrite that changes the ID token's claims and keeps the provider's signature (now wrong)."""
        def rewrite(token: str) -> str:
            header, _, signature = token.split(".")
            payload = _b64(json.dumps({**_claims_of(token), **changes}).encode())
            return f"{header}.{payload}.{signature}"
        return rewrite

    def _handler(self):
        op = self

        class Forward(BaseHTTPRequestHandler):
            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", op.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                res = conn.getresponse()
                data = res.read()
                if self.path.split("?")[0] == "/token" and res.status == 200 and op.rewrite is not None:
                    doc = json.loads(data)
                    if "id_token" in doc:
                        doc["id_token"] = op.rewrite(doc["id_token"])
                    data = json.dumps(doc).encode()
                self.send_response(res.status)
                for name, value in res.getheaders():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = _forward

            def log_message(self, *args):
                pass

        return Forward
