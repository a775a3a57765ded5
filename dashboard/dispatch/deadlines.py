"""Escalate overdue tasks: a checker thread any number of processes may run."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from dashboard.dispatch import board as d
from dashboard.dispatch import procedure
from dashboard.dispatch.desk import publish
from dashboard.dispatch.duty import start_duty
from dashboard.storage.models import incidents

log = logging.getLogger(__name__)


class DeadlineChecker:
    """Escalate overdue tasks every ``every_s`` seconds and tell the commanders, until stopped.

    Any number of replicas may run one: ``escalate_overdue`` escalates each task exactly once.
    """

    def __init__(self, svc, stop_event: threading.Event | None = None, every_s: float = 15.0):
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self.svc, self.every_s = svc, every_s
        self.stop_event = stop_event or threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self, at_ms: int | None = None) -> list[dict]:
        """Escalate what is overdue now, publish it, and return the escalated tasks."""
        at = self.svc.clock() if at_ms is None else at_ms
        with self.svc.engine.begin() as conn:
            rows = d.escalate_overdue(conn, at)
            incident_rows = [dict(r) for r in conn.execute(
                select(incidents).where(incidents.c.id.in_({r["incident_id"] for r in rows})))
                .mappings()] if rows else []
            by_id = {i["id"]: i for i in incident_rows}
            for r in rows:
                if r["overdue"] == "acknowledge":  # the same chains as alerts: the department's duty is told
                    start_duty(conn, self.svc.city, r, by_id[r["incident_id"]], at)
        if rows:
            tz = self.svc.config["PANORAMA_TZ"]
            for r in rows:
                log.warning("dispatch SLA breach: task %s (%s) of incident %s not %s by the deadline", r["id"],
                            r["department"], r["incident_id"],
                            "acknowledged" if r["overdue"] == "acknowledge" else "resolved")
            publish(self.svc, incident_rows, rows,
                    escalations=[{**d.task_view(r, tz), "overdue": r["overdue"]} for r in rows])
        self.check_steps(at)
        return rows

    def check_steps(self, at_ms: int) -> list[dict]:
        """Escalate the standard procedures' steps overdue at ``at_ms`` (the same chains as tasks); publish their
        incidents, so the screens showing them redraw; return them."""
        with self.svc.engine.begin() as conn:
            changed = procedure.escalate_overdue(conn, self.svc.city, at_ms)
        for inc in changed:
            log.warning("procedure step overdue on incident %s", inc["id"])
        if changed:
            publish(self.svc, changed, [])
        return changed

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - a database blip must not end the checker
                log.exception("deadline check failed; retrying in %ss", self.every_s)
            self.stop_event.wait(self.every_s)

    def start(self) -> "DeadlineChecker":
        """Start the checker thread."""
        self._thread = threading.Thread(target=self._run, name="deadline-checker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self.stop_event.set()
        # stop() must not join from inside the worker thread
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> "DeadlineChecker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_deadline_checker(svc, stop_event: threading.Event, every_s: float = 15.0) -> DeadlineChecker:
    """Start a deadline checker on ``svc`` that runs until ``stop_event`` is set."""
    return DeadlineChecker(svc, stop_event, every_s).start()
