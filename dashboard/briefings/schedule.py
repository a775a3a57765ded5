"""Make the scheduled briefings with APScheduler: one per cron slot across every replica, missed ones made up."""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from dashboard.briefings import periods
from dashboard.storage import briefings as store
from dashboard.briefings.generate import generate_districts, generate_slot

log = logging.getLogger(__name__)
JOB_ID, CATCH_UP_ID = "briefing", "briefing-catch-up"
DAY_MS = 86_400_000


class BriefingScheduler:
    """Run the briefing job at each slot of ``PANORAMA_BRIEFING_CRON`` in ``PANORAMA_TZ``, until stopped.

    Any number of processes may run one: each slot's row is claimed by one of them (see ``store.claim``).
    On start it makes up the latest slot if it was missed while the service was down. ``clock`` returns
    the time the job takes as now (tests control it); APScheduler still decides when the job runs.
    """

    def __init__(self, svc, stop_event: threading.Event | None = None,
                 clock: Callable[[], datetime] | None = None):
        cfg = svc.config
        self.svc, self.tz = svc, cfg["PANORAMA_TZ"]
        # A bad expression fails here, at start, not at 08:00.
        self.trigger = periods.make_trigger(cfg["PANORAMA_BRIEFING_CRON"], self.tz)
        self.retention_ms = int(cfg["PANORAMA_BRIEFING_RETENTION_DAYS"]) * DAY_MS
        self.clock = clock or (lambda: datetime.now(ZoneInfo(self.tz)))
        self.stop_event = stop_event or threading.Event()
        # What the latest runs made (None: nothing due, or another replica had it); bounded, the process lives long.
        self.runs: deque[dict | None] = deque(maxlen=100)
        # The district centres' briefings each run made here (one list per run, beside ``runs``).
        self.district_runs: deque[list[dict]] = deque(maxlen=100)
        # One worker: the catch-up and a slot never run side by side in one process.
        self.scheduler = BackgroundScheduler(
            timezone=ZoneInfo(self.tz), executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self._watcher: threading.Thread | None = None

    def run_due(self, catch_up: bool = False) -> dict | None:
        """Prune old briefings, then make the latest due slot's briefing if nobody has; return it or None.

        Then the slot's district centres' briefings nobody has made (``district_runs``), the city's first:
        every replica that runs the job goes through them, each (slot, district) claimed by one of them.

        A catch-up (at start) only makes up a slot when scheduled briefings were made before, i.e. the
        service was running and then down; a fresh install starts with the next slot.
        """
        now = self.clock()
        now_ms = periods.to_ms(now)
        made, districts = None, []
        try:
            pruned = store.prune(self.svc.engine, now_ms - self.retention_ms)
            if pruned:
                log.info("pruned %d briefings older than %d days", pruned, self.retention_ms // DAY_MS)
            slot = periods.latest_slot(self.trigger, now)
            if slot is not None and (not catch_up or store.has_scheduled(self.svc.engine)):
                try:
                    made = generate_slot(self.svc, self.trigger, slot, now_ms)
                finally:  # the city's failing must not cost the districts theirs
                    districts = generate_districts(self.svc, self.trigger, slot, now_ms)
        finally:
            self.runs.append(made)
            self.district_runs.append(districts)
        return made

    def _job(self, catch_up: bool = False) -> None:
        try:
            self.run_due(catch_up)
        except Exception:  # noqa: BLE001 - the next slot must still come
            log.exception("briefing job failed")

    def start(self) -> "BriefingScheduler":
        """Schedule the job (and the catch-up, now) and start the scheduler thread; off without a schedule."""
        if self.trigger is None:
            log.info("briefings: no schedule (PANORAMA_BRIEFING_CRON is off)")
            return self
        self.scheduler.add_job(self._job, self.trigger, id=JOB_ID, name="briefing")
        self.scheduler.add_job(self._job, "date", run_date=datetime.now(ZoneInfo(self.tz)), id=CATCH_UP_ID,
                               kwargs={"catch_up": True}, name="briefing catch-up")
        self.scheduler.start()
        self._watcher = threading.Thread(target=self._stop_when_told, name="briefing-scheduler-stop", daemon=True)
        self._watcher.start()
        return self

    def _stop_when_told(self) -> None:
        self.stop_event.wait()
        self._shutdown()

    def _shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def stop(self) -> None:
        """Stop the scheduler (a briefing being made finishes in the background)."""
        self.stop_event.set()
        self._shutdown()

    def __enter__(self) -> "BriefingScheduler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_briefing_scheduler(svc, stop_event: threading.Event) -> BriefingScheduler:
    """Start the briefing scheduler on ``svc`` that runs until ``stop_event`` is set."""
    return BriefingScheduler(svc, stop_event).start()
