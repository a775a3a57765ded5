"""The open-data API (SPEC section 14): only the allowed fields in every format, small counts withheld, keys
required and revocable, a per-key rate limit with Retry-After, clear 400s, a Redis outage that is not a 500."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from dashboard.core.clock import iso
from dashboard.panorama.open_data import FIELDS, MIN_COUNT, PROPERTIES
from dashboard.storage import apikeys
from tests.helpers import make_event
from tests.test_api import ingest_now

HOUR = 3_600_000
TZ = "Asia/Shanghai"
# What the seeded events carry that must never leave through the open API.
SECRETS = ("机密标题", "机密详情", "机密来源", "园岭街道", "沙头街道", "22.5432109", "114.0561987")


def _hour0() -> int:
    """The start of the hour three hours ago: every seeded event is in the past."""
    return (int(time.time() * 1000) // HOUR - 3) * HOUR


def _seed(app) -> int:
    """Store the events the tests read; return the first hour.

    hour 0, Futian, congestion: 4 on one street and 3 on another (7: published, each street alone under 5);
    hour 0, Futian, fire: 3 (withheld); hour 1, Luohu, accident: exactly 5 (published); hour 1, Futian,
    congestion: 4 (withheld).
    """
    h0 = _hour0()
    n = iter(range(1, 1000))

    def ev(district, kind, ts, street):
        return make_event(next(n), district=district, kind=kind, ts=ts, street=street, title="机密标题",
                          detail="机密详情", source="机密来源", lat=22.5432109, lon=114.0561987)

    traffic = [ev("futian", "congestion", h0 + 600_000 + i, "园岭街道") for i in range(4)]
    traffic += [ev("futian", "congestion", h0 + 700_000 + i, "沙头街道") for i in range(3)]
    traffic += [ev("luohu", "accident", h0 + HOUR + 60_000 + i, None) for i in range(5)]
    traffic += [ev("futian", "congestion", h0 + HOUR + 120_000 + i, "园岭街道") for i in range(4)]
    incident = [ev("futian", "fire", h0 + 900_000 + i, "沙头街道") for i in range(3)]
    ingest_now(app, {"traffic": traffic, "incident": incident})
    return h0


def _key(app, owner: str = "lab") -> str:
    """Create a key through the CLI, as an operator would; return it."""
    res = app.server.test_cli_runner().invoke(args=["apikeys", "create", owner])
    assert res.exit_code == 0, res.output
    return res.output.splitlines()[0].rsplit(": ", 1)[1]


def _range(h0: int) -> str:
    return f"from={iso(h0, TZ).replace('+', '%2B')}&to={iso(h0 + 2 * HOUR, TZ).replace('+', '%2B')}"


@pytest.fixture
def opened(make_app, redis_client):
    """An app with the seeded events and a live key; its client; the first hour."""
    app = make_app()
    h0 = _seed(app)
    return app, app.server.test_client(), {"X-API-Key": _key(app)}, h0


def test_counts_publish_cells_of_five_and_more_summed_over_streets(opened):
    app, client, key, h0 = opened
    res = client.get(f"/api/open/counts?{_range(h0)}", headers=key)
    assert res.status_code == 200, res.json
    assert res.json["rows"] == [
        {"district": "440304", "hour": iso(h0, TZ), "domain": "traffic", "kind": "congestion", "count": 7},
        {"district": "440303", "hour": iso(h0 + HOUR, TZ), "domain": "traffic", "kind": "accident", "count": 5},
    ]
    assert res.json["min_count"] == MIN_COUNT == 5
    assert res.json["rows"][0]["hour"].endswith("+08:00")  # the city's zone
    # a filter keeps to its district and domain
    only = client.get(f"/api/open/counts?{_range(h0)}&district=luohu&domain=traffic", headers=key).json["rows"]
    assert [r["district"] for r in only] == ["440303"]
    assert client.get(f"/api/open/counts?{_range(h0)}&domain=incident", headers=key).json["rows"] == []


def test_no_field_beyond_the_allowed_ones_in_any_format(opened):
    app, client, key, h0 = opened
    bodies = []
    res = client.get(f"/api/open/counts?{_range(h0)}", headers=key)
    assert set(res.json) == {"from", "to", "min_count", "rows"} and res.json["rows"]
    for row in res.json["rows"]:
        assert tuple(row) == FIELDS
    bodies.append(res.get_data(as_text=True))

    res = client.get(f"/api/open/counts?{_range(h0)}&format=csv", headers=key)
    assert res.status_code == 200 and res.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(res.get_data(as_text=True))))
    assert tuple(table[0]) == FIELDS and len(table) == 3 and all(len(r) == len(FIELDS) for r in table)
    bodies.append(res.get_data(as_text=True))

    res = client.get(f"/api/open/districts.geojson?{_range(h0)}", headers=key)
    assert res.status_code == 200 and res.mimetype == "application/geo+json"
    doc = json.loads(res.get_data())
    assert set(doc) == {"type", "features"}
    assert len(doc["features"]) == len(app.server.extensions["panorama"].city.districts)
    for feature in doc["features"]:
        assert set(feature) == {"type", "id", "geometry", "properties"}
        assert tuple(feature["properties"]) == PROPERTIES
        assert set(feature["properties"]["counts"]) == {"security", "traffic", "environment", "incident"}
    bodies.append(res.get_data(as_text=True))

    for body in bodies:
        for secret in SECRETS:
            assert secret not in body, f"{secret!r} leaked"


def test_district_totals_add_up_published_cells_only(opened):
    app, client, key, h0 = opened
    doc = json.loads(client.get(f"/api/open/districts.geojson?{_range(h0)}", headers=key).get_data())
    by_code = {f["id"]: f["properties"] for f in doc["features"]}
    # Futian has 7 + 4 congestion and 3 fires, but only the cell of 7 is published: subtracting the published
    # rows from its total gives nothing away.
    assert by_code["440304"]["counts"] == {"security": 0, "traffic": 7, "environment": 0, "incident": 0}
    assert by_code["440304"]["total"] == 7
    assert by_code["440303"]["counts"]["traffic"] == 5
    assert by_code["440304"]["name"] == "福田区" and by_code["440304"]["name_en"] == "Futian"
    assert by_code["440304"]["code"] == "440304"
    assert doc["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_a_key_is_required_and_a_revoked_one_refused(opened):
    app, client, key, h0 = opened
    res = client.get(f"/api/open/counts?{_range(h0)}")
    assert res.status_code == 401 and res.json["error"]["code"] == "api_key_required"
    res = client.get(f"/api/open/counts?{_range(h0)}", headers={"X-API-Key": "pnod_notakey"})
    assert res.status_code == 401 and res.json["error"]["code"] == "bad_api_key"
    res = client.get(f"/api/open/districts.geojson?{_range(h0)}")
    assert res.status_code == 401
    engine = app.server.extensions["panorama"].engine
    listed = app.server.test_cli_runner().invoke(args=["apikeys", "list"]).output
    assert key["X-API-Key"] not in listed and key["X-API-Key"][:13] in listed  # the prefix, never the key
    [row] = apikeys.list_keys(engine)
    revoked = app.server.test_cli_runner().invoke(args=["apikeys", "revoke", str(row["id"])])
    assert revoked.exit_code == 0, revoked.output
    res = client.get(f"/api/open/counts?{_range(h0)}", headers=key)
    assert res.status_code == 401 and res.json["error"]["code"] == "bad_api_key"
    assert app.server.test_cli_runner().invoke(args=["apikeys", "revoke", str(row["id"])]).exit_code != 0


def test_only_the_hash_of_a_key_is_stored(opened):
    app, client, key, h0 = opened
    from sqlalchemy import select

    from dashboard.storage.models import api_keys

    with app.server.extensions["panorama"].engine.connect() as conn:
        [row] = conn.execute(select(api_keys)).mappings().all()
    assert key["X-API-Key"] not in json.dumps({k: str(v) for k, v in row.items()})
    assert row["key_hash"] == apikeys.digest(key["X-API-Key"]) and key["X-API-Key"].startswith(row["prefix"])


def test_over_the_rate_a_429_says_when_to_come_back(make_app, redis_client):
    app = make_app(PANORAMA_OPEN_RATE="3/day")  # a day's window: the test cannot straddle its edge
    client = app.server.test_client()
    key, other = {"X-API-Key": _key(app)}, {"X-API-Key": _key(app, "other")}
    for left in (2, 1, 0):
        res = client.get("/api/open/counts", headers=key)
        assert res.status_code == 200 and res.headers["RateLimit-Remaining"] == str(left)
    res = client.get("/api/open/counts", headers=key)
    assert res.status_code == 429 and res.json["error"]["code"] == "rate_limited"
    assert 1 <= int(res.headers["Retry-After"]) <= 86_400
    assert client.get("/api/open/counts", headers=other).status_code == 200  # per key


def test_a_bad_rate_setting_fails_the_start(make_app, redis_client):
    with pytest.raises(ValueError, match="PANORAMA_OPEN_RATE"):
        make_app(PANORAMA_OPEN_RATE="lots")


def test_redis_down_is_a_503_with_retry_after_not_a_500(make_app, pg_url, redis_proc):
    app = make_app(REDIS_URL=redis_proc.url)
    client = app.server.test_client()
    key = {"X-API-Key": _key(app)}
    assert client.get("/api/open/counts", headers=key).status_code == 200
    redis_proc.stop()
    res = client.get("/api/open/counts", headers=key)
    assert res.status_code == 503 and res.json["error"]["code"] == "rate_limit_unavailable"
    assert int(res.headers["Retry-After"]) > 0
    assert client.get("/api/open/openapi.json").status_code == 200  # the description needs no Redis


@pytest.mark.parametrize("query, code", [
    ("from=2026-12-06T10:00:00%2B08:00&to=2026-12-06T09:00:00%2B08:00", "bad_range"),
    ("from=2026-12-06T10:00:00%2B08:00&to=2026-12-06T10:00:00%2B08:00", "bad_range"),
    ("from=2026-10-01T00:00:00%2B08:00&to=2026-12-06T00:00:00%2B08:00", "range_too_wide"),
    ("from=yesterday", "bad_from"),
    ("from=2026-12-06T10:00:00", "bad_from"),  # no offset: whose ten o'clock?
    ("to=" + "9" * 80, "bad_to"),
    ("district=atlantis", "unknown_district"),
    ("domain=weather", "unknown_domain"),
    ("format=xml", "bad_format"),
])
def test_bad_parameters_are_400s_that_say_which(make_app, redis_client, query, code):
    app = make_app()
    client = app.server.test_client()
    res = client.get(f"/api/open/counts?{query}", headers={"X-API-Key": _key(app)})
    assert res.status_code == 400 and res.json["error"]["code"] == code, res.json
    if "format" not in query and "district" not in query and "domain" not in query:
        geo = client.get(f"/api/open/districts.geojson?{query}", headers={"X-API-Key": _key(app, "b")})
        assert geo.status_code == 400 and geo.json["error"]["code"] == code


def test_the_openapi_document_is_valid_and_describes_the_answers(opened):
    app, client, key, h0 = opened
    res = client.get("/api/open/openapi.json")  # no key needed: it describes, it holds no data
    assert res.status_code == 200
    doc = res.json
    validate_openapi(doc)  # raises on an invalid OpenAPI 3.1 document
    assert doc["openapi"] == "3.1.0" and set(doc["paths"]) == {"/counts", "/districts.geojson", "/openapi.json"}
    registry = Registry().with_resource("urn:open", Resource.from_contents(doc, default_specification=DRAFT202012))

    def check(schema: str, body) -> None:
        Draft202012Validator({"$ref": f"urn:open#/components/schemas/{schema}"}, registry=registry).validate(body)

    check("Counts", client.get(f"/api/open/counts?{_range(h0)}", headers=key).json)
    check("Districts", json.loads(client.get(f"/api/open/districts.geojson?{_range(h0)}", headers=key).get_data()))
    check("Error", client.get("/api/open/counts?format=xml", headers=key).json)
    # and the schema refuses a row with one field more, so the check above can fail
    with pytest.raises(Exception):
        check("Row", {"district": "440304", "hour": iso(h0, TZ), "domain": "traffic", "kind": "x", "count": 5,
                      "title": "机密标题"})


def test_the_open_api_is_read_only(opened):
    app, client, key, h0 = opened
    for path in ("/api/open/counts", "/api/open/districts.geojson"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            res = client.open(path, method=method, headers=key)
            assert res.status_code in (404, 405) and "error" in res.json, (method, path)
