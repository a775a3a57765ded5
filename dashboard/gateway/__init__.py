"""The websocket gateway: one Redis subscription fanned out to every browser (``python -m dashboard.gateway``)."""
