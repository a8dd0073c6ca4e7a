"""Who is calling the HTTP API: FastAPI dependencies over the one login system.

Interface (for the web phone, the portal and the REST API):

    from onenumber.api.auth import Principal, principal, require_admin, require_user, ApiError

    @app.get("/api/me")
    async def me(who: Principal = Depends(require_user)) -> ...:   # who.account is the number

    @app.get("/api/accounts")
    async def accounts(who: Principal = Depends(require_admin)) -> ...

- `Principal(role, account, via, csrf, subject, session_id)`: role 'admin' | 'user'; account is
  the user's account number (None for admins); via 'session' (cookie `onenumber_session`)
  or 'token' (`Authorization: Bearer <API token>`); csrf is the session's token (None for
  API tokens); subject is the admin username or the account number.
- `principal`: resolves the cookie or bearer token, else 401 `not_logged_in`. For a
  cookie session, a state-changing method (not GET/HEAD/OPTIONS) must carry the session's
  CSRF token in the `X-CSRF-Token` header (or a form field `csrf` for HTML forms), else 403
  `csrf`. Bearer requests need no CSRF token (no browser sends them by itself).
- `require_admin`: 403 `forbidden` for users. `require_user`: a user session or token (an
  admin is let through too; `who.account` is then None and the route decides).
- Every error is `ApiError(status, error, message)`, rendered as JSON
  `{"error": ..., "message": ...}` by the handler `create_app` installs.

The app keeps the login service on `app.state.logins` and the store on `app.state.store`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPBearer

from ..services.logins import LoginService
from ..store.logins import find_api_token

SESSION_COOKIE = "onenumber_session"
CSRF_COOKIE = "onenumber_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiError(Exception):
    """An HTTP error with a JSON body {"error": code, "message": text} (and optional field)."""

    def __init__(self, status: int, error: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.headers = headers or {}


NOT_LOGGED_IN = ("not_logged_in", "Log in first")


@dataclass(frozen=True)
class Principal:
    role: Literal["admin", "user"]
    account: str | None
    via: Literal["session", "token"]
    csrf: str | None
    subject: str
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def logins(request: Request) -> LoginService:
    service: LoginService = request.app.state.logins
    return service


# declared for the OpenAPI schema (the docs page's "Authorize" button); the checks are below
_bearer_scheme = HTTPBearer(auto_error=False, description="an API token: onenumber token create NAME")
_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="the session of POST /api/login")


async def principal(
    request: Request,
    _bearer_doc: object = Depends(_bearer_scheme),
    _cookie_doc: object = Depends(_cookie_scheme),
) -> Principal:
    """The caller, from the session cookie or a bearer API token (see module docstring)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    found = await _bearer(request)
    if found is None:
        found = await _session(request)
    request.state.principal = found
    return found


async def _bearer(request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, *NOT_LOGGED_IN, headers={"WWW-Authenticate": "Bearer"})
    token = await find_api_token(request.app.state.store, value.strip())
    if token is None:
        raise ApiError(401, "invalid_token", "The API token is unknown or revoked",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    subject = token.account or token.name
    return Principal(token.role, token.account, "token", None, subject)


async def _session(request: Request) -> Principal:
    session = await logins(request).resolve(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise ApiError(401, *NOT_LOGGED_IN)
    who = Principal(session.kind, session.subject if session.kind == "user" else None, "session",
                    session.csrf, session.subject, session.id)
    if request.method not in SAFE_METHODS:
        await check_csrf(request, who)
    return who


async def check_csrf(request: Request, who: Principal) -> None:
    """403 unless the request carries the session's CSRF token (header, or form field `csrf`)."""
    if who.via != "session" or who.csrf is None:
        return
    given = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if given is None and content_type.startswith("application/x-www-form-urlencoded"):
        # parsed here (no python-multipart needed); the body stays cached for the route
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=1000)
        values = fields.get("csrf")
        given = values[0] if values else None
    elif given is None and content_type.startswith("multipart/form-data"):
        try:
            value = (await request.form()).get("csrf")
        except (AssertionError, ValueError):  # no python-multipart, or a broken body
            value = None
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given.encode(), who.csrf.encode()):
        raise ApiError(403, "csrf", "Missing or wrong CSRF token; reload the page and try again")


async def require_admin(who: Principal = Depends(principal)) -> Principal:
    if not who.is_admin:
        raise ApiError(403, "forbidden", "This needs an admin login")
    return who


async def require_user(who: Principal = Depends(principal)) -> Principal:
    """A user (or an admin: routes under /api/me answer 404 when there is no account)."""
    return who


async def require_account(who: Principal = Depends(principal)) -> Principal:
    """A principal with an account of its own (a user); admins have none: 404 like any missing one."""
    if who.account is None:
        raise ApiError(404, "not_found", "An admin login has no account of its own; use /api/accounts/{number}")
    return who
