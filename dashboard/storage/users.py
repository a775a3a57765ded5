"""Store users and kiosk tokens in SQL: create, verify, disable, list, revoke; users of the identity provider."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.storage.models import kiosk_tokens, users
from dashboard.core.clock import now_ms
from dashboard.core.roles import ROLES

MIN_PASSWORD = 8
# Checked when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone")
MAX_USERNAME = 64


class UserError(ValueError):
    """A user or token that cannot be created or changed as asked (bad role, department, duplicate...)."""


@dataclass(frozen=True)
class User:
    """A signed-in person; also what Flask-Login keeps as ``current_user``."""

    id: int
    username: str
    role: str
    department: str | None
    active: bool
    # Raised on every sign-out and disable: a session signed in at an older epoch is over.
    session_epoch: int = 0
    # The district centre the user belongs to (a district code of the city pack); None: the city centre.
    district: str | None = None

    # Flask-Login's user protocol
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    def public(self) -> dict:
        """Return what the API shows of the user."""
        return {"username": self.username, "role": self.role, "department": self.department,
                "district": self.district}


def _user(row) -> User:
    return User(int(row.id), row.username, row.role, row.department, bool(row.active), int(row.session_epoch or 0),
                row.district)


def validate(role: str, department: str | None, departments: list[str]) -> str | None:
    """Check a role and department pair; return the department to store."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "liaison" and not department:
        raise UserError("a liaison needs --department")
    if department and department not in departments:
        raise UserError(f"unknown department {department!r}; one of {', '.join(departments)}")
    return department or None


def validate_district(district: str | None, districts: Iterable[str]) -> str | None:
    """Check a district code against the city pack's registry (``districts``: its codes); return it to store."""
    codes = list(districts)
    if district and district not in codes:
        raise UserError(f"unknown district {district!r}; one of {', '.join(codes)}")
    return district or None


def _check_username(username: str) -> None:
    if not username or len(username) > MAX_USERNAME or username != username.strip():
        raise UserError("a username is 1 to 64 characters without surrounding spaces")


def create_user(engine: Engine, username: str, password: str, role: str, department: str | None,
                departments: list[str], *, district: str | None = None, districts: Iterable[str] = ()) -> User:
    """Create an active user with a hashed password (of a district centre with ``district``, one of ``districts``)."""
    department = validate(role, department, departments)
    district = validate_district(district, districts)
    _check_username(username)
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).where(func.lower(users.c.username) == username.lower())).first():
            raise UserError(f"user {username!r} exists")
        new_id = conn.execute(insert(users).values(
            username=username, password_hash=generate_password_hash(password), role=role,
            department=department, district=district, active=True, created_ms=now_ms())).inserted_primary_key[0]
    return User(int(new_id), username, role, department, True, district=district)


def sso_sign_in(engine: Engine, subject: str, username: str, role: str, department: str | None,
                district: str | None) -> User:
    """Create or update the user the identity provider knows as ``subject`` (``"<issuer> <sub>"``), with what its
    claims say (already checked), and record the sign-in; return the user as it now is.

    The user is found by ``subject``, never by name: a name the provider sends that another account holds (a
    local break-glass account, another subject's) is refused (UserError), not taken over. Such a user has no
    password. A disabled user stays disabled (the caller refuses it).
    """
    _check_username(username)
    now = now_ms()
    with engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.sso_subject == subject)).first()
        if row is None:
            if conn.execute(select(users.c.id).where(func.lower(users.c.username) == username.lower())).first():
                raise UserError(f"user {username!r} exists and is not this identity's")
            try:
                with conn.begin_nested():
                    conn.execute(insert(users).values(
                        username=username, password_hash=None, role=role, department=department,
                        district=district, sso_subject=subject, active=True, created_ms=now, last_login_ms=now))
            except IntegrityError as err:  # the same name or subject written by a parallel sign-in
                raise UserError(f"user {username!r} was being created at the same moment; sign in again") from err
        else:
            # The provider is the source of truth for role, department and district: each sign-in brings them up
            # to date (a session already open reads the user's row on every request, so it follows at once).
            conn.execute(update(users).where(users.c.id == row.id).values(
                role=role, department=department, district=district, last_login_ms=now))
        return _user(conn.execute(select(users).where(users.c.sso_subject == subject)).one())


def get_user(engine: Engine, user_id: int) -> User | None:
    """Return the user with ``user_id``, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _user(row) if row else None


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """Return the active user whose password this is (recording the sign-in), else None."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(func.lower(users.c.username) == username.lower())).first()
    if row is None or row.password_hash is None:  # unknown, or signs in through the identity provider only
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(row.password_hash, password) or not row.active:
        return None
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == row.id).values(last_login_ms=now_ms()))
    return _user(row)


