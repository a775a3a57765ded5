"""The consumers of one ingest worker; ``python -m feeds.ingest`` runs the worker (dashboard/run/worker.py)."""

from __future__ import annotations

from dashboard.storage.services import Services
from feeds.consumers import Consumer, PubSubConsumer, StreamConsumer
from feeds.pipeline import make_pipeline


def make_consumers(services: Services, transport: str = "both", consumer: str | None = None) -> list[Consumer]:
    """Create the consumers of one worker: pub/sub, stream, or both, sharing one pipeline."""
    cfg = services.config
    common = {"prefix": cfg["PANORAMA_FEED_PREFIX"], "batch_size": cfg["PANORAMA_BATCH_SIZE"],
              "flush_ms": cfg["PANORAMA_FLUSH_MS"], "hold_limit": max(cfg["PANORAMA_HOLD_LIMIT"],
                                                                      cfg["PANORAMA_BATCH_SIZE"])}
    out: list[Consumer] = []
    if transport in ("both", "pubsub"):
        out.append(PubSubConsumer(make_pipeline(services), services.connect_bus, **common))
    if transport in ("both", "stream"):
        out.append(StreamConsumer(make_pipeline(services), services.connect_bus, consumer=consumer,
                                  claim_idle_ms=cfg["PANORAMA_CLAIM_IDLE_MS"], **common))
    return out



def main(argv: list[str] | None = None) -> int:
    """Run one ingest worker (SPEC section 8's entry point; the process is wired in dashboard.run.worker)."""
    from dashboard.run.worker import main as run_worker
    return run_worker(argv)


if __name__ == "__main__":
    raise SystemExit(main())
