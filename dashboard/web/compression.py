"""Compress text answers (pages, Dash's bundles, the assets, JSON) with brotli or gzip, as the browser asks."""

from __future__ import annotations

from flask_compress import Compress

# Brotli first (every current browser sends it over http://localhost and https; about a fifth smaller than
# gzip on plotly.min.js), gzip for the rest. Level 4 (flask-compress's default) rather than 11: each answer is
# compressed as it is sent, and 11 spends seconds on the 4.8 MB plotly bundle on the busy 2-core VM.
DEFAULTS = {
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    # Files from /assets are sent as streams (send_file); gzip cannot stream in flask-compress, br can.
    "COMPRESS_ALGORITHM_STREAMING": ["br", "deflate"],
    "COMPRESS_BR_LEVEL": 4,
    "COMPRESS_LEVEL": 6,
}


def init_app(server) -> Compress:
    """Compress the Flask ``server``'s text answers; settings already in its config win over the defaults."""
    for key, value in DEFAULTS.items():
        server.config.setdefault(key, value)
    compress = Compress()
    compress.init_app(server)
    server.extensions["compress"] = compress
    return compress
