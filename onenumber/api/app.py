"""The HTTP side (FastAPI), served by uvicorn on the same event loop as SIP.

`create_app` builds the app: `/api/health` (public), the login system (`/api/login`,
`/api/logout`, see api/auth.py and services/logins.py), what a user reaches of their own
account (`/api/me...`, api/me.py), the admin REST API (api/rest.py) and the portal's pages
(`/`, `/login`, `/admin/...`, `/me...`: api/portal.py). Every API error is JSON
`{"error": code, "message": text[, "field": name]}`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import ServerConfig
from ..services.directory import Directory
from ..services.location import Location
from ..services.logins import Invalid, LoggedIn, LoginService, Throttled
from ..services.webcreds import SessionCredentials
from ..store import AdminError, Store
from ..store.logins import WebSession
from ..store.logins import get_session as load_session
from .auth import CSRF_COOKIE, SESSION_COOKIE, ApiError, Principal, principal, require_account, require_admin
from .ops import build_ops_router
from .presence_voicemail import PresenceVoicemail
from .presence_voicemail import build_router as presence_voicemail_router
from .provision import SipEndpoint, build_provision_router
from .schemas import ErrorBody, LoginRequest, LoginResponse
from .webphone import WebphoneAccess


@dataclass
class ApiContext:
    """What the routes use; kept on `app.state.ctx` (and the parts on app.state)."""

    store: Store
    directory: Directory
    location: Location
    logins: LoginService
    webphone: WebphoneAccess
    secure_cookies: bool

    async def changed(self) -> None:
        """After a configuration write: reload now, so the very next call sees it."""
        await self.directory.reload(self.store)


async def current_account(who: Principal = Depends(require_account)) -> str:
    """The logged-in user's account number (api/presence_voicemail.py's `current_account`)."""
    assert who.account is not None  # require_account
    return who.account


def create_app(
    *,
    store: Store,
    directory: Directory,
    location: Location,
    logins: LoginService | None = None,
    credentials: SessionCredentials | None = None,
    realm: str = "onenumber",
    pump: Callable[[], None] | None = None,
    secure_cookies: bool = False,
    sip: SipEndpoint | None = None,
    presence_voicemail: PresenceVoicemail | None = None,
) -> FastAPI:
    app = FastAPI(title="OneNumber", version="0.1.0", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None)
    logins = logins or LoginService(store)
    # without the gate's credentials (tests), a random key: nothing outside this app trusts them
    webphone = WebphoneAccess(store, directory, location, credentials or SessionCredentials(os.urandom(32)),
                              realm=realm, pump=pump)
    logins.on_session_end.append(webphone.on_session_end)
    logins.on_sweep.append(webphone.reconcile)
    ctx = ApiContext(store, directory, location, logins, webphone, secure_cookies)
    app.state.ctx = ctx
    app.state.store = store
    app.state.logins = logins
    # what the routers of other modules read (api/ops.py, api/provision.py)
    app.state.directory = directory
    app.state.sip = sip or SipEndpoint(server="127.0.0.1")
    install_error_handlers(app)
    app.include_router(build_provision_router())
    # CSV, rotation, provisioning links: admins only; their errors documented like every route's
    app.include_router(build_ops_router(require_admin), responses=ERROR_RESPONSES)
    app.state.presence_voicemail = presence_voicemail
    # presence stream and voicemail of the logged-in user's own account (the web phone, the portal)
    app.include_router(presence_voicemail_router(current_account), responses=ERROR_RESPONSES)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "bindings": location.count(), "revision": directory.revision}

    add_login_routes(app, ctx)
    from .me import add_me_routes

    add_me_routes(app, ctx)
    from .rest import build_router

    app.include_router(build_router(ctx))
    add_docs(app)
    from .portal import mount_portal

    mount_portal(app)  # the portal's pages at / (api/portal.py)
    return app


# ---------------------------------------------------------------------------------------- errors


def _body(error: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "message": message}
    if field is not None:
        body["field"] = field
    return body


ADMIN_ERROR_CODES = {400: "invalid", 404: "not_found", 409: "conflict"}
# documented on every route, so clients (and schemathesis) know the error shape
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((400, "bad input"), (401, "not logged in"), (403, "not allowed, or CSRF token missing"),
                         (404, "not found"), (409, "conflict with existing data"), (422, "validation failed"))
}


def api_message(message: str) -> str:
    """An admin-layer message in the API's terms: the CLI hints ("give one with --name",
    "see 'onenumber device list'") are left out."""
    parts = [p for p in message.split("; ") if "--" not in p and "onenumber " not in p]
    return "; ".join(parts) or message.split("; ")[0]


def _detail(error: Any) -> tuple[str, str]:
    """(field, problem) of one pydantic error, the field as the API names it (`dids.0`)."""
    if error.get("type") == "json_invalid":
        return "body", "not valid JSON"
    loc = [str(p) for p in error.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    return ".".join(loc) or "body", str(error.get("msg", "invalid"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.error, exc.message, exc.field), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(AdminError)
    async def admin_error(_request: Request, exc: AdminError) -> JSONResponse:
        message = api_message(str(exc))
        field = getattr(exc, "field", None)
        if field is None and ":" in message and " " not in message.split(":", 1)[0]:
            field = message.split(":", 1)[0]  # store/logins.py messages start with the field
        return JSONResponse(_body(ADMIN_ERROR_CODES.get(exc.status, "invalid"), message, field),
                            status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [_detail(e) for e in exc.errors()] or [("body", "invalid request")]
        field, text = details[0]
        body = _body("validation", f"{field}: {text}", field)
        body["details"] = [{"field": f, "message": m} for f, m in details]
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "not_logged_in", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error")
        body = _body(code, str(exc.detail))
        body["detail"] = str(exc.detail)  # the shape api/ops.py and api/provision.py document
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


# ---------------------------------------------------------------------------------------- login


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def add_login_routes(app: FastAPI, ctx: ApiContext) -> None:
    @app.post("/api/login", response_model=LoginResponse, tags=["login"],
              responses={**ERROR_RESPONSES, 429: {"model": ErrorBody, "description": "throttled (see Retry-After)"}})
    async def login(body: LoginRequest, request: Request, response: Response) -> LoginResponse:
        """Log in as an admin (username) or a user (account number); sets the session cookie."""
        result = await ctx.logins.login(body.username, body.password, client_address(request))
        if isinstance(result, Throttled):
            raise ApiError(429, "throttled", f"Too many failed attempts; try again in {result.retry_after} s",
                           headers={"Retry-After": str(result.retry_after)})
        if isinstance(result, Invalid) or not isinstance(result, LoggedIn):
            raise ApiError(401, "invalid_login", "Wrong number or password")
        session = result.session
        secure = ctx.secure_cookies or request.url.scheme == "https"
        max_age = int(ctx.logins.max_age_seconds)  # the server ends it sooner when idle
        response.set_cookie(SESSION_COOKIE, result.token, max_age=max_age, path="/",
                            httponly=True, samesite="strict", secure=secure)
        # readable by the page's JavaScript, which sends it back as X-CSRF-Token
        response.set_cookie(CSRF_COOKIE, session.csrf, max_age=max_age, path="/",
                            httponly=False, samesite="strict", secure=secure)
        name = None
        if session.kind == "user":
            account = ctx.directory.accounts.get(session.subject)
            if account is None:
                account = await ctx.store.admin.get_account(session.subject)
            name = account.display_name
        else:
            name = session.subject
        return LoginResponse(kind=session.kind, account=session.subject if session.kind == "user" else None,
                             name=name, csrf=session.csrf)

    @app.post("/api/logout", status_code=204, tags=["login"], response_class=Response, responses=ERROR_RESPONSES)
    async def logout(request: Request, who: Principal = Depends(principal)) -> Response:
        """End the cookie session (its web phone credential stops working, its binding goes)."""
        response = Response(status_code=204)
        token = request.cookies.get(SESSION_COOKIE)
        if who.via == "session" and token:
            await ctx.logins.logout(token)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response


async def session_of(ctx: ApiContext, who: Principal) -> WebSession | None:
    if who.session_id is None:
        return None
    return await load_session(ctx.store, who.session_id)


# ---------------------------------------------------------------------------------------- docs


def add_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs from the swagger-ui-bundle package: no internet needed."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the docs page says what is missing; the schema is still served
        swagger_ui_path = None

    if swagger_ui_path is not None:
        app.mount("/api/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/api/docs", include_in_schema=False, response_model=None)
    async def docs() -> HTMLResponse | PlainTextResponse:
        if swagger_ui_path is None:
            return PlainTextResponse("the API docs need the swagger-ui-bundle package; the schema is at "
                                     "/api/openapi.json", status_code=503)
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="OneNumber API",
                                   swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/api/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/api/docs/static/favicon-32x32.png")


@dataclass
class HttpServer:
    server: Any
    task: asyncio.Task

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=3)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()


async def start_http(app: FastAPI, config: ServerConfig, *, ws_ping_seconds: float = 20.0) -> HttpServer:
    """Serve `app` on the HTTP port (HTTPS, and so WSS for the web phone, when a certificate is
    configured). WebSocket pings go out every half of `ws_ping_seconds`, each given the other
    half to be answered: a silent socket is closed within `ws_ping_seconds`."""
    import uvicorn

    tls: dict[str, Any] = {}
    if config.tls_cert and config.tls_key:
        tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
    ucfg = uvicorn.Config(
        app, host=config.bind, port=config.http_port, log_level="warning", lifespan="off", loop="none",
        ws_ping_interval=ws_ping_seconds / 2, ws_ping_timeout=ws_ping_seconds / 2, **tls,
    )
    server = uvicorn.Server(ucfg)
    # uvicorn's own signal handlers would take Ctrl-C from ours
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # not in uvicorn's stubs
    task = asyncio.get_running_loop().create_task(server.serve())
    return HttpServer(server, task)
