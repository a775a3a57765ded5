"""Make one briefing: claim its slot, collect the numbers, render the report, store it.

A slot makes the city's briefing and one per district centre in use (``storage.users.district_centres``: a
district with an active user), each claimed on its own, so each (slot, district) is made exactly once.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from dashboard.briefings import lock, periods
from dashboard.storage import briefings as store
from dashboard.storage.users import district_centres
from dashboard.briefings.collect import collect
from dashboard.briefings.mail import briefing_messages, reader_langs
from dashboard.briefings.render import find_browser, render
from dashboard.core.bus import BUS_ERRORS
from dashboard.core.clock import iso

log = logging.getLogger(__name__)
# How long a scheduled briefing waits for one being made on request before it is made regardless.
SCHEDULED_WAIT_S = 120


def headline(data: dict) -> dict:
    """Return the few numbers the list shows for a briefing."""
    k = data["kpis"]
    busiest = max(data["districts"], key=lambda d: (d["total"], d["risk"]), default=None)
    return {"events": k["events"], "events_change_pct": k["events_change_pct"],
            "incidents_opened": k["incidents_opened"], "major": k["by_severity"]["3"] + k["by_severity"]["4"],
            "tasks_dispatched": k["tasks_dispatched"], "deadlines_missed": k["deadlines_missed"],
            "busiest_district": busiest["code"] if busiest and busiest["total"] else None}


def _make(svc, briefing_id: int, slot: str, trigger: str, by: str | None, start: int, end: int, now: int,
          district: str | None = None) -> dict:
    """Collect, render and store one claimed briefing; a scheduled one is mailed to its recipients with it."""
    cfg = svc.config
    tz, lang = cfg["PANORAMA_TZ"], cfg["PANORAMA_BRIEFING_LANG"]
    try:
        with svc.engine.connect() as conn:
            data = collect(conn, svc.city, start, end, tz, district)
        data = {"id": briefing_id, "slot": slot, "trigger": {"kind": trigger, "by": by}, "lang": lang, "tz": tz,
                "city": {"name": svc.city.name, "name_en": svc.city.name_en}, "generated_at": iso(now, tz),
                **data}
        browser = find_browser(cfg["BROWSER_PATH"])
        out = render(data, svc.city, browser, tz)
        data["images"], data["note"] = out.images, out.note
        top = headline(data)
        # Only the scheduled ones are mailed: one made on request goes to whoever asked, on the page; mailing it
        # too would fill the leadership's inbox with every briefing anybody clicked for. Each reader is sent the
        # report in their language: made once more for each other language in use among them.
        readers = svc.city.briefing_recipients.readers(district) if trigger == "schedule" else []
        reports = {lang: out}
        for other in sorted(reader_langs(readers, svc.city) - {lang}):
            reports[other] = render({**data, "lang": other}, svc.city, browser, tz)
        mail = briefing_messages(data, top, svc.city, readers, end,
                                 {k for k, r in reports.items() if r.pdf is not None}, tz) if readers else []
        store.finish(svc.engine, briefing_id, data, top, out.html, out.pdf, out.images, out.note, now, mail,
                     renditions={k: (r.html, r.pdf) for k, r in reports.items() if k != lang})
    except Exception as err:
        store.fail(svc.engine, briefing_id, f"{type(err).__name__}: {err}", now)
        raise
    log.info("briefing %s (%s) made: %s events, images %s", briefing_id, store.district_slot(slot, district),
             top["events"],
             "yes" if out.images else f"no ({out.note})")
    return store.get(svc.engine, briefing_id)


def slot_districts(svc) -> list[str]:
    """Return the districts whose centres get a briefing of their own at each slot: those with an active user
    (and known to the city pack); a district nobody reads would cost a Chromium run per slot for nothing. None
    when the pack says so (city.yaml ``centres: {briefings: false}``)."""
    centres = svc.city.centres
    if centres is not None and not centres.briefings:
        return []
    return [d for d in district_centres(svc.engine) if d in svc.city.by_code]


def generate_slot(svc, trigger, slot: datetime, now_ms: int, district: str | None = None) -> dict | None:
    """Make the scheduled briefing of ``slot`` (``district``'s; None: the city's) unless another process has it;
    return it, or None.

    The process that claimed the slot waits its turn behind a briefing being made on request (at most
    ``SCHEDULED_WAIT_S``), and makes it anyway when the bus is down or the wait runs out: a scheduled
    briefing is never lost to the lock.
    """
    key = store.district_slot(periods.slot_key(slot), district)
    start, end = periods.scheduled_period(trigger, slot)
    briefing_id = store.claim(svc.engine, key, "schedule", None, start, end, now_ms,
                              svc.config["PANORAMA_BRIEFING_LANG"], district)
    if briefing_id is None:
        return None
    try:
        token = lock.acquire(svc.redis, wait_s=SCHEDULED_WAIT_S)
    except (lock.BriefingBusy, *BUS_ERRORS) as err:
        log.warning("briefing %s made without the lock: %s", key, err)
        token = None
    try:
        return _make(svc, briefing_id, key, "schedule", None, start, end, now_ms, district)
    finally:
        if token:
            lock.release(svc.redis, token)


def generate_districts(svc, trigger, slot: datetime, now_ms: int) -> list[dict]:
    """Make the district centres' briefings of ``slot`` that no other process has; return those made here.

    One failing costs only itself (it is marked failed, the others are still made)."""
    made = []
    for district in slot_districts(svc):
        try:
            row = generate_slot(svc, trigger, slot, now_ms, district)
        except Exception:  # noqa: BLE001 - the next district's briefing must still come
            log.exception("district %s's briefing of %s failed", district, periods.slot_key(slot))
            continue
        if row is not None:
            made.append(row)
    return made


def generate_now(svc, by: str, now_ms: int, district: str | None = None) -> dict:
    """Make a briefing on request (``district``'s; None: the city's), covering the period since the last slot
    at least an hour old.

    One at a time in the deployment: while another is being made, raise ``lock.BriefingBusy`` at once.
    """
    cfg = svc.config
    trigger = periods.make_trigger(cfg["PANORAMA_BRIEFING_CRON"], cfg["PANORAMA_TZ"])
    start, end = periods.manual_period(trigger, now_ms, cfg["PANORAMA_TZ"])
    key = f"manual:{now_ms}:{secrets.token_hex(4)}"
    with lock.one_at_a_time(svc.redis):
        briefing_id = store.claim(svc.engine, key, "manual", by, start, end, now_ms, cfg["PANORAMA_BRIEFING_LANG"],
                                  district)
        return _make(svc, briefing_id, key, "manual", by, start, end, now_ms, district)
