"""Logins in the database: passwords, admins, browser sessions and API tokens.

- Passwords are scrypt hashes with a per-password salt (`admin.hash_password`); checking an
  unknown user costs the same as a known one (`check_password(password, None)` verifies
  against a dummy hash), so neither timing nor answer tells whether a user exists.
- A browser session is stored under the sha256 of its cookie token (a copy of the table
  gives no live cookie); API tokens likewise (the token itself is shown once).
- Session writes do not bump the configuration revision (the server does not reload for a
  login). Everything here is plain data; the policy (throttling, expiry, hooks) is in
  `services/logins.py`.
Depends on SQLAlchemy, the tables and the admin layer's errors and hashing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, insert, select, update

from onenumber.store import tables as t
from onenumber.store.admin import AdminError, ConflictError, NotFoundError, hash_password, verify_password

if TYPE_CHECKING:
    from onenumber.store.repository import Store

Kind = Literal["admin", "user"]
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # scrypt over megabytes of "password" is a cheap way to burn our CPU
ADMIN_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")  # never all digits: those are accounts
TOKEN_PREFIX = "on_"
# Checked when the user does not exist, so an unknown name costs one scrypt like a known one.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str, stored: str | None) -> bool:
    """Constant work whether or not `stored` exists (a dummy hash stands in); slow (scrypt)."""
    if len(password) > MAX_PASSWORD:
        verify_password("", DUMMY_HASH)
        return False
    ok = verify_password(password, stored or DUMMY_HASH)
    return ok and stored is not None


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"password: too short; use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AdminError(f"password: too long; use at most {MAX_PASSWORD} characters")
    return password


def validate_admin_name(username: str) -> str:
    username = username.strip()
    if not ADMIN_NAME_RE.match(username):
        raise AdminError(
            f"username: {username!r} is not valid; start with a letter, then up to 63 letters, digits, "
            "'.', '_' or '-' (all-digit names are account numbers)"
        )
    return username


@dataclass(frozen=True)
class WebSession:
    id: str  # sha256 of the cookie token
    kind: Kind
    subject: str  # admin username or account number
    csrf: str
    created_at: float
    expires_at: float
    last_seen_at: float


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    role: Kind
    account: str | None
    created_at: float
    revoked_at: float | None


def _session(row: Any) -> WebSession:
    return WebSession(row.id, row.kind, row.subject, row.csrf, row.created_at, row.expires_at, row.last_seen_at)


def _token(row: Any) -> ApiToken:
    return ApiToken(row.id, row.name, row.role, row.account, row.created_at, row.revoked_at)


# --- admins and passwords ---------------------------------------------------------------------------


async def create_admin(store: Store, username: str, password: str) -> str:
    """Create an admin; returns the (normalised) username. ConflictError when it exists."""
    username = validate_admin_name(username)
    hashed = hash_password(validate_password(password))
    async with store.write(config=False) as conn:
        if await conn.scalar(select(t.admins.c.username).where(t.admins.c.username == username)) is not None:
            raise ConflictError(f"username: admin {username} already exists")
        await conn.execute(insert(t.admins).values(username=username, password_hash=hashed,
                                                   created_at=datetime.now(UTC)))
    return username


async def list_admins(store: Store) -> list[str]:
    async with store.read() as conn:
        return list((await conn.scalars(select(t.admins.c.username).order_by(t.admins.c.username))).all())


async def set_admin_password(store: Store, username: str, password: str) -> None:
    hashed = hash_password(validate_password(password))
    async with store.write(config=False) as conn:
        result = await conn.execute(update(t.admins).where(t.admins.c.username == username)
                                    .values(password_hash=hashed))
        if not result.rowcount:
            raise NotFoundError(f"username: no admin {username}")


async def set_account_password(store: Store, number: str, password: str | None) -> None:
    """Set (None: remove) an account's login password (web phone and portal)."""
    hashed = hash_password(validate_password(password)) if password is not None else None
    async with store.write(config=False) as conn:
        result = await conn.execute(update(t.accounts).where(t.accounts.c.number == number)
                                    .values(password_hash=hashed))
        if not result.rowcount:
            raise NotFoundError(f"no account {number}; see 'onenumber account list'")


async def password_hash(store: Store, kind: Kind, subject: str) -> str | None:
    """The stored hash of an admin (kind 'admin') or an account (kind 'user'), or None."""
    async with store.read() as conn:
        if kind == "admin":
            return await conn.scalar(select(t.admins.c.password_hash).where(t.admins.c.username == subject))
        return await conn.scalar(select(t.accounts.c.password_hash).where(t.accounts.c.number == subject))


async def is_admin(store: Store, username: str) -> bool:
    async with store.read() as conn:
        return await conn.scalar(select(t.admins.c.username).where(t.admins.c.username == username)) is not None


# --- sessions ---------------------------------------------------------------------------------------


