"""Property-based fuzzing (hypothesis): the event schema and the JSON API never crash, never answer 500,
and explain every reject."""

from __future__ import annotations

import json
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dashboard.core.city import load_city
from dashboard.core.channels import DOMAINS
from feeds.schema import MAX_BATCH, parse_message
from tests.helpers import make_user, TEST_PASSWORD
from tests.test_api import AUTH, ingest_now, now_event

REASONS = {"invalid_json", "not_utf8", "non_finite", "missing_field", "wrong_type", "invalid_field",
           "unknown_district", "domain_mismatch", "too_large", "batch_too_large", "empty_batch", "not_an_object", "future_ts"}
CITY = load_city("shenzhen")
# Modest counts: the whole file runs in well under a minute on two shared cores.
FAST = settings(max_examples=500, deadline=None, database=None)
API = settings(max_examples=120, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_leaf = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
             | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=5)
                          | st.dictionaries(st.text(max_size=12), kids, max_size=6), max_leaves=25)
district = st.sampled_from([d.code for d in CITY.districts] + [d.slug for d in CITY.districts]) | st.text(max_size=20)
ts = (st.integers(min_value=-2**63, max_value=2**64) | st.floats(allow_nan=True, allow_infinity=True)
      | st.sampled_from(["2026-11-26T08:30:00+08:00", "2026-11-26T08:30:00", "2026-11-26T00:30:00Z", "yesterday",
                         "9999-99-99T99:99:99+99:99", ""]) | st.text(max_size=30))
# Events that are nearly right: every field drawn from good values and hostile ones, some fields missing.
event_like = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=10) | st.integers() | st.text(max_size=300), "ts": ts,
     "kind": st.sampled_from(["congestion", "fire", "aqi"]) | st.text(max_size=70),
     "district": district},
    optional={"domain": st.sampled_from(DOMAINS) | st.text(max_size=12),
              "severity": st.integers(min_value=-3, max_value=8) | st.text(max_size=3) | st.floats(),
              "title": st.text(max_size=250), "detail": st.text(max_size=300) | json_value,
              "value": st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
              "lat": st.floats(allow_nan=True, allow_infinity=True), "lon": st.floats(min_value=-400, max_value=400),
              "street": st.text(max_size=140) | st.none(), "unit": st.text(max_size=40), "source": json_value,
              "extra": json_value})


