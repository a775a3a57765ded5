"""Validate the messages of ``feeds:units`` against the unit report schema of SPEC section 11."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Mapping

import msgspec
import orjson
from msgspec import Meta

from dashboard.core.units import STATUSES
from feeds.schema import MAX_BATCH, MAX_CLOCK_SKEW_MS, MAX_MESSAGE_BYTES, Invalid, Reject, _reason_of, parse_ts

Status = Annotated[str, Meta(pattern="^(" + "|".join(STATUSES) + ")$")]


class UnitReport(msgspec.Struct, kw_only=True):
    """One report of SPEC section 11: where a unit is and, optionally, its status, department and kind.

    ``status`` absent leaves a known unit's status as it is (a new unit starts ``available``): a vehicle's
    tracker reports its place every few seconds, the crew or the dispatch desk changes its status.
    After validation ``ts`` is epoch milliseconds. Unknown fields are ignored.
    """

    unit: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    ts: int | str
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    status: Status | None = None
    department: Annotated[str, Meta(max_length=64)] | None = None
    kind: Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,64}$")] | None = None

    @property
    def ts_ms(self) -> int:
        """Return the report time as epoch milliseconds."""
        return self.ts  # type: ignore[return-value]  # _finish made it so


_MESSAGE = msgspec.json.Decoder(list[UnitReport] | UnitReport)


@dataclass
class ParsedUnits:
    """What one message of ``feeds:units`` yields: its valid reports and its rejects."""

    reports: list[UnitReport] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def _finish(r: UnitReport, context: Mapping[str, Any]) -> UnitReport:
    """Apply the rules that need the receiver's clock and retention; the fleet's departments are checked where
    the units are locked (``dashboard.storage.units.apply_reports``), so an edit in the app is never raced."""
    ms = parse_ts(r.ts)
    received_ms = context.get("received_ms")
    if received_ms is not None and ms > received_ms + MAX_CLOCK_SKEW_MS:
        raise Invalid("future_ts", f"ts is {(ms - received_ms) / 60_000:,.0f} minutes ahead of the receiver's clock "
                                   f"(at most {MAX_CLOCK_SKEW_MS // 60_000})")
    oldest_ms = context.get("oldest_ms")
    if oldest_ms is not None and ms < oldest_ms:
        raise Invalid("expired_ts", "ts is older than what is kept (PANORAMA_RETENTION_DAYS)")
    r.ts = ms
    if not (math.isfinite(r.lat) and math.isfinite(r.lon)):
        raise Invalid("non_finite", "lat, lon: must be finite numbers")
    return r


def parse_units(raw: bytes | str, context: Mapping[str, Any]) -> ParsedUnits:
    """Parse one message of ``feeds:units`` (a report or an array of at most MAX_BATCH).

    ``context``: ``received_ms`` (the receiver's clock) and ``oldest_ms`` (retention); a missing key skips its
    check.
    """
    out = ParsedUnits()
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        out.rejects.append(Reject.of("too_large", f"message is {size} bytes, limit {MAX_MESSAGE_BYTES}", raw))
        return out
    try:  # the fast path: the whole message decoded and type-checked in one pass
        typed = _MESSAGE.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        typed = None
    if typed is None:
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            reason = "not_utf8" if "not valid UTF-8" in str(err) else "invalid_json"
            out.rejects.append(Reject.of(reason, f"invalid JSON: {err}"[:200], raw))
            return out
    else:
        decoded = None
    items = typed if typed is not None else decoded
    if isinstance(items, list) and not 1 <= len(items) <= MAX_BATCH:
        reason, why = (("empty_batch", "an array must hold at least one report") if not items else
                       ("batch_too_large", f"{len(items)} reports in one message, limit {MAX_BATCH}"))
        out.rejects.append(Reject.of(reason, why, raw))
        return out
    many = isinstance(items, list)
    for i, item in enumerate(items if many else [items]):
        index = i if many else None
        try:
            if typed is None:
                if not isinstance(item, dict):
                    raise Invalid("not_an_object", "a report must be a JSON object")
                item = msgspec.convert(item, UnitReport)
            out.reports.append(_finish(item, context))
        except msgspec.ValidationError as err:
            reason, message = _reason_of(err)
            out.rejects.append(Reject.of(reason, message, orjson.dumps(decoded[i] if many else decoded), index))
        except Invalid as err:
            sent = decoded if decoded is not None else orjson.loads(raw)
            out.rejects.append(Reject.of(err.reason, str(err), orjson.dumps(sent[i] if many else sent), index))
    return out