async def create_session(store: Store, kind: Kind, subject: str, *, now: float, ttl: float) -> tuple[str, WebSession]:
    """A new session; returns (cookie token, session). The token is not stored."""
    token = secrets.token_urlsafe(32)
    session = WebSession(sha256(token), kind, subject, secrets.token_urlsafe(24), now, now + ttl, now)
    async with store.write(config=False) as conn:
        await conn.execute(insert(t.web_sessions).values(
            id=session.id, kind=kind, subject=subject, csrf=session.csrf, created_at=now,
            expires_at=session.expires_at, last_seen_at=now,
        ))
    return token, session


async def get_session(store: Store, session_id: str) -> WebSession | None:
    async with store.read() as conn:
        row = (await conn.execute(select(t.web_sessions).where(t.web_sessions.c.id == session_id))).first()
    return None if row is None else _session(row)


async def touch_session(store: Store, session_id: str, *, now: float, expires_at: float) -> None:
    async with store.write(config=False) as conn:
        await conn.execute(update(t.web_sessions).where(t.web_sessions.c.id == session_id)
                           .values(last_seen_at=now, expires_at=expires_at))


async def delete_session(store: Store, session_id: str) -> WebSession | None:
    """Remove one session; returns it, or None when it was already gone."""
    async with store.write(config=False) as conn:
        row = (await conn.execute(select(t.web_sessions).where(t.web_sessions.c.id == session_id))).first()
        if row is None:
            return None
        await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.id == session_id))
    return _session(row)


async def delete_expired_sessions(store: Store, now: float) -> list[WebSession]:
    async with store.read() as conn:
        rows = (await conn.execute(select(t.web_sessions).where(t.web_sessions.c.expires_at <= now))).all()
    if not rows:  # the common case writes nothing (no SQLite write lock taken)
        return []
    ids = [r.id for r in rows]
    async with store.write(config=False) as conn:
        await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.id.in_(ids)))
    return [_session(r) for r in rows]


async def delete_sessions_of(store: Store, kind: Kind, subject: str, *, keep: str | None = None,
                             announce: bool = False) -> list[WebSession]:
    """End every session of one admin or account (e.g. after its password changed), but `keep`.
    `announce` (the CLI, outside the server) bumps the configuration revision in the same
    transaction: the servers reload and sweep at once (services/logins.py `sweep_soon`), so the
    web phone credentials of those sessions are revoked within a second, not at the next sweep."""
    async with store.write(config=announce) as conn:
        where = [t.web_sessions.c.kind == kind, t.web_sessions.c.subject == subject]
        if keep is not None:
            where.append(t.web_sessions.c.id != keep)
        rows = (await conn.execute(select(t.web_sessions).where(*where))).all()
        await conn.execute(delete(t.web_sessions).where(*where))
    return [_session(r) for r in rows]


async def live_sessions(store: Store, now: float) -> list[WebSession]:
    async with store.read() as conn:
        rows = (await conn.execute(select(t.web_sessions).where(t.web_sessions.c.expires_at > now))).all()
    return [_session(r) for r in rows]


# --- API tokens -------------------------------------------------------------------------------------


async def create_api_token(
    store: Store, name: str, role: Kind, account: str | None = None, *, now: float
) -> tuple[str, ApiToken]:
    """A new token; returns (token, record). Only the sha256 of the token is stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AdminError("name: give a name of 1 to 100 characters (what the token is for)")
    if role not in ("admin", "user"):
        raise AdminError(f"role: {role!r} is not known; use admin or user")
    if role == "user" and not account:
        raise AdminError("account: a user token needs the account it acts for")
    if role == "admin":
        account = None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with store.write(config=False) as conn:
        if account is not None and await conn.scalar(
            select(t.accounts.c.number).where(t.accounts.c.number == account)
        ) is None:
            raise NotFoundError(f"account: no account {account}")
        result = await conn.execute(insert(t.api_tokens).values(
            name=name, token_hash=sha256(token), role=role, account=account, created_at=now,
        ))
        token_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    return token, ApiToken(token_id, name, role, account, now, None)


async def list_api_tokens(store: Store, *, account: str | None = None) -> list[ApiToken]:
    query = select(t.api_tokens).order_by(t.api_tokens.c.id)
    if account is not None:
        query = query.where(t.api_tokens.c.account == account)
    async with store.read() as conn:
        return [_token(r) for r in (await conn.execute(query)).all()]


async def revoke_api_token(store: Store, token_id: int, *, now: float, account: str | None = None) -> ApiToken:
    """Revoke a token (kept, marked revoked). With `account`, only that account's tokens."""
    where = [t.api_tokens.c.id == token_id]
    if account is not None:
        where.append(t.api_tokens.c.account == account)
    async with store.write(config=False) as conn:
        row = (await conn.execute(select(t.api_tokens).where(*where))).first()
        if row is None:
            raise NotFoundError(f"id: no API token {token_id}")
        if row.revoked_at is None:
            await conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == token_id).values(revoked_at=now))
            return ApiToken(row.id, row.name, row.role, row.account, row.created_at, now)
    return _token(row)


async def find_api_token(store: Store, token: str) -> ApiToken | None:
    """The live (not revoked) token record for a presented token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    async with store.read() as conn:
        row = (await conn.execute(select(t.api_tokens).where(t.api_tokens.c.token_hash == sha256(token)))).first()
    if row is None or row.revoked_at is not None:
        return None
    return _token(row)
