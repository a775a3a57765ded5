"""Property-based fuzzing (hypothesis): the event schema and the JSON API never crash, never answer 500,
and explain every reject."""

from __future__ import annotations

import json
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dashboard.city import load_city
from feeds.channels import DOMAINS
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
    "username": st.text(max_size=20) | json_value, "password": st.text(max_size=20) | json_value})


@API
@given(route=st.sampled_from(["GET /api/summary?window={w}", "GET /api/summary?window={w}&live=1",
                              "GET /api/districts/{w}/summary", "GET /api/incidents?status={w}",
                              "GET /api/incidents/{w}", "GET /api/tasks?department={w}&status={w}",
                              "POST /api/incidents/{n}/dispatch", "POST /api/incidents/{n}/close",
                              "POST /api/tasks/{n}/transition", "POST /api/session", "GET /api/{w}"]),
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
