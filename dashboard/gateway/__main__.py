"""``python -m dashboard.gateway``: run one websocket gateway."""

from dashboard.gateway.server import main

if __name__ == "__main__":
    raise SystemExit(main())
