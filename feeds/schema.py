"""Validate feed messages against the event schema of SPEC section 3."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Mapping

import msgspec
import orjson
from msgspec import Meta

from dashboard.core.channels import DOMAINS
from dashboard.core.districts import district_code

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

# JavaScript's NaN / Infinity literals, which JSON does not allow: reported as their own reason.
_NON_FINITE = re.compile(rb'[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]')


class Event(msgspec.Struct, kw_only=True):
    """One event of SPEC section 3, the one definition of its schema: msgspec checks the types and bounds while
    it decodes (one pass, no intermediate dicts: ~1.5 µs an event against pydantic's ~12), then ``_finish``
    checks what depends on the transport (the channel's domain, the city's districts, the receiver's clock).

    After validation ``ts`` is epoch milliseconds and ``district`` the registry code. Unknown fields are ignored.
    """

    id: Annotated[str, Meta(min_length=1, max_length=128)]
    ts: int | str
    kind: Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,64}$")]
    district: str
    severity: Annotated[int, Meta(ge=1, le=4)] = 1
    domain: str | None = None
    street: Annotated[str, Meta(max_length=128)] | None = None
    lat: Annotated[float, Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, Meta(ge=-180, le=180)] | None = None
    value: float | None = None
    unit: Annotated[str, Meta(max_length=32)] | None = None
    title: Annotated[str, Meta(max_length=200)] | None = None
    detail: Annotated[str, Meta(max_length=2000)] | None = None
    source: Annotated[str, Meta(max_length=128)] | None = None

    @property
    def ts_ms(self) -> int:
        """Return the event time as epoch milliseconds."""
        return self.ts  # type: ignore[return-value]  # _finish made it so

    def to_message(self) -> dict:
        """Return the event as a feed message object again (``ts`` in epoch ms, no empty fields)."""
        return {k: v for k in self.__struct_fields__ if (v := getattr(self, k)) is not None}


_MESSAGE = msgspec.json.Decoder(list[Event] | Event)


class Invalid(ValueError):
    """An event that decoded but breaks a rule of the transport; carries its reason code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def parse_ts(v: int | str) -> int:
    """Return RFC 3339 with an offset or epoch milliseconds (2000..2100) as epoch milliseconds."""
    if isinstance(v, int):
        if not _TS_MIN_MS <= v < _TS_MAX_MS:
            raise Invalid("invalid_field", "ts: epoch milliseconds out of range 2000..2100")
        return v
    if "T" not in v[:11] and " " not in v[:11]:
        raise Invalid("invalid_field", "ts: RFC 3339 date-time expected")
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise Invalid("invalid_field", "ts: RFC 3339 date-time expected") from None
    if dt.tzinfo is None:
        raise Invalid("invalid_field", "ts: RFC 3339 date-time needs an offset")
    # The same range as epoch ms: the API forwards ts as epoch ms, which ingest must accept again.
    try:
        ms = epoch_ms(dt.astimezone(timezone.utc))
    except OverflowError:  # 0001-01-01T00:00:00+08:00 has no UTC date
        raise Invalid("invalid_field", "ts: date-time out of range 2000..2100") from None
    if not _TS_MIN_MS <= ms < _TS_MAX_MS:
        raise Invalid("invalid_field", "ts: date-time out of range 2000..2100")
    return ms


def _finish(ev: Event, context: Mapping[str, Any], from_json: bool = False) -> Event:
    """Apply the rules that depend on the transport to a decoded event; raise Invalid. ``from_json``: decoded from
    JSON text by msgspec, which refuses a number out of range, so no float can be infinite or NaN."""
    ts = ev.ts
    # The usual ts, epoch ms in range, without the call (ingest's hot path: a microsecond an event counts).
    ms = ts if type(ts) is int and _TS_MIN_MS <= ts < _TS_MAX_MS else parse_ts(ts)
    received_ms = context.get("received_ms")
    if received_ms is not None and ms > received_ms + MAX_CLOCK_SKEW_MS:
        iso_ts = (_EPOCH + ms * _MS).isoformat()
        raise Invalid("future_ts", f"ts: {iso_ts} is {(ms - received_ms) / 60_000:,.0f} minutes ahead of the "
                                   f"receiver's clock (at most {MAX_CLOCK_SKEW_MS // 60_000})")
    oldest_ms = context.get("oldest_ms")
    if oldest_ms is not None and ms < oldest_ms:
        raise Invalid("expired_ts", f"ts: {(_EPOCH + ms * _MS).isoformat()} is older than what is kept (events "
                                    f"since {(_EPOCH + oldest_ms * _MS).isoformat()}: PANORAMA_RETENTION_DAYS)")
    ev.ts = ms
    if not from_json:
        for name in ("lat", "lon", "value"):  # the JSON path cannot carry them; a Python caller can
            v = getattr(ev, name)
            if v is not None and not math.isfinite(v):
                raise Invalid("non_finite", f"{name}: must be a finite number")
    districts = context.get("districts")
    if districts is not None:
        code = district_code(ev.district, districts)
        if code is None:
            raise Invalid("unknown_district", f"unknown district {ev.district[:64]!r}")
        ev.district = code
    # The channel names the domain; over HTTP the event must name it itself.
    expected = context.get("domain")
    if ev.domain is None:
        if expected is None:
            raise Invalid("missing_field", "domain: required when the transport does not name it")
        ev.domain = expected
    elif expected is not None and ev.domain != expected:
        raise Invalid("domain_mismatch", f"domain {ev.domain[:32]!r} does not match channel domain {expected!r}")
    elif ev.domain not in DOMAINS:
        raise Invalid("domain_mismatch", f"domain: unknown domain {ev.domain[:32]!r}")
    return ev


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
    def of(cls, reason: str, message: str, raw: bytes | str, index: int | None = None) -> Reject:
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


_AT = re.compile(r" - at `\$(?:\[\d+\])?\.?(?P<loc>[^`]*)`$")


def _reason_of(err: msgspec.ValidationError) -> tuple[str, str]:
    """Map msgspec's error to a stable reason code and a readable ``field: problem`` message."""
    text = str(err)
    m = _AT.search(text)
    loc = (m["loc"] if m else "") or "event"
    msg = text[:m.start()] if m else text
    if msg.startswith("Object missing required field"):
        return "missing_field", f"{msg.split('`')[1]}: required"
    if msg.startswith("Number out of range"):
        return "non_finite", f"{loc}: a number out of range is not a finite number"
    if ", got `" in msg:
        return "wrong_type", f"{loc}: {msg}"
    return "invalid_field", f"{loc}: {msg}"


def validate_event(obj: Any, context: Mapping[str, Any]) -> Event | Reject:
    """Validate one decoded JSON value as an event."""
    if not isinstance(obj, dict):
        return Reject.of("not_an_object", "an event must be a JSON object", orjson.dumps(obj))
    try:
        return _finish(msgspec.convert(obj, Event), context)
    except msgspec.ValidationError as err:
        reason, message = _reason_of(err)
    except Invalid as err:
        reason, message = err.reason, str(err)
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
    context = {"districts": districts, "domain": domain, "received_ms": received_ms, "oldest_ms": oldest_ms}
    try:  # the fast path: the whole message decoded and type-checked in one pass
        typed = _MESSAGE.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        typed = None  # decoded again below, event by event, to say which is wrong and why
    if typed is not None:
        items = typed if isinstance(typed, list) else [typed]
        if isinstance(typed, list) and not 1 <= len(typed) <= MAX_BATCH:
            reason, why = (("empty_batch", "an array must hold at least one event") if not typed else
                           ("batch_too_large", f"{len(typed)} events in one message, limit {MAX_BATCH}"))
            out.rejects.append(Reject.of(reason, why, raw))
            return out
        sent = None
        for i, ev in enumerate(items):
            try:
                out.events.append(_finish(ev, context, from_json=True))
            except Invalid as err:
                if sent is None:  # the reject keeps the event as it was sent
                    sent = orjson.loads(raw)
                obj = sent[i] if isinstance(sent, list) else sent
                out.rejects.append(Reject.of(err.reason, str(err), orjson.dumps(obj), i if len(items) > 1 else None))
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
    for i, obj in enumerate(items):
        result = validate_event(obj, context)
        if isinstance(result, Reject):
            out.rejects.append(replace(result, index=i if len(items) > 1 else None))
        else:
            out.events.append(result)
    return out


def _bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")
