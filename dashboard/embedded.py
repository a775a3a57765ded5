"""Run the embedded default in one process: in-process bus, ingest and the simulator."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from dashboard.services import Services
from feeds.consumers import Consumer, PubSubConsumer, StreamConsumer

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """The background parts of the embedded default; ``stop()`` ends them."""

    consumers: list[Consumer]
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the simulator and the consumers."""
        self.stop_event.set()
        for th in self.threads:
            th.join(5)
        for c in self.consumers:
            c.stop()


def start_embedded(services: Services, *, simulate: bool | None = None) -> Embedded:
    """Start ingest (pub/sub and stream) and, when configured, the simulator, on the process's bus."""
    from feeds.simulate import Simulator

    cfg = services.config
    common = {"prefix": cfg["PANORAMA_FEED_PREFIX"], "batch_size": cfg["PANORAMA_BATCH_SIZE"],
              "flush_ms": cfg["PANORAMA_FLUSH_MS"]}
    consumers: list[Consumer] = [
        PubSubConsumer(services.pipeline(), services.connect_bus, **common),
        StreamConsumer(services.pipeline(), services.connect_bus, consumer="embedded", **common),
    ]
    for c in consumers:
        c.start()
    running = Embedded(consumers)
    if cfg["PANORAMA_SIMULATE"] if simulate is None else simulate:
        # Subscribed before the first event, so the simulator's opening minutes are not lost.
        for c in consumers:
            c.connected.wait(5)
        sim = Simulator(services.city, tz=cfg["PANORAMA_TZ"])
        bus = services.connect_bus()
        th = threading.Thread(target=sim.run, args=(bus, running.stop_event),
                              kwargs={"prefix": cfg["PANORAMA_FEED_PREFIX"]}, name="simulator", daemon=True)
        th.start()
        running.threads.append(th)
    return running
