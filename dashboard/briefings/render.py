"""Render a briefing: its figures as PNG through kaleido, a self-contained HTML report, and its PDF.

Both the images and the PDF come from one headless Chromium driven by kaleido (whose ``Kaleido`` is a
choreographer ``Browser``): kaleido draws the Plotly figures, then a tab of the same browser loads the
finished HTML and prints it with the DevTools ``Page.printToPDF``. One browser start per briefing, the
page laid out by the engine that lays out the HTML report, and no second renderer (WeasyPrint) to keep
in step with it. Without a browser the HTML and JSON are still made, without images, and say so.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from dashboard.briefings.text import bt
from dashboard.core.config import ROOT
from dashboard.figures.panorama import make_city_map, make_trend
from dashboard.core.i18n import district_name, kind_label, pick, t
from dashboard.core.notifications import LEVEL_WORDS

log = logging.getLogger(__name__)

GEO_OFFLINE = ROOT / "assets" / "geo_offline.js"  # the empty world topojson of the pages' geo maps
MAP_SIZE = (900, 560)
TREND_SIZE = (900, 420)
SCALE = 2  # crisp in print at A4 width
TIMEOUT_S = 120.0
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_OFF = ("none", "off", "false", "0")


@dataclass
class Rendered:
    """What a briefing's rendering produced; ``note`` says why images or the PDF are missing."""

    html: str
    pdf: bytes | None
    images: bool
    note: str | None = None


def find_browser(configured: str | None) -> str | None:
    """Return the Chromium to use: the configured path when it is an executable, else one on PATH."""
    if configured:
        if configured.strip().lower() in _OFF:
            return None
        path = shutil.which(configured)
        return path if path and os.access(path, os.X_OK) else None
    return next(filter(None, (shutil.which(name) for name in _BROWSERS)), None)


def figures(data: dict, city, lang: str, tz: str) -> dict:
    """Return the report's Plotly figures: the district map (events in the period) and the trends."""
    trend = make_trend(data["trend"], lang, tz)
    trend.update_layout(paper_bgcolor="#ffffff", plot_bgcolor="#ffffff", hovermode=False)
    if data.get("district"):  # one district's briefing: its streets are a table, a city map would hold one colour
        return {"trends": (trend, TREND_SIZE)}
    window = {"districts": {d["code"]: {"counts": d["counts"], "risk": d["risk"]} for d in data["districts"]}}
    city_map = make_city_map(window, city, "all", lang, size=MAP_SIZE)
    city_map.update_layout(paper_bgcolor="#ffffff")
    return {"map": (city_map, MAP_SIZE), "trends": (trend, TREND_SIZE)}


def duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return bt("seconds", lang, s=s)
    if s < 3600:
        return bt("minutes_seconds", lang, m=s // 60, s=s % 60)
    return bt("hours_minutes", lang, h=s // 3600, m=s % 3600 // 60)


def _pct(value: float | None, lang: str) -> str:
    if value is None:
        return bt("new", lang)
    if value == 0:
        return bt("no_change", lang)
    return f"{value:+.1f}%"


def _task_state(state: str, lang: str) -> str:
    try:
        return t(f"task_{state}", lang)
    except KeyError:
        return state


def _stamp(iso_text: str) -> str:
    """Return 'YYYY-MM-DD HH:MM' of an RFC 3339 local time."""
    return iso_text[:16].replace("T", " ")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["stamp"] = _stamp
    return env


def build_html(data: dict, city, images: dict[str, bytes], note: str | None = None) -> str:
    """Return the self-contained report: inline CSS, images as data: URIs, nothing fetched from anywhere."""
    lang = data.get("lang", "zh")
    by_code = city.by_code
    uris = {name: "data:image/png;base64," + base64.b64encode(png).decode("ascii") for name, png in images.items()}
    trigger = data["trigger"]
    made = bt("trigger_schedule", lang) if trigger["kind"] == "schedule" else \
        bt("trigger_manual", lang, who=trigger.get("by") or "-")
    return _environment().get_template("template.html").render(
        d=data, lang=lang, images=uris, note=note, made=made, colon=": " if lang == "en" else "：", city_name=city.name_en if lang == "en" else city.name,
        bt=lambda key, **fmt: bt(key, lang, **fmt), t=lambda key, **fmt: t(key, lang, **fmt),
        pct=lambda v: _pct(v, lang), duration=lambda s: duration(s, lang),
        kind=lambda k: kind_label(k, lang),
        district=lambda code: district_name(by_code[code], lang) if code in by_code else code,
        dept=lambda row: row["name_en"] if lang == "en" else row["name"], state=lambda s: _task_state(s, lang),
        level_word=lambda level: pick(LEVEL_WORDS, level, lang) if level in LEVEL_WORDS else level,
    )


async def _print_pdf(browser, html: str) -> bytes:
    """Load ``html`` in a new tab of ``browser`` and print it to PDF with the page size its CSS asks for."""
    with tempfile.TemporaryDirectory(prefix="briefing-") as tmp:
        path = Path(tmp) / "briefing.html"
        path.write_text(html, encoding="utf-8")
        tab = await browser.create_tab("about:blank")
        try:
            await tab.send_command("Page.enable")
            loaded = tab.subscribe_once("Page.loadEventFired")
            await tab.send_command("Page.navigate", params={"url": path.as_uri()})
            await asyncio.wait_for(loaded, 30)
            reply = await tab.send_command("Page.printToPDF", params={
                "printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": False})
        finally:
            await browser.close_tab(tab)
    if "error" in reply:
        raise RuntimeError(f"print to PDF failed: {reply['error']}")
    return base64.b64decode(reply["result"]["data"])


async def _render_in_browser(browser_path: str, data: dict, city, figs: dict) -> Rendered:
    import kaleido

    # mathjax=False: kaleido would otherwise load MathJax from a CDN, which an offline centre cannot reach. The
    # map is SVG (a geo subplot), for which Plotly asks its CDN for a world topojson: the pages' own
    # assets/geo_offline.js gives it an empty one in kaleido's page too.
    page = kaleido.PageGenerator(mathjax=False, others=[GEO_OFFLINE.as_uri()])
    async with kaleido.Kaleido(n=1, timeout=60, page_generator=page, path=browser_path) as k:
        images = {}
        for name, (fig, (width, height)) in figs.items():
            images[name] = await k.calc_fig(fig, opts={"format": "png", "width": width, "height": height,
                                                       "scale": SCALE})
        html = build_html(data, city, images)
        pdf = await _print_pdf(k, html)
    return Rendered(html=html, pdf=pdf, images=True)


def _run(coro_factory):
    """Run a coroutine to completion from synchronous code, in a thread of its own if a loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    th = threading.Thread(target=target, name="briefing-render")
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _print_only(browser_path: str, html: str) -> bytes:
    import kaleido

    page = kaleido.PageGenerator(mathjax=False, others=[GEO_OFFLINE.as_uri()])
    async with kaleido.Kaleido(n=1, timeout=60, page_generator=page, path=browser_path) as k:
        return await _print_pdf(k, html)


def print_pdf(html: str, browser_path: str) -> bytes:
    """Return a finished HTML report printed to PDF by the same browser and call as a briefing's (the
    after-action report's PDF); raises what the browser raised."""
    return _run(lambda: asyncio.wait_for(_print_only(browser_path, html), TIMEOUT_S))


def render(data: dict, city, browser_path: str | None, tz: str) -> Rendered:
    """Render a briefing; without a browser, or when it fails, the HTML without images and no PDF."""
    lang = data.get("lang", "zh")
    if browser_path is None:
        note = bt("no_browser", lang)
        return Rendered(html=build_html(data, city, {}, note), pdf=None, images=False, note=note)
    figs = figures(data, city, lang, tz)
    try:
        return _run(lambda: asyncio.wait_for(_render_in_browser(browser_path, data, city, figs), TIMEOUT_S))
    except Exception as err:  # noqa: BLE001 - a broken browser must cost the images, never the briefing
        log.warning("briefing images and PDF not made", exc_info=True)
        note = f"{type(err).__name__}: {err}"[:500]
        return Rendered(html=build_html(data, city, {}, note), pdf=None, images=False, note=note)
