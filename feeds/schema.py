"""Validate feed messages against the event schema of SPEC section 3."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Annotated, Any, Mapping

import orjson
from feeds.channels import DOMAINS
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_BATCH = 1000
# Timestamps outside this range are typos (seconds sent as ms, year 20260), not events.
_TS_MIN_MS = 946_684_800_000  # 2000-01-01
_TS_MAX_MS = 4_102_444_800_000  # 2100-01-01

# JSON has no NaN or infinity; allow_inf_nan guards the HTTP path and Python callers too.
Number = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
# JavaScript's NaN / Infinity literals, which JSON does not allow: reported as their own reason.
_NON_FINITE = re.compile(rb'[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]')


def resolve_district(v: str, info: ValidationInfo) -> str:
    """Validate a district code, slug or name against ``context["districts"]`` and return its code."""
    districts = (info.context or {}).get("districts")
    if districts is None:
        return v
    code = districts.get(v) or districts.get(v.lower())
    if code is None:
        raise ValueError(f"unknown district {v[:64]!r}")
    return code


class Event(BaseModel):
    """One validated event; ``district`` is always the registry code, ``ts`` aware UTC."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    ts: datetime
    kind: Annotated[StrictStr, Field(pattern=r"^[a-z0-9_]{1,64}$")]
    district: StrictStr
    severity: Annotated[StrictInt, Field(ge=1, le=4)] = 1
    domain: StrictStr | None = None
    street: Annotated[StrictStr, Field(max_length=128)] | None = None
    lat: Annotated[Number, Field(ge=-90, le=90)] | None = None
    lon: Annotated[Number, Field(ge=-180, le=180)] | None = None
    value: Number | None = None
    unit: Annotated[StrictStr, Field(max_length=32)] | None = None
    title: Annotated[StrictStr, Field(max_length=200)] | None = None
    detail: Annotated[StrictStr, Field(max_length=2000)] | None = None
    source: Annotated[StrictStr, Field(max_length=128)] | None = None

    @cached_property
    def ts_ms(self) -> int:
        """Return the event time as epoch milliseconds."""
        return int(self.ts.timestamp() * 1000)

    def to_message(self) -> dict:
        """Return the event as a feed message object again (``ts`` in epoch ms, no empty fields)."""
        out = {k: v for k in type(self).model_fields if (v := getattr(self, k)) is not None}
        out["ts"] = self.ts_ms
        return out

    @field_validator("ts", mode="plain")
    @classmethod
    def _parse_ts(cls, v: Any) -> datetime:
        if isinstance(v, int) and not isinstance(v, bool):
            if not _TS_MIN_MS <= v < _TS_MAX_MS:
                raise ValueError("epoch milliseconds out of range 2000..2100")
            return datetime.fromtimestamp(v / 1000, tz=timezone.utc)
        if isinstance(v, str):
            if "T" not in v[:11] and " " not in v[:11]:
                raise ValueError("RFC 3339 date-time expected")
            try:
                dt = datetime.fromisoformat(v)
            except ValueError:
                raise ValueError("RFC 3339 date-time expected") from None
            if dt.tzinfo is None:
                raise ValueError("RFC 3339 date-time needs an offset")
            return dt.astimezone(timezone.utc)
        raise ValueError("RFC 3339 string or epoch milliseconds expected")

    @field_validator("district")
    @classmethod
    def _resolve_district(cls, v: str, info: ValidationInfo) -> str:
        return resolve_district(v, info)

    @model_validator(mode="after")
    def _fill_domain(self, info: ValidationInfo) -> "Event":
        # The channel names the domain; over HTTP the event must name it itself.
        expected = (info.context or {}).get("domain")
        if self.domain is None:
            if expected is None:
                raise ValueError("domain: required when the transport does not name it")
            self.domain = expected
        elif expected is not None and self.domain != expected:
            raise ValueError(f"domain {self.domain[:32]!r} does not match channel domain {expected!r}")
        elif self.domain not in DOMAINS:
            raise ValueError(f"domain: unknown domain {self.domain[:32]!r}")
        return self


@dataclass(frozen=True)
class Reject:
    """A message or an event that broke the schema, with the reason it is counted under."""

    reason: str
    message: str
    payload: str
    index: int | None = None


@dataclass
class Parsed:
    """What one message yields: its valid events and its rejects."""

    events: list[Event] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def _reason_of(err: ValidationError) -> tuple[str, str]:
    """Map the first pydantic error to a stable reason code and a readable message."""
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or "event"
    typ = first["type"]
    msg = first["msg"].removeprefix("Value error, ")
    if typ == "missing":
        return "missing_field", f"{loc}: required"
    if msg.startswith("domain: required"):
        return "missing_field", msg
    if loc == "district" and "unknown district" in msg:
        return "unknown_district", msg
    if "does not match channel domain" in msg or "unknown domain" in msg:
        return "domain_mismatch", msg
    if "finite" in msg or typ == "finite_number":
        return "non_finite", f"{loc}: {msg}"
    if typ.endswith("_type") or typ in ("model_type", "model_attributes_type"):
        return "wrong_type", f"{loc}: {msg}"
    return "invalid_field", f"{loc}: {msg}"


def _text(raw: bytes | str, limit: int = MAX_MESSAGE_BYTES) -> str:
    if isinstance(raw, bytes):
        return raw[:limit].decode("utf-8", "replace")
    return raw[:limit]


def validate_event(obj: Any, context: Mapping[str, Any]) -> Event | Reject:
    """Validate one decoded JSON value as an event."""
    if not isinstance(obj, dict):
        return Reject("not_an_object", "an event must be a JSON object", _text(orjson.dumps(obj)))
    try:
        return Event.model_validate(obj, context=context)
    except ValidationError as err:
        reason, message = _reason_of(err)
        return Reject(reason, message, _text(orjson.dumps(obj)))


def parse_message(
    raw: bytes | str,
    domain: str | None,
    districts: Mapping[str, str] | None,
) -> Parsed:
    """Parse one feed message (an event or an array of events) for a channel's domain."""
    out = Parsed()
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        out.rejects.append(Reject("too_large", f"message is {size} bytes, limit {MAX_MESSAGE_BYTES}", _text(raw)))
        return out
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        text = str(err)
        if "not valid UTF-8" in text:
            out.rejects.append(Reject("not_utf8", "not UTF-8 text", _text(raw)))
            return out
        reason = "non_finite" if ("infinity" in text or _NON_FINITE.search(_bytes(raw))) else "invalid_json"
        out.rejects.append(Reject(reason, f"invalid JSON: {text}", _text(raw)))
        return out
    items = decoded if isinstance(decoded, list) else [decoded]
    if isinstance(decoded, list):
        if not decoded:
            out.rejects.append(Reject("empty_batch", "an array must hold at least one event", _text(raw)))
            return out
        if len(decoded) > MAX_BATCH:
            out.rejects.append(
                Reject("batch_too_large", f"{len(decoded)} events in one message, limit {MAX_BATCH}", _text(raw))
            )
            return out
    context = {"districts": districts, "domain": domain}
    for i, obj in enumerate(items):
        result = validate_event(obj, context)
        if isinstance(result, Reject):
            out.rejects.append(Reject(result.reason, result.message, result.payload, i if len(items) > 1 else None))
        else:
            out.events.append(result)
    return out


def _bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")