def encode_loose(value) -> bytes:
    """JSON as a careless publisher writes it: NaN and Infinity included, non-ASCII as it is."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


messages = (st.binary(max_size=3000)
            | json_value.map(encode_loose)
            | event_like.map(encode_loose)
            | st.lists(event_like, max_size=6).map(encode_loose)
            | st.text(max_size=500).map(lambda s: s.encode("utf-8", "surrogatepass")))


def check_parsed(raw: bytes, parsed) -> None:
    assert parsed.events or parsed.rejects, "a message yields events, rejects, or both"
    for r in parsed.rejects:
        assert r.reason in REASONS and isinstance(r.message, str) and r.message
    for ev in parsed.events:
        assert ev.district in {d.code for d in CITY.districts} and ev.domain in DOMAINS
        assert 0 <= ev.severity <= 4 and isinstance(ev.id, str) and ev.id
        orjson.dumps(ev.to_message())  # what goes on to the stream and the delta serialises
    decoded = None
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    if isinstance(decoded, list) and 1 < len(decoded) <= MAX_BATCH and len(raw) <= 64 * 1024:
        assert len(parsed.events) + len(parsed.rejects) == len(decoded)
        assert all(r.index is not None for r in parsed.rejects)


@FAST
@given(raw=messages, domain=st.sampled_from([*DOMAINS, None]))
def test_parse_message_never_crashes_and_explains_every_reject(raw, domain):
    check_parsed(raw, parse_message(raw, domain, CITY.aliases))


@FAST
@given(raw=messages)
def test_parse_message_takes_text_like_bytes(raw):
    text = raw.decode("utf-8", "replace")
    check_parsed(text.encode(), parse_message(text, "traffic", CITY.aliases))


def _json_error(resp) -> dict:
    assert resp.status_code < 500, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.is_json, resp.get_data(as_text=True)[:300]
    if resp.status_code >= 400:
        err = resp.json["error"]
        assert err["code"] and isinstance(err["message"], str) and err["message"]
    return resp.json


@API
@given(raw=messages, domain=st.sampled_from([*DOMAINS, None]) | st.text(max_size=10),
       auth=st.sampled_from([AUTH, {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", None]))
def test_post_events_never_500_and_explains_every_reject(client, raw, domain, auth, content_type):
    query = "" if domain is None else f"?domain={quote(domain, safe='')}"
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    resp = client.post("/api/events" + query, data=raw, headers=headers)
    doc = _json_error(resp)
    assert resp.status_code in (202, 400, 401, 413)
    if resp.status_code == 202:
        assert doc["accepted"] >= 1
    if resp.status_code in (202, 400) and auth is AUTH and "rejected" in doc:
        assert all(r["reason"] in REASONS and r["message"] for r in doc["rejected"])


@pytest.fixture
def officer(app, client):
    """The client signed in as an officer, with an open incident to act on; returns its CSRF header."""
    make_user(app, "fuzz-officer", "officer")
    resp = client.post("/api/session", json={"username": "fuzz-officer", "password": TEST_PASSWORD})
    assert resp.status_code == 200
    ingest_now(app, {"incident": [now_event(1, kind="fire", severity=4)]})
    return {"X-CSRF-Token": resp.json["csrf_token"]}


words = st.text(max_size=30) | st.sampled_from(["15m", "1h", "24h", "open", "futian", "440304", "fire", "0", "-1",
                                                "1", "99999999999999999999", "%", "../", "' OR 1=1 --"])
bodies = json_value | st.fixed_dictionaries({}, optional={
    "to": st.sampled_from(["acknowledged", "in_progress", "resolved", "done"]) | st.text(max_size=10) | json_value,
    "version": st.integers() | json_value, "note": st.text(max_size=600) | json_value,
    "departments": st.lists(st.sampled_from(["fire", "police", "health", "nobody"]) | st.text(max_size=8),
                            max_size=5) | json_value,
    "username": st.text(max_size=20) | json_value, "password": st.text(max_size=20) | json_value,
    "until": st.sampled_from(["2099-01-01T00:00:00+08:00", "2026-12-06T05:00:00+08:00", "tomorrow"])
    | st.text(max_size=30) | json_value,
    "reason": st.text(max_size=30) | json_value, "rule": st.sampled_from(["aqi_moderate", "nope"]) | json_value,
    "district": st.sampled_from(["futian", "atlantis"]) | json_value, "zone": st.text(max_size=10) | json_value})


@API
@given(route=st.sampled_from(["GET /api/summary?window={w}", "GET /api/summary?window={w}&live=1",
                              "GET /api/districts/{w}/summary", "GET /api/incidents?status={w}",
                              "GET /api/incidents/{w}", "GET /api/tasks?department={w}&status={w}",
                              "POST /api/incidents/{n}/dispatch", "POST /api/incidents/{n}/close",
                              "POST /api/tasks/{n}/transition", "POST /api/session", "GET /api/{w}",
                              "GET /api/alerts?status={w}&level={w}", "GET /api/alerts?lang={w}",
                              "GET /api/silences?all={w}", "POST /api/alerts/{n}/ack", "POST /api/silences"]),
       word=words, n=st.integers(min_value=-5, max_value=2**70) | st.just(1), body=bodies,
       raw_body=st.none() | st.binary(max_size=200))
def test_json_routes_never_500_and_explain_every_error(app, client, officer, route, word, n, body, raw_body):
    method, path = route.split(" ")
    path = path.format(w=quote(word, safe=""), n=n)
    if method == "GET":
        resp = client.get(path)
    elif raw_body is not None:
        resp = client.post(path, data=raw_body, headers={**officer, "Content-Type": "application/json"})
    else:
        resp = client.post(path, json=body, headers=officer)
    _json_error(resp)


# What the fuzzer found once, kept as examples: ids beyond BIGINT reached SQL (a 500), and paths the
# /api catch-all did not match (a newline, nothing after /api/) got Dash's HTML page.
@pytest.mark.parametrize("path", ["/api/incidents/9223372036854775808", "/api/tasks/9223372036854775808/transition"])
def test_ids_beyond_bigint_are_json_404s(client, officer, path):
    resp = (client.get(path) if "transition" not in path
            else client.post(path, json={"to": "acknowledged", "version": 1}, headers=officer))
    assert _json_error(resp)["error"]["code"] == "not_found" and resp.status_code == 404


@pytest.mark.parametrize("path", ["/api/0%0A", "/api/"])
def test_unroutable_api_paths_are_json_404s(client, path):
    resp = client.get(path)
    assert _json_error(resp)["error"]["code"] == "not_found" and resp.status_code == 404


# --- the Dash callback endpoint ---------------------------------------------------------------------------
# Every registered server callback with its real ids and junk values, made-up outputs, and junk structures, as
# an anonymous caller and as signed-in users with their CSRF token: never a 500; a 4xx is a JSON error.

CALLBACK = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
plausible = st.sampled_from([None, 0, 1, -1, 2**63, "1h", "15m", "zh", "en", "440304", "futian", "", "?department=fire",
                             "/district/futian", "/m", "/dispatch", [], {}, {"escalations": [{}]}, [{"column_id": "x"}],
                             "{title} contains x", {"snapshot": True}, {"incidents": [1]}, 1.5, True])
junk = plausible | json_value


def _pattern_ids(dep_id: str):
    pattern = json.loads(dep_id)
    keys = {k: (st.just(v) if not isinstance(v, list) else st.integers(-3, 2**64) | st.text(max_size=8) | json_value)
            for k, v in pattern.items()}
    return st.fixed_dictionaries(keys)


@st.composite
def callback_bodies(draw, app):
    """A callback request: a real callback with junk values, or a made-up output, or a junk structure."""
    from dashboard.web.callback_guard import server_callbacks

    keys = server_callbacks(app)
    kind = draw(st.sampled_from(["real", "real", "real", "made_up", "junk"]))
    if kind == "junk":
        return draw(json_value | st.fixed_dictionaries({}, optional={
            "output": st.sampled_from(keys) | st.text(max_size=30) | json_value, "outputs": json_value,
            "inputs": json_value, "state": json_value, "changedPropIds": json_value}))
    key = draw(st.sampled_from(keys)) if kind == "real" else draw(st.text(max_size=40) | st.sampled_from(
        ["page.children@x", "..a.b...c.d..", "city-map.figure", "live-store.data", "nobody.children"]))
    cb = app.callback_map.get(key) or {"inputs": [{"id": "x", "property": "y"}], "state": [], "output": None}

    def slot(dep):
        if dep["id"].startswith("{"):
            ids = draw(st.lists(_pattern_ids(dep["id"]), max_size=3))
            return [{"id": i, "property": dep["property"], "value": draw(junk)} for i in ids]
        return {"id": dep["id"], "property": dep["property"], "value": draw(junk)}

    def out(o):  # a pattern output (ALL) is the list of the components it matched: none here
        return [] if isinstance(o.component_id, dict) else {"id": o.component_id, "property": o.component_property}

    outputs = cb["output"]
    spec = ([out(o) for o in outputs] if isinstance(outputs, list) else out(outputs) if outputs is not None
            else {"id": "x", "property": "children"})
    inputs = [slot(dep) for dep in cb["inputs"]]
    fired = [f"{p['id'] if isinstance(p['id'], str) else json.dumps(p['id'], sort_keys=True, separators=(',', ':'))}"
             f".{p['property']}" for s in inputs for p in (s if isinstance(s, list) else [s])]
    changed = draw(st.lists(st.sampled_from(fired), max_size=2) if fired else st.just([]))
    return {"output": key, "outputs": spec, "inputs": inputs, "state": [slot(dep) for dep in cb["state"]],
            "changedPropIds": draw(st.just(changed) | st.lists(st.text(max_size=20), max_size=2))}


@pytest.fixture
def callers(app):
    """Clients that call callbacks: anonymous, and signed-in admin, officer and liaison with their CSRF tokens."""
    out = {"anonymous": (app.server.test_client(), {})}
    for role in ("admin", "officer", "liaison"):
        make_user(app, f"cb-{role}", role, "fire" if role == "liaison" else None)
        client = app.server.test_client()
        resp = client.post("/api/session", json={"username": f"cb-{role}", "password": TEST_PASSWORD})
        out[role] = (client, {"X-CSRF-Token": resp.json["csrf_token"]})
    ingest_now(app, {"incident": [now_event(1, kind="fire", severity=4)]})
    return out


@CALLBACK
@given(data=st.data(), who=st.sampled_from(["anonymous", "admin", "officer", "liaison"]))
def test_callback_endpoint_never_500_and_explains_every_error(app, callers, data, who):
    body = data.draw(callback_bodies(app))
    client, headers = callers[who]
    resp = client.post("/_dash-update-component", json=body, headers=headers)
    assert resp.status_code < 500, (who, body, resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code >= 400:
        _json_error(resp)


@pytest.mark.parametrize("raw, content_type", [(b"not json", "application/json"), (b"[1, 2]", "application/json"),
                                                (b'{"output": 1}', "application/json"), (b"", None),
                                                (b'{"output": "page.children"}', "text/plain")])
def test_malformed_callback_bodies_are_json_400s(client, raw, content_type):
    resp = client.post("/_dash-update-component", data=raw,
                       headers={"Content-Type": content_type} if content_type else {})
    assert resp.status_code == 400 and _json_error(resp)["error"]["code"] == "bad_request"


@pytest.mark.parametrize("output", ["nobody.children", "city-map.figure", "..page.children...lang.data.."])
def test_outputs_no_server_callback_has_are_json_404s(client, output):
    resp = client.post("/_dash-update-component", json={"output": output, "outputs": {"id": "x", "property": "y"},
                                                        "inputs": [], "changedPropIds": []})
    assert resp.status_code == 404 and _json_error(resp)["error"]["code"] == "unknown_callback"


@pytest.mark.parametrize("path", ["/_dash-component-suites/../dashboard/auth.py",
                                  "/_dash-component-suites/dash/../../../etc/passwd",
                                  "/_dash-component-suites/dash/..%2f..%2fdash.py",
                                  "/_dash-component-suites/dash/%2e%2e/%2e%2e/etc/passwd",
                                  "/_dash-component-suites/os/path.py", "/_dash-component-suites/dash/dash.py",
                                  "/_dash-component-suites/dash/deps/../../../../etc/passwd"])
def test_component_suite_traversal_is_a_404(client, path):
    resp = client.get(path)
    assert resp.status_code == 404 and b"root:" not in resp.data


def test_bad_request_raised_inside_a_callback_is_a_json_400(app, client):
    """What a callback says of its own bad input (werkzeug's BadRequest) reaches the caller as a JSON 400."""
    from dash import Input, Output
    from werkzeug.exceptions import BadRequest

    from dashboard.web.callback_guard import allow

    @allow(app, public=True)
    @app.callback(Output("strict-out", "children"), Input("strict-in", "value"))
    def strict(value):
        raise BadRequest("value must be a window: 15m, 1h or 24h")

    resp = client.post("/_dash-update-component", json={
        "output": "strict-out.children", "outputs": {"id": "strict-out", "property": "children"},
        "inputs": [{"id": "strict-in", "property": "value", "value": "7y"}], "changedPropIds": ["strict-in.value"]})
    assert resp.status_code == 400 and _json_error(resp)["error"] == {
        "code": "bad_request", "message": "value must be a window: 15m, 1h or 24h"}
