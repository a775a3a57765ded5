"""Serve an app over real HTTP from a thread, for tests that need requests truly in parallel."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from werkzeug.serving import make_server


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` (a Dash app or its Flask server) on a free local port, a thread per request; yield its URL."""
    server = make_server("127.0.0.1", 0, getattr(app, "server", app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def all_at_once(n: int, send, warm: str | None = None) -> list[requests.Response]:
    """Call ``send(session, i)`` from ``n`` threads released together by a barrier; return the responses in order.

    Each thread has its own ``requests.Session``; with ``warm`` (a URL) its connection is opened first, so
    the requests leave together rather than one connection set-up after another.
    """
    barrier = threading.Barrier(n)

    def one(i):
        with requests.Session() as s:
            if warm:
                s.get(warm, timeout=30)
            barrier.wait(timeout=30)
            return send(s, i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))
