"""The web layer: Flask/Dash wiring, auth, the REST API, metrics, health, headers and the CLI."""
