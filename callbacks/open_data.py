"""The open-data index page (/open): public, drawn from the configuration in force."""

from __future__ import annotations

from flask import current_app

from dashboard.core.i18n import pick
from dashboard.panorama.open_data import MIN_COUNT
from layouts.open_data import open_layout



def render(req):
    """Return /open in the reader's language, with this deployment's rate and range."""
    rate = current_app.extensions["panorama_open_rate"]
    city = req.svc.city
    name = pick({"city": (city.name, city.name_en)}, "city", req.lang)
    return open_layout(req.lang, name, req.svc.config["PANORAMA_TZ"], rate.limit, rate.period_s,
                       req.svc.config["PANORAMA_OPEN_MAX_DAYS"], MIN_COUNT)
