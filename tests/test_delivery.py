"""How the pages travel: compressed when the browser asks, fingerprinted files cached for a year (real HTTP)."""

from __future__ import annotations

import os
import re

import requests

from dashboard.web.caching import IMMUTABLE, asset_is_current
from tests.helpers import sign_in, wait_for
from tests.serve import serving

SRC = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(/(?:_dash-component-suites|assets)/[^"]+)"')
PLOTLY = "/_dash-component-suites/plotly/package_data/plotly.min.js"


def static_urls(base: str) -> list[str]:
    """Return the bundles and assets the sign-in page links to (every page links the same ones)."""
    html = requests.get(base + "/login", timeout=30).text
    urls = SRC.findall(html)
    assert any("dash_renderer" in u for u in urls) and any(u.startswith("/assets/") for u in urls), urls
    return urls


class Sent:
    """An answer as it travelled: status, headers and the body still encoded."""

    def __init__(self, res: requests.Response):
        self.status_code, self.headers = res.status_code, res.headers
        self.content = res.raw.read(decode_content=False)


def get(url: str, encoding: str | None) -> Sent:
    """GET ``url`` asking for ``encoding`` (None: identity), keeping the body as it came."""
    return Sent(requests.get(url, headers={"Accept-Encoding": encoding or "identity"}, stream=True, timeout=60))


def test_pages_bundles_and_answers_come_compressed_when_asked(make_app, redis_client):
    app = make_app(BROWSER_PATH="none")
    with serving(app) as base:
        for path in ("/login", *static_urls(base), PLOTLY):
            plain = get(base + path, None)
            assert plain.status_code == 200 and "Content-Encoding" not in plain.headers, path
            for asked, sent in (("br, gzip", "br"), ("gzip, deflate", "gzip"), ("gzip, deflate, br, zstd", "br")):
                res = get(base + path, asked)
                assert res.status_code == 200, path
                if len(plain.content) < 500:
                    continue  # too small to be worth it (COMPRESS_MIN_SIZE)
                # /assets are sent as streams, which flask-compress deflates rather than gzips (same zlib, no header)
                expected = {sent, "deflate"} if path.startswith("/assets/") and sent == "gzip" else {sent}
                assert res.headers.get("Content-Encoding") in expected, (path, asked, dict(res.headers))
                assert "Accept-Encoding" in res.headers["Vary"]
                assert len(res.content) < len(plain.content) * (0.5 if len(plain.content) > 2000 else 0.9), (path, asked)
        # plotly, the heaviest file of any page, travels as 1.4 MB of its 4.8 MB (brotli level 4)
        assert len(get(base + PLOTLY, "br").content) < 1_500_000
        # the callbacks' JSON too
        layout = requests.get(base + "/_dash-layout", headers={"Accept-Encoding": "br"}, timeout=30)
        assert layout.headers.get("Content-Encoding") == "br"


def test_fingerprinted_bundles_and_assets_are_immutable_and_nothing_else(make_app, redis_client):
    app = make_app(BROWSER_PATH="none")
    with serving(app) as base:
        urls = static_urls(base)
        for path in urls:
            res = requests.get(base + path, timeout=60)
            assert res.status_code == 200 and res.headers["Cache-Control"] == IMMUTABLE, (path, dict(res.headers))
        # the same files under names that do not say which version they are: revalidated, never kept blindly
        bundle = next(u for u in urls if "dash_renderer" in u)
        asset = next(u for u in urls if u.startswith("/assets/"))
        for path in (re.sub(r"\.v[\w-]+m[0-9a-f]+\.", ".", bundle), asset.split("?")[0],
                     asset.split("?")[0] + "?m=1.0", PLOTLY):
            res = requests.get(base + path, timeout=60)
            assert res.status_code == 200 and "immutable" not in res.headers.get("Cache-Control", ""), path
            assert "max-age=31536000" not in res.headers.get("Cache-Control", ""), path
        # pages and answers are never cached as immutable
        for path in ("/login", "/api/health", "/_dash-layout", "/_favicon.ico?v=1"):
            res = requests.get(base + path, timeout=30)
            assert "immutable" not in res.headers.get("Cache-Control", ""), path
        # and the security headers still come with the static files
        res = requests.get(base + bundle, timeout=30)
        assert res.headers["X-Content-Type-Options"] == "nosniff"


def test_an_asset_stamp_must_be_its_files_current_mtime_inside_the_folder(tmp_path):
    (tmp_path / "a.css").write_text("a{}")
    stamp = str(os.path.getmtime(tmp_path / "a.css"))
    assert asset_is_current(str(tmp_path), "a.css", stamp)
    assert not asset_is_current(str(tmp_path), "a.css", "1.0")
    assert not asset_is_current(str(tmp_path), "a.css", None)
    assert not asset_is_current(str(tmp_path), "missing.css", stamp)
    assert not asset_is_current(str(tmp_path / "sub"), "../a.css", stamp)


# Every resource the page has fetched, with the bytes that travelled (headers included) and its body's size.
RESOURCES = """
return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
    .map((e) => [e.name, e.transferSize, e.decodedBodySize]);
"""


def test_m_loads_no_plotly_and_travels_light(make_app, redis_client, dash_duo):
    """/m (the commander's phone) draws no graph: Dash never fetches plotly there, and what it does fetch is
    compressed: about 0.35 MB travels (1.36 MB uncompressed)."""
    app = make_app(PANORAMA_POLL_MS=60_000)
    dash_duo.start_server(app)
    sign_in(dash_duo, app, "/", role="commander")
    # a first visit's bytes: the sign-in page has just filled the cache with the very same scripts
    dash_duo.driver.execute_cdp_cmd("Network.enable", {})
    dash_duo.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + "/m")
    dash_duo.wait_for_element("#incident-list", timeout=20)
    entries = wait_for(lambda: [e for e in dash_duo.driver.execute_script(RESOURCES)], message="resources")
    names = [name for name, _, _ in entries]
    assert not [n for n in names if "plotly" in n or "async-graph" in n], names
    sent = sum(size for _, size, _ in entries)
    body = sum(size for _, _, size in entries)
    assert body > 1_000_000, (body, entries)  # the same scripts as before ...
    assert sent < 500_000, (sent, entries)  # ... in a third of the bytes or less
    assert dash_duo.get_logs() == []
