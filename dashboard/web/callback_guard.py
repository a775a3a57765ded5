"""Hold every server callback to the policy declared beside it, and answer a malformed callback request 4xx.

Dash answers whoever posts ``/_dash-update-component``, with any body. So every server callback declares, where it
is registered, who may call it (``@allow(app, "dispatch")`` above ``@app.callback``); the guard here refuses the
rest before the callback runs: a body that is not a callback request Dash's renderer could send (400), an output no
server callback has or one without a declared policy (404), anonymous (401), a role the policy does not name (403).
Scope (a liaison's department) is the callback's own business, checked where it reads data, as the API does.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Union

from dash import exceptions as dash_errors
from flask import current_app, request
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt, StrictStr, ValidationError, validate_call
from werkzeug.exceptions import BadRequest

from dashboard.web import auth

log = logging.getLogger(__name__)

CALLBACK_PATH = "/_dash-update-component"
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a row id a callback is handed: fits BIGINT, or a 400
Count = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]  # n_clicks, n_intervals: what the renderer counts
Lang = Any  # each callback falls back to Chinese for anything but "zh" / "en"
POLICIES = "panorama_callback_policies"  # server.extensions key: callback_map key -> Policy


@dataclass(frozen=True)
class Policy:
    """Who may call one server callback: anyone (``public``), or a signed-in user with one of ``names``."""

    names: tuple[str, ...]  # roles or permissions of auth.PERMISSIONS (admin always passes)
    public: bool = False  # the page shell's own: the sign-in page and kiosk walls, which hold no session


def policies(app) -> dict[str, Policy]:
    """Return the app's declared callback policies (by ``callback_map`` key)."""
    return app.server.extensions.setdefault(POLICIES, {})


def allow(app, *names: str, public: bool = False):
    """Declare who may call the callback registered just below: ``@allow(app, "dispatch")`` over ``@app.callback``.

    ``public=True``: anyone, signed in or not (only the page shell's callbacks: router, language, gateway probe).
    """
    if public == bool(names):
        raise ValueError("name the roles that may call it, or make it public, not both")
    auth._expand(names)  # unknown names fail here, at registration

    def decorate(func):
        keys = [k for k, cb in app.callback_map.items() if getattr(cb.get("callback"), "__wrapped__", None) is func]
        if len(keys) != 1:
            raise RuntimeError(f"@allow must sit directly above @app.callback of {func.__qualname__}")
        policies(app)[keys[0]] = Policy(tuple(names), public)
        return func

    return decorate


def server_callbacks(app) -> list[str]:
    """Return the ``callback_map`` keys of every callback that runs on the server (clientside ones never do)."""
    return [key for key, cb in app.callback_map.items() if "callback" in cb]


def missing_policies(app) -> list[str]:
    """Return the server callbacks that declare no policy (each is refused at runtime)."""
    declared = policies(app)
    return [key for key in server_callbacks(app) if key not in declared]


def validated(func):
    """Check a callback's arguments against its type hints (pydantic); a mismatch is a 400, not a crash."""
    checked = validate_call(func)

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            return checked(*args, **kwargs)
        except ValidationError as err:
            first = err.errors()[0]
            raise BadRequest(f"argument {first['loc'][0] if first['loc'] else '?'}: {first['msg']}") from None

    return run


def parse(model: type[BaseModel], value: Any) -> BaseModel:
    """Return ``value`` (a clicked pattern button's id, say) checked against ``model``; a mismatch is a 400."""
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise BadRequest(f"{model.__name__}: {err.errors()[0]['msg']}") from None


# --- the shape of a callback request ------------------------------------------------------------------

class Prop(BaseModel):
    """One input, state or output of a callback request: a component id and one of its properties."""

    model_config = ConfigDict(extra="allow")
    id: Union[StrictStr, dict[StrictStr, JsonValue]]
    property: StrictStr = Field(max_length=100)
    value: Any = None


Slot = Union[Prop, list[Prop]]  # a list: every component a pattern (ALL) matches


class Body(BaseModel):
    """A callback request as Dash's renderer sends it."""

    model_config = ConfigDict(extra="allow")
    output: StrictStr = Field(min_length=1, max_length=10_000)
    outputs: Union[Prop, list[Slot]]
    inputs: list[Slot] = Field(max_length=200)
    state: list[Slot] = Field(default_factory=list, max_length=200)
    # one per component a pattern input matches when they are all drawn anew: the dispatch queue's 500 buttons
    # (desk.QUEUE_ROWS) fire at once; each must also name a property sent as an input (check_body)
    changedPropIds: list[StrictStr] = Field(default_factory=list, max_length=2_000)


