"""Run the embedded default in one process: in-process bus, ingest, the websocket gateway and the simulator."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from dashboard.gateway import Gateway
from dashboard.services import Services
from feeds.consumers import Consumer, PubSubConsumer, StreamConsumer

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """The background parts of the embedded default; ``stop()`` ends them."""

    consumers: list[Consumer]
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    gateway: Gateway | None = None

    def stop(self) -> None:
        """Stop the simulator, the gateway and the consumers."""
        self.stop_event.set()
        for th in self.threads:
            th.join(5)
        if self.gateway is not None:
            self.gateway.stop()
        for c in self.consumers:
            c.stop()


def start_embedded(services: Services, *, simulate: bool | None = None, gateway: bool = True) -> Embedded:
    """Start ingest (pub/sub and stream), the websocket gateway and, when configured, the simulator."""
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
    if gateway:
        running.gateway = _start_gateway(services)
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


def _start_gateway(services: Services) -> Gateway | None:
    gw = Gateway(services)
    try:
        gw.start()
    except (RuntimeError, OSError) as err:
        # The pages fall back to polling /api/summary?live=1, so a taken port must not stop the city.
        log.error("websocket gateway not started (%s); pages will poll instead", err)
        gw.stop()
        return None
    return gw
