"""What the domain refuses, by kind; the web layer maps each kind to an HTTP status in one place (web.api)."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; ``code`` names why (the API's ``error.code``). Bad input unless a
    subclass says otherwise."""

    code = "bad_request"

    def __init__(self, message: str = "", *, key: str | None = None):
        super().__init__(message)
        # What a page says instead of the message (which names codes, in English): a text of
        # dashboard.core.i18n's errors; None says the kind's own text.
        self.key = key


class NotFound(DomainError):
    """The thing asked for does not exist."""

    code = "not_found"


class Forbidden(DomainError):
    """The actor may not do this."""

    code = "forbidden"


class Conflict(DomainError):
    """It changed since the actor saw it (a stale version)."""

    code = "version_conflict"


class Unprocessable(DomainError):
    """Well formed, but not allowed from the state it is in."""

    code = "invalid_transition"