def _id_text(value) -> str:
    # the renderer's form of a pattern id: keys sorted, no spaces (dash._utils.stringify_id)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def _matches(declared: dict, slot) -> bool:
    """Tell whether a request slot answers a declared dependency (same id, or the pattern's keys, and property)."""
    want_id, prop = declared["id"], declared["property"]
    if not want_id.startswith("{"):
        return isinstance(slot, Prop) and slot.id == want_id and slot.property == prop
    pattern = json.loads(want_id)  # wildcards are ["ALL"], ["MATCH"], ["ALLSMALLER"]
    fixed = {k: v for k, v in pattern.items() if not isinstance(v, list)}
    items = slot if isinstance(slot, list) else [slot]
    return all(isinstance(item.id, dict) and set(item.id) == set(pattern) and item.property == prop
               and all(item.id[k] == v for k, v in fixed.items()) for item in items)


def check_body(app, raw: Any) -> tuple[str, Body]:
    """Return the callback a request names and its parsed body; raise BadRequest (400) for anything else."""
    if not isinstance(raw, dict):
        raise BadRequest("not a callback request: send a JSON object (Content-Type: application/json)")
    try:
        body = Body.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"not a callback request: {where}: {first['msg']}") from None
    cb = app.callback_map.get(body.output)
    if cb is None or "callback" not in cb:
        return body.output, body
    for part in ("inputs", "state"):
        declared, sent = cb[part], getattr(body, part)
        if len(declared) != len(sent) or not all(_matches(d, s) for d, s in zip(declared, sent)):
            raise BadRequest(f"the {part} do not match the callback")
    fired = {f"{_id_text(p.id)}.{p.property}" for s in body.inputs for p in (s if isinstance(s, list) else [s])}
    if not set(body.changedPropIds) <= fired:
        raise BadRequest("changedPropIds names a property that is not an input")
    return body.output, body


def guard():
    """Refuse a callback request before it runs: bad shape 400, unknown callback 404, anonymous 401, role 403."""
    if request.path != CALLBACK_PATH or request.method != "POST":
        return None
    app = current_app.extensions["panorama_dash"]
    key, _ = check_body(app, request.get_json(silent=True))
    policy = policies(app).get(key)
    if policy is None:
        # an output nobody declared: a made-up one, a clientside callback's, or a server callback missing its policy
        if key in app.callback_map and "callback" in app.callback_map[key]:
            log.error("callback %s has no declared policy: refused", key)
        return auth.error(404, "unknown_callback", "no such server callback")
    if policy.public:
        return None
    user = auth.current_user()
    if user is None:
        return auth.error(401, "not_signed_in", "sign in first")
    if not auth.check_role(user, *policy.names):
        return auth.error(403, "forbidden", f"the {user.role} role may not do this")
    return None


# --- answering what Dash itself would answer with a 500 ------------------------------------------------

def _bad_request(err: BadRequest):
    if request.path == CALLBACK_PATH:
        return auth.error(400, "bad_request", err.description or "bad callback request")
    return err


def _dash_error(err: dash_errors.DashException):
    # A request Dash cannot match to its callbacks or files is the caller's mistake; a callback that returns
    # the wrong shape (InvalidCallbackReturnValue) is ours, and stays a 500.
    if request.path == CALLBACK_PATH and isinstance(err, dash_errors.CallbackException) \
            and not isinstance(err, dash_errors.InvalidCallbackReturnValue):
        return auth.error(400, "bad_request", "the request does not match the callback")
    if request.path.startswith("/_dash-component-suites/") and isinstance(err, dash_errors.DependencyException):
        return "no such file\n", 404, {"Content-Type": "text/plain; charset=utf-8"}
    raise err


def init_app(app) -> None:
    """Guard the callback route (after auth's Origin and CSRF checks) and answer bad Dash requests 4xx."""
    server = app.server
    server.extensions["panorama_dash"] = app
    policies(app)
    server.before_request(guard)
    server.register_error_handler(BadRequest, _bad_request)
    server.register_error_handler(dash_errors.DashException, _dash_error)
