"""Validate feed messages against the event schema of SPEC section 3."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Annotated, Any, Mapping

import orjson
from dashboard.core.channels import DOMAINS
from dashboard.core.districts import resolve_district
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
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
# SPEC section 3: a ts may run this far ahead of the receiver's clock (publishers' clocks drift);
# beyond it a far-future time would stick as a feed's newest event and in future minutes' counts.
MAX_CLOCK_SKEW_MS = 5 * 60_000
# What a reject keeps of its raw message: a prefix whose JSON text is at most this many bytes (control
# characters escape to six bytes each), plus the whole message's length and hash. A dead letter is then
# a bounded size whatever was sent, so the list's entry cap bounds its bytes too.
PAYLOAD_PREFIX_BYTES = 1024
MESSAGE_CHARS = 256

# JSON has no NaN or infinity; allow_inf_nan guards the HTTP path and Python callers too.
Number = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
# JavaScript's NaN / Infinity literals, which JSON does not allow: reported as their own reason.
_NON_FINITE = re.compile(rb'[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]')


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
        return epoch_ms(self.ts)

    def to_message(self) -> dict:
        """Return the event as a feed message object again (``ts`` in epoch ms, no empty fields)."""
        out = {k: v for k in type(self).model_fields if (v := getattr(self, k)) is not None}
        out["ts"] = self.ts_ms
        return out

    @field_validator("ts", mode="plain")
    @classmethod
    def _parse_ts(cls, v: Any, info: ValidationInfo) -> datetime:
        dt = cls._ts(v)
        context = info.context or {}
        received_ms = context.get("received_ms")
        if received_ms is not None and epoch_ms(dt) > received_ms + MAX_CLOCK_SKEW_MS:
            ahead = (epoch_ms(dt) - received_ms) / 60_000
            raise ValueError(f"{dt.isoformat()} is {ahead:,.0f} minutes ahead of the receiver's clock "
                             f"(at most {MAX_CLOCK_SKEW_MS // 60_000})")
        oldest_ms = context.get("oldest_ms")
        if oldest_ms is not None and epoch_ms(dt) < oldest_ms:
            raise ValueError(f"{dt.isoformat()} is older than what is kept (events since "
                             f"{(_EPOCH + oldest_ms * _MS).isoformat()}: PANORAMA_RETENTION_DAYS)")
        return dt

    @staticmethod
    def _ts(v: Any) -> datetime:
        """Parse RFC 3339 with an offset or epoch milliseconds (2000..2100) as aware UTC."""
        if isinstance(v, int) and not isinstance(v, bool):
            if not _TS_MIN_MS <= v < _TS_MAX_MS:
                raise ValueError("epoch milliseconds out of range 2000..2100")
            # Integer arithmetic: a float division turns some ms values into their neighbour.
            return _EPOCH + v * _MS
        if isinstance(v, str):
            if "T" not in v[:11] and " " not in v[:11]:
                raise ValueError("RFC 3339 date-time expected")
            try:
                dt = datetime.fromisoformat(v)
            except ValueError:
                raise ValueError("RFC 3339 date-time expected") from None
            if dt.tzinfo is None:
                raise ValueError("RFC 3339 date-time needs an offset")
            # The same range as epoch ms: the API forwards ts as epoch ms, which ingest must accept again.
            try:
                utc = dt.astimezone(timezone.utc)
            except OverflowError:  # 0001-01-01T00:00:00+08:00 has no UTC date
                raise ValueError("date-time out of range 2000..2100") from None
            if not _TS_MIN_MS <= epoch_ms(utc) < _TS_MAX_MS:
                raise ValueError("date-time out of range 2000..2100")
            return utc
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


def epoch_ms(dt: datetime) -> int:
    """Return an aware datetime as whole epoch milliseconds, exactly (no float rounding)."""
    return (dt - _EPOCH) // _MS


@dataclass(frozen=True)
class Reject:
    """A message or an event that broke the schema, with the reason it is counted under.

    It keeps a bounded prefix of the raw payload, the payload's length in bytes and its SHA-256,
    never the payload itself: hostile volume must not cost memory in proportion to its size.
    """

    reason: str
    message: str
    payload: str  # a prefix of the raw payload, as text (invalid UTF-8 replaced)
    index: int | None = None
    size: int = 0
    sha256: str = ""

    @classmethod
    def of(cls, reason: str, message: str, raw: bytes | str, index: int | None = None) -> "Reject":
        """Return the reject of a raw payload, keeping only its prefix, length and hash."""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        return cls(reason, message[:MESSAGE_CHARS], payload_prefix(data), index, len(data),
                   hashlib.sha256(data).hexdigest())


def payload_prefix(data: bytes, limit: int = PAYLOAD_PREFIX_BYTES) -> str:
    """Return the longest prefix of ``data`` as text whose JSON encoding (quotes aside) is at most ``limit`` bytes."""
    text = data[:limit].decode("utf-8", "replace")
    if len(orjson.dumps(text)) - 2 <= limit:
        return text
    lo, hi = 0, len(text)  # escapes made it longer: find the longest prefix that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(orjson.dumps(text[:mid])) - 2 <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


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
    if "ahead of the receiver's clock" in msg:
        return "future_ts", f"{loc}: {msg}"
    if "older than what is kept" in msg:
        return "expired_ts", f"{loc}: {msg}"
    if loc == "district" and "unknown district" in msg:
        return "unknown_district", msg
    if "does not match channel domain" in msg or "unknown domain" in msg:
        return "domain_mismatch", msg
    if "finite" in msg or typ == "finite_number":
        return "non_finite", f"{loc}: {msg}"
    if typ.endswith("_type") or typ in ("model_type", "model_attributes_type"):
        return "wrong_type", f"{loc}: {msg}"
    return "invalid_field", f"{loc}: {msg}"


def validate_event(obj: Any, context: Mapping[str, Any]) -> Event | Reject:
    """Validate one decoded JSON value as an event."""
    if not isinstance(obj, dict):
        return Reject.of("not_an_object", "an event must be a JSON object", orjson.dumps(obj))
    try:
        return Event.model_validate(obj, context=context)
    except ValidationError as err:
        reason, message = _reason_of(err)
        return Reject.of(reason, message, orjson.dumps(obj))


def parse_message(
    raw: bytes | str,
    domain: str | None,
    districts: Mapping[str, str] | None,
    received_ms: int | None = None,
    oldest_ms: int | None = None,
) -> Parsed:
    """Parse one feed message (an event or an array of events) for a channel's domain.

    ``received_ms`` is the receiver's clock: events more than MAX_CLOCK_SKEW_MS ahead of it are
    rejected (``future_ts``). Without it only the 2000..2100 range is checked (pure callers).
    ``oldest_ms``: events older than it are rejected (``expired_ts``): retention would not keep them.
    """
    out = Parsed()
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        out.rejects.append(Reject.of("too_large", f"message is {size} bytes, limit {MAX_MESSAGE_BYTES}", raw))
        return out
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        text = str(err)
        if "not valid UTF-8" in text:
            out.rejects.append(Reject.of("not_utf8", "not UTF-8 text", raw))
            return out
        reason = "non_finite" if ("infinity" in text or _NON_FINITE.search(_bytes(raw))) else "invalid_json"
        out.rejects.append(Reject.of(reason, f"invalid JSON: {text}", raw))
        return out
    items = decoded if isinstance(decoded, list) else [decoded]
    if isinstance(decoded, list):
        if not decoded:
            out.rejects.append(Reject.of("empty_batch", "an array must hold at least one event", raw))
            return out
        if len(decoded) > MAX_BATCH:
            out.rejects.append(
                Reject.of("batch_too_large", f"{len(decoded)} events in one message, limit {MAX_BATCH}", raw)
            )
            return out
    context = {"districts": districts, "domain": domain, "received_ms": received_ms, "oldest_ms": oldest_ms}
    for i, obj in enumerate(items):
        result = validate_event(obj, context)
        if isinstance(result, Reject):
            out.rejects.append(replace(result, index=i if len(items) > 1 else None))
        else:
            out.events.append(result)
    return out


def _bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")
