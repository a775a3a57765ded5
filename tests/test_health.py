"""/api/health answers within a second whatever is down: a database or Redis that hangs reads as unreachable."""

from __future__ import annotations

import threading

import orjson
import requests
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from feeds.pipeline import Batch
from tests.helpers import make_event, wait_for
from tests.tcp_proxy import TcpProxy
from feeds.pipeline import make_pipeline

# What a load balancer or a wall gives /api/health before it counts the node as dead.
CLIENT_DEADLINE_S = 1.0


def _serve(app):
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/api/health"


def _store(app, events):
    svc = app.server.extensions["panorama"]
    pipeline, batch = make_pipeline(svc), Batch()
    pipeline.add(batch, "feeds:traffic", "traffic", orjson.dumps(events), svc.clock())
    assert not batch.rejects
    pipeline.flush(batch, svc.redis)


def test_health_answers_within_a_second_while_the_database_and_redis_hang(make_app, pg_url, redis_url,
                                                                         redis_client):
    pg, rd = make_url(pg_url), make_url(redis_url)
    pg_proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    redis_proxy = TcpProxy(rd.host or "127.0.0.1", rd.port or 6379)
    app = make_app(DATABASE_URL=pg.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(hide_password=False),
                   REDIS_URL=rd.set(host="127.0.0.1", port=redis_proxy.port).render_as_string(hide_password=False))
    server, url = _serve(app)
    try:
        now = app.server.extensions["panorama"].clock()
        _store(app, [make_event(i, ts=now - 30_000) for i in range(3)])
        ok = requests.get(url, timeout=CLIENT_DEADLINE_S)
        assert ok.status_code == 200 and ok.json()["feeds"]["traffic"]["last_event_age_s"] is not None

        pg_proxy.freeze()
        redis_proxy.freeze()
        # A hung probe is waited on, not repeated: every check in a row answers in time, and says why.
        for _ in range(4):
            r = requests.get(url, timeout=CLIENT_DEADLINE_S)
            doc = r.json()
            assert r.status_code == 503 and doc["status"] == "degraded", doc
            assert doc["database"] == "unreachable: no answer" and doc["redis"].startswith("unreachable"), doc
            # The freshness last read is still told, aged: the wall keeps knowing which feed went quiet.
            assert doc["feeds"]["traffic"]["last_event_age_s"] >= ok.json()["feeds"]["traffic"]["last_event_age_s"]

        pg_proxy.thaw()
        redis_proxy.thaw()
        wait_for(lambda: requests.get(url, timeout=CLIENT_DEADLINE_S).status_code == 200, timeout=30,
                 message="health ok once both answer again")
    finally:
        pg_proxy.thaw()
        redis_proxy.thaw()
        server.shutdown()
        pg_proxy.close()
        redis_proxy.close()


def test_health_says_unreachable_at_once_when_the_database_refuses(make_app, pg_url, redis_client):
    pg = make_url(pg_url)
    proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    app = make_app(DATABASE_URL=pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    server, url = _serve(app)
    try:
        assert requests.get(url, timeout=CLIENT_DEADLINE_S).status_code == 200
        proxy.cut()
        # A Response is falsy when its status is an error: wait on its document instead.
        doc = wait_for(lambda: (r := requests.get(url, timeout=CLIENT_DEADLINE_S)).status_code == 503 and r.json(),
                       message="degraded")
        assert doc["database"].startswith("unreachable") and doc["redis"] == "ok"
        proxy.restore()
        wait_for(lambda: requests.get(url, timeout=CLIENT_DEADLINE_S).status_code == 200, timeout=30,
                 message="ok again")
    finally:
        server.shutdown()
        proxy.close()
