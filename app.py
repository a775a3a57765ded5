"""Entry point: ``gunicorn app:server`` for production, ``python app.py`` for the embedded default."""

import logging

from dashboard import create_app

app = create_app()
server = app.server


def main() -> None:
    """Run the app; without REDIS_URL also the in-process bus, ingest and simulator."""
    from dashboard.run.embedded import start_embedded

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = server.config
    url = f"http://{cfg['PANORAMA_HOST']}:{cfg['PANORAMA_PORT']}"
    if cfg["EMBEDDED"]:
        start_embedded(server.extensions["panorama"])
        print(f"Panorama — embedded default: in-process bus, {cfg['DATABASE_URL']}, "
              f"simulator {'on' if cfg['PANORAMA_SIMULATE'] else 'off'} — open {url}", flush=True)
    else:
        print(f"Panorama — app only (Redis at {cfg['REDIS_URL']}; run ingest and gateway separately) — {url}",
              flush=True)
    app.run(host=cfg["PANORAMA_HOST"], port=cfg["PANORAMA_PORT"], debug=False)


if __name__ == "__main__":
    main()