def set_active(engine: Engine, username: str, active: bool) -> bool:
    """Enable or disable a user (disabling ends every session it has); return False when there is no such user."""
    values = {"active": active}
    if not active:
        values["session_epoch"] = users.c.session_epoch + 1
    with engine.begin() as conn:
        done = conn.execute(update(users).where(func.lower(users.c.username) == username.lower()).values(**values))
    return done.rowcount > 0


def end_sessions(engine: Engine, user: int | str) -> str | None:
    """End every session of a user (an id or a username) at once, on every device: the next request of each
    is signed out. Return the user's name, or None when there is no such user."""
    who = users.c.id == user if isinstance(user, int) else func.lower(users.c.username) == user.lower()
    with engine.begin() as conn:
        return conn.execute(update(users).where(who).values(session_epoch=users.c.session_epoch + 1)
                            .returning(users.c.username)).scalar()


def list_users(engine: Engine) -> list[dict]:
    """Return every user without the password hash, by name."""
    cols = [users.c.id, users.c.username, users.c.role, users.c.department, users.c.district, users.c.active,
            users.c.created_ms, users.c.last_login_ms, users.c.sso_subject.is_not(None).label("sso")]
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(users.c.username))]


def district_centres(engine: Engine) -> list[str]:
    """Return the districts with at least one active user (the district centres in use), by code."""
    with engine.connect() as conn:
        return list(conn.execute(select(users.c.district).distinct()
                                 .where(users.c.active, users.c.district.is_not(None))
                                 .order_by(users.c.district)).scalars())


def _digest(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough (no salt or stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def create_kiosk_token(engine: Engine, label: str, district: str | None = None,
                       districts: Iterable[str] = ()) -> tuple[int, str]:
    """Create a kiosk token (a district's wall with ``district``, one of ``districts``); return its id and the
    token, which is never stored."""
    district = validate_district(district, districts) if district else None
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        new_id = conn.execute(insert(kiosk_tokens).values(
            token_hash=_digest(token), label=label, created_ms=now_ms(), district=district)).inserted_primary_key[0]
    return int(new_id), token


def revoke_kiosk_token(engine: Engine, token_id: int) -> bool:
    """Revoke a kiosk token; return False when there is no such live token."""
    with engine.begin() as conn:
        done = conn.execute(update(kiosk_tokens).where(kiosk_tokens.c.id == token_id,
                                                       kiosk_tokens.c.revoked_ms.is_(None))
                            .values(revoked_ms=now_ms()))
    return done.rowcount > 0


def kiosk_token_id(engine: Engine, token: str | None) -> int | None:
    """Return the id of ``token`` when it is a kiosk token that has not been revoked, else None."""
    found = kiosk_token(engine, token)
    return None if found is None else found[0]


def kiosk_token(engine: Engine, token: str | None) -> tuple[int, str | None] | None:
    """Return the id and district (None: the city's wall) of ``token`` when it is a kiosk token that has not been
    revoked, else None."""
    if not token or len(token) > 256:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(kiosk_tokens.c.id, kiosk_tokens.c.district)
                           .where(kiosk_tokens.c.token_hash == _digest(token),
                                  kiosk_tokens.c.revoked_ms.is_(None))).first()
    return None if row is None else (int(row.id), row.district)


def kiosk_token_valid(engine: Engine, token: str | None) -> bool:
    """Tell whether ``token`` is a kiosk token that has not been revoked."""
    return kiosk_token_id(engine, token) is not None


def user_epochs(engine: Engine, user_ids: set[int]) -> dict[int, int]:
    """Return the session epoch of each active user of ``user_ids`` (disabled and unknown ones are left out)."""
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.session_epoch)
                            .where(users.c.id.in_(user_ids), users.c.active)).all()
    return {int(i): int(e) for i, e in rows}


def live_kiosk_ids(engine: Engine, token_ids: set[int]) -> set[int]:
    """Return the ids of ``token_ids`` that are kiosk tokens not revoked."""
    with engine.connect() as conn:
        rows = conn.execute(select(kiosk_tokens.c.id).where(kiosk_tokens.c.id.in_(token_ids),
                                                            kiosk_tokens.c.revoked_ms.is_(None))).scalars()
        return {int(i) for i in rows}


def list_kiosk_tokens(engine: Engine) -> list[dict]:
    """Return every kiosk token's id, label, district and times (never the token)."""
    cols = [kiosk_tokens.c.id, kiosk_tokens.c.label, kiosk_tokens.c.district, kiosk_tokens.c.created_ms,
            kiosk_tokens.c.revoked_ms]
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(kiosk_tokens.c.id))]
