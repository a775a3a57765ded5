"""Tick a step of an incident's standard procedure from /dispatch's detail, through the API's own function (who
may tick what is ``dispatch.procedure.may_tick``'s: an officer any step, a liaison their department's)."""

from __future__ import annotations

import logging
from typing import Any

from dash import ALL, Input, Output, State, ctx, no_update
from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from dashboard.core.errors import DomainError
from dashboard.core.i18n import error_text, t
from dashboard.dispatch.desk import do_tick
from dashboard.web.auth import current_user
from dashboard.web.callback_guard import Lang, RowId, allow, parse, validated

log = logging.getLogger(__name__)


class TickButton(BaseModel):
    """The id of a tick button: the step's code and its incident."""

    model_config = ConfigDict(populate_by_name=True)
    step: StrictStr = Field(alias="step-tick", pattern=r"^[a-z0-9_]{1,64}$")
    incident: RowId


def register_callbacks(app) -> None:
    """Register the tick of a procedure's step."""

    # a tap on a step's tick -> POST /api/incidents/<id>/steps/<step>'s function -> the outcome in words
    @allow(app, "officer", "liaison")  # as POST /api/incidents/<id>/steps/<step>
    @app.callback(Output("procedure-message", "children"),
                  Input({"step-tick": ALL, "incident": ALL}, "n_clicks"), State("lang", "data"),
                  prevent_initial_call=True)
    @validated
    def tick(_clicks: Any, lang: Lang):
        lang = lang if lang in ("zh", "en") else "zh"
        # a redrawn button fires with n_clicks 0: only a real tap counts
        if not ctx.triggered or not ctx.triggered[0].get("value") or not isinstance(ctx.triggered_id, dict):
            return no_update
        button = parse(TickButton, dict(ctx.triggered_id))
        svc, user = current_app.extensions["panorama"], current_user()
        try:
            inc = do_tick(svc, user, button.incident, button.step, None)
        except DomainError as err:
            return t("major_failed", lang, why=error_text(err, lang))
        log.info("procedure step %s of incident %s ticked by %s", button.step, button.incident, user.username)
        step = svc.city.procedures.step(inc["kind"], button.step)
        words = button.step if step is None else step.title_en if lang == "en" else step.title
        return t("step_ticked", lang, step=words)
