"""Describe the open-data API as an OpenAPI 3.1 document (served at /api/open/openapi.json)."""

from __future__ import annotations

from dashboard.core.channels import DOMAINS
from dashboard.panorama.open_data import FIELDS, MIN_COUNT, PROPERTIES

_TIME = {"type": "string", "format": "date-time"}
_ERROR = {"type": "object", "required": ["error"], "additionalProperties": False,
          "properties": {"error": {"type": "object", "required": ["code", "message"],
                                   "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


def _param(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _errors(*statuses: str) -> dict:
    said = {"400": "a parameter is wrong (the error names it)", "401": "no API key, or one unknown or revoked",
            "429": "over this key's rate: Retry-After says in how many seconds to come back",
            "503": "the rate limit cannot be counted just now (Retry-After)"}
    return {s: {"description": said[s], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for s in statuses}


def document(city, max_days: int, rate: str) -> dict:
    """Return the OpenAPI 3.1 document of the open-data API for ``city``."""
    codes = [d.code for d in city.districts]
    range_params = [
        _param("from", f"the first hour (RFC 3339 with its offset); default: 24 hours before `to`; at most "
                       f"{max_days} days before `to`", _TIME),
        _param("to", "the end, exclusive (RFC 3339 with its offset); default: the start of the current hour", _TIME),
    ]
    row = {"type": "object", "required": list(FIELDS), "additionalProperties": False, "properties": {
        "district": {"type": "string", "enum": codes, "description": "the district's administrative code"},
        "hour": {**_TIME, "description": f"the hour's start in the city's time zone ({city.timezone})"},
        "domain": {"type": "string", "enum": list(DOMAINS)},
        "kind": {"type": "string", "description": "the kind of event (fire, congestion, aqi, ...); ~other for "
                                                  "kinds the city pack does not list"},
        "count": {"type": "integer", "minimum": MIN_COUNT}}}
    counts = {"type": "object", "required": list(DOMAINS), "additionalProperties": False,
              "properties": {d: {"type": "integer", "minimum": 0} for d in DOMAINS}}
    feature = {"type": "object", "required": ["type", "id", "geometry", "properties"], "additionalProperties": False,
               "properties": {
                   "type": {"const": "Feature"}, "id": {"type": "string"},
                   "geometry": {"type": "object", "description": "a GeoJSON Polygon or MultiPolygon (WGS 84)"},
                   "properties": {"type": "object", "required": list(PROPERTIES), "additionalProperties": False,
                                  "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                                                 "name_en": {"type": "string"}, "counts": counts,
                                                 "total": {"type": "integer", "minimum": 0}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Panorama open data: {city.name_en}", "version": "1.0.0",
                 "description": f"Counts of events per district, hour, domain and kind, from the city's operations "
                                f"centre. A cell with fewer than {MIN_COUNT} events is withheld: its row is left "
                                f"out (a missing row means 0 to {MIN_COUNT - 1}). No title, detail, source, "
                                f"coordinate or street of an event is ever published. Each key may make {rate} "
                                f"requests. Licence and how to get a key: /open.",
                 "license": {"name": "CC BY 4.0", "identifier": "CC-BY-4.0"}},
        "servers": [{"url": "/api/open"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/counts": {"get": {
                "operationId": "getCounts", "summary": "published counts per district, hour, domain and kind",
                "parameters": [*range_params,
                               _param("district", "a district's code (or slug); default: every district",
                                      {"type": "string"}),
                               _param("domain", "one domain; default: all", {"type": "string", "enum": list(DOMAINS)}),
                               _param("format", "json (default) or csv", {"type": "string", "enum": ["json", "csv"]})],
                "responses": {"200": {"description": "the published rows, by hour, district, domain and kind",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Counts"}},
                                                  "text/csv": {"schema": {"type": "string"},
                                                               "example": ",".join(FIELDS) + "\r\n"}}},
                              **_errors("400", "401", "429", "503")}}},
            "/districts.geojson": {"get": {
                "operationId": "getDistricts", "summary": "the districts' polygons with their published counts",
                "parameters": range_params,
                "responses": {"200": {"description": "a FeatureCollection, one feature per district; its counts "
                                                     "add up the published cells only",
                                      "content": {"application/geo+json": {
                                          "schema": {"$ref": "#/components/schemas/Districts"}}}},
                              **_errors("400", "401", "429", "503")}}},
            "/openapi.json": {"get": {
                "operationId": "getOpenApi", "summary": "this document", "security": [],
                "responses": {"200": {"description": "the OpenAPI document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Row": row,
                "Counts": {"type": "object", "required": ["from", "to", "min_count", "rows"],
                           "additionalProperties": False,
                           "properties": {"from": _TIME, "to": _TIME, "min_count": {"const": MIN_COUNT},
                                          "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}}}},
                "Feature": feature,
                "Districts": {"type": "object", "required": ["type", "features"], "additionalProperties": False,
                              "properties": {"type": {"const": "FeatureCollection"},
                                             "features": {"type": "array",
                                                          "items": {"$ref": "#/components/schemas/Feature"}}}},
                "Error": _ERROR,
            },
        },
    }
