"""The portal at `/`: server-rendered pages (Jinja2) for admins and users, over the one login.

    mount_portal(app)          # create_app() does it; uses app.state.ctx (ApiContext)

Templates and static files: onenumber/web/portal/ (templates/, static/portal.css, portal.js).

- Logins are the API's (services/logins.py): `/login` starts the same cookie session as
  `POST /api/login` (same cookies, same throttling), `/logout` ends it. Every form that
  changes something carries the session's CSRF token in a `csrf` field (the rule of
  api/auth.py, which checks it); the page's JavaScript sends it as `X-CSRF-Token`.
- Admin pages (`/admin/...`) call store/admin.py exactly as the REST API and the CLI do (the
  same validation; an error is shown next to its field, named as in the API). Provisioning
  links, QR codes and CSV import/export are fetched by the page from the ops router
  (api/ops.py); the pages only hold the buttons.
- User pages (`/me...`) show the user's own account only: there is no account number in
  their paths, and an admin path answers a user 403 whatever it names, existing or not.
  Device secrets are never rendered anywhere in the portal.
- Live parts without a reload: a form marked `data-live` is posted by portal.js with
  `X-Portal-Live: 1`; the answer is the re-rendered fragment (devices, routing and the
  "who rings now" preview from routing/plan.py), swapped in place, focus kept.

It depends on the rest of api/ (the context, the login dependency, the schemas), store/ and
routing/ (through the ring plan); nothing of the SIP side.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.staticfiles import StaticFiles

from ..model import Binding
from ..routing.model import Device
from ..services.logins import Invalid, LoggedIn, Throttled
from ..store import AdminError, NotFoundError
from ..store import logins as login_db
from ..store.admin import UNCHANGED, _Unchanged
from ..store.history import read_history
from ..store.views import binding_view
from .app import ApiContext, api_message, client_address
from .auth import CSRF_COOKIE, SESSION_COOKIE, ApiError, Principal, principal
from .rest import plan_of
from .schemas import RingPlanOut, history_out

# the pages' files live with the other browser assets (onenumber/web/); the code is here, in the
# API layer, because it uses the login dependency and the API's context (tests/test_layers.py)
WEB_DIR = Path(__file__).resolve().parents[1] / "web" / "portal"
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"
MAX_DEVICES = 8
MAX_FORM_BYTES = 64 * 1024

# only this server: no CDN, no inline script; QR codes come as data: PNGs
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Referrer-Policy": "same-origin"}

KINDS = ("deskphone", "softphone", "mobile", "webphone")
RING_MODES = ("ordered", "exclusive")
FORWARDS = ("forward_unconditional", "forward_busy", "forward_no_answer")


class FormError(Exception):
    """Bad form input found before the admin layer: the field (API name) and the problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    return env


def _when(ts: float | str | None) -> str:
    if ts is None or ts == "":
        return ""
    if isinstance(ts, str):  # ISO from the API schemas
        return ts.replace("T", " ").replace("Z", " UTC")[:23]
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# ------------------------------------------------------------------------------------- helpers


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the body stays cached for the CSRF check that read it first)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormError("body", "the form is too large")
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)
    except ValueError:  # more fields than any of our forms has
        raise FormError("body", "the form has too many fields") from None
    return {k: v[-1] for k, v in fields.items()}


def int_field(form: dict[str, str], name: str, *, optional: bool = False) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        if optional:
            return None
        raise FormError(name, f"{name}: give a whole number")
    try:
        return int(text)
    except ValueError:
        raise FormError(name, f"{name}: {text!r} is not a whole number") from None


def _pin_change(form: dict[str, str]) -> str | _Unchanged | None:
    """The voicemail PIN field: a new PIN, or (ticked) back to the server-wide one; empty and
    unticked leaves the PIN as it is (it is never shown, so an empty field is no change)."""
    pin = form.get("voicemail_pin", "").strip()
    if pin:
        return pin
    return None if checkbox(form, "voicemail_pin_clear") else UNCHANGED


def checkbox(form: dict[str, str], name: str) -> bool:
    return form.get(name, "") in ("1", "on", "true", "yes")


def error_field(exc: Exception) -> str | None:
    field = getattr(exc, "field", None)
    if field is None:
        message = str(exc)
        head = message.split(":", 1)[0]
        if ":" in message and " " not in head:
            field = head
    return field


def safe_next(target: str | None, default: str) -> str:
    """Only a path of this site after login (no //host, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


def device_name(device: Device) -> str:
    return device.label or str(device.kind).capitalize()


class Portal:
    """The portal's routes over the API context."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.ctx: ApiContext = app.state.ctx
        self.env = _env()

    # ------------------------------------------------------------------ rendering
    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        who: Principal | None = getattr(request.state, "principal", None)
        html = self.env.get_template(template).render(
            who=who, csrf=who.csrf if who is not None else "", path=request.url.path, **values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def denied(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self.page(request, "error.html", status, title=title, message=message)

    async def who(self, request: Request) -> Principal | Response:
        """The logged-in principal, or the answer to give instead (login page, CSRF refusal)."""
        try:
            return await principal(request)
        except ApiError as exc:
            if exc.status == 401:
                if request.method in ("GET", "HEAD"):
                    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
                return self.denied(request, 401, "Logged out", "Your session has ended; log in again.")
            return self.denied(request, exc.status, "Not allowed", exc.message)

    async def admin(self, request: Request) -> Principal | Response:
        found = await self.who(request)
        if isinstance(found, Principal) and not found.is_admin:
            # one answer for every admin path, whatever account it names, existing or not
            return self.denied(request, 403, "Not allowed", "This page is for administrators.")
        return found

    async def user(self, request: Request) -> Principal | Response:
        found = await self.who(request)
        if isinstance(found, Principal) and found.account is None:
            return RedirectResponse("/admin/accounts", status_code=303)
        return found

    # ------------------------------------------------------------------ data
    def bindings_by_device(self, number: str) -> dict[str, list[dict[str, Any]]]:
        now = time.time()
        out: dict[str, list[dict[str, Any]]] = {}
        binding: Binding
        for binding in self.ctx.location.get(number):
            out.setdefault(binding.auth_username, []).append(binding_view(binding, now))
        return out

    async def plan_view(self, number: str, devices: list[Device]) -> dict[str, Any]:
        """The ring plan as the preview shows it: stages with device names, the devices left
        out with their reasons, and what happens after."""
        plan: RingPlanOut = await plan_of(self.ctx, number)
        names = {d.position: device_name(d) for d in devices}
        stages = [{"start": stage.start, "devices": [names.get(p, f"device {p}") for p in stage.positions]}
                  for stage in plan.stages]
        out = [{"name": names.get(row.position, f"device {row.position}"), "reason": row.reason}
               for row in plan.devices if not row.rings]
        after = [(label, action.text) for label, action in (
            ("If nobody answers", plan.on_no_answer), ("If busy", plan.on_busy),
            ("If no device can ring", plan.on_unavailable)) if action is not None]
        return {"immediate": plan.immediate.text if plan.immediate else None, "stages": stages, "out": out,
                "after": after, "ring_mode": plan.ring_mode, "no_answer_seconds": plan.no_answer_seconds}


def mount_portal(app: FastAPI) -> None:
    """Add the portal's pages and `/portal/static` to the app `create_app` built."""
    portal = Portal(app)
    add = app.router.add_api_route
    routes = PortalRoutes(portal)
    for path, endpoint, methods in routes.table():
        add(path, endpoint, methods=methods, include_in_schema=False, response_model=None)
    app.mount("/portal/static", StaticFiles(directory=STATIC), name="portal-static")

    async def bad_form(request: Request, exc: Exception) -> Response:  # a form no page of ours sends
        return portal.denied(request, 400, "Bad request", str(exc))

    app.add_exception_handler(FormError, bad_form)


Handler = Callable[..., Awaitable[Response]]


class PortalRoutes:
    def __init__(self, portal: Portal) -> None:
        self.p = portal
        self.ctx = portal.ctx

    def table(self) -> list[tuple[str, Handler, list[str]]]:
        return [
            ("/", self.home, ["GET"]),
            ("/login", self.login_page, ["GET"]),
            ("/login", self.login, ["POST"]),
            ("/logout", self.logout, ["POST"]),
            ("/admin", self.admin_home, ["GET"]),
            ("/admin/accounts", self.accounts, ["GET"]),
            ("/admin/accounts", self.create_account, ["POST"]),
            ("/admin/accounts/{number}", self.account, ["GET"]),
            ("/admin/accounts/{number}", self.update_account, ["POST"]),
            ("/admin/accounts/{number}/password", self.set_password, ["POST"]),
            ("/admin/accounts/{number}/delete", self.delete_account, ["POST"]),
            ("/admin/accounts/{number}/devices", self.add_device, ["POST"]),
            ("/admin/accounts/{number}/devices/{position}", self.update_device, ["POST"]),
            ("/admin/accounts/{number}/devices/{position}/delete", self.delete_device, ["POST"]),
            ("/admin/trunks", self.trunks, ["GET"]),
            ("/admin/trunks", self.add_trunk, ["POST"]),
            ("/admin/trunks/{name}/delete", self.delete_trunk, ["POST"]),
            ("/admin/csv", self.csv, ["GET"]),
            ("/admin/{rest:path}", self.admin_unknown, ["GET", "POST"]),
            ("/me", self.me, ["GET"]),
            ("/me/routing", self.me_routing, ["POST"]),
            ("/me/devices/{position}/move", self.me_move, ["POST"]),
            ("/me/devices/{position}/enabled", self.me_enabled, ["POST"]),
            ("/me/history", self.me_history, ["GET"]),
        ]

    # ------------------------------------------------------------------ login
    async def home(self, request: Request) -> Response:
        found = await self.p.who(request)
        if not isinstance(found, Principal):
            return found
        return RedirectResponse("/admin/accounts" if found.is_admin else "/me", status_code=303)

    async def login_page(self, request: Request, next: str = "") -> Response:
        found = await self.p.who(request)
        if isinstance(found, Principal):  # already logged in
            return RedirectResponse(safe_next(next, "/admin/accounts" if found.is_admin else "/me"), status_code=303)
        request.state.principal = None
        return self.p.page(request, "login.html", next=safe_next(next, ""), username="", error=None)

    async def login(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.url.netloc:  # a login posted by another site
            return self.p.denied(request, 403, "Not allowed", "This login form was sent from another site.")
        form = await read_form(request)
        username, password = form.get("username", "").strip(), form.get("password", "")
        target = safe_next(form.get("next"), "")
        if not username or not password:
            return self.p.page(request, "login.html", 400, next=target, username=username,
                               error="Give your number (or admin name) and your password.")
        result = await self.ctx.logins.login(username, password, client_address(request))
        if isinstance(result, Throttled):
            page = self.p.page(request, "login.html", 429, next=target, username=username,
                               error=f"Too many failed attempts. Try again in {result.retry_after} seconds.")
            page.headers["Retry-After"] = str(result.retry_after)
            return page
        if isinstance(result, Invalid) or not isinstance(result, LoggedIn):
            return self.p.page(request, "login.html", 401, next=target, username=username,
                               error="Wrong number or password.")
        session = result.session
        response = RedirectResponse(target or ("/admin/accounts" if session.kind == "admin" else "/me"),
                                    status_code=303)
        # the same cookies as POST /api/login (api/app.py), so the web phone and the API share them
        secure = self.ctx.secure_cookies or request.url.scheme == "https"
        max_age = int(self.ctx.logins.max_age_seconds)
        response.set_cookie(SESSION_COOKIE, result.token, max_age=max_age, path="/", httponly=True,
                            samesite="strict", secure=secure)
        response.set_cookie(CSRF_COOKIE, session.csrf, max_age=max_age, path="/", httponly=False,
                            samesite="strict", secure=secure)
        return response

    async def logout(self, request: Request) -> Response:
        found = await self.p.who(request)
        if isinstance(found, Principal):
            token = request.cookies.get(SESSION_COOKIE)
            if found.via == "session" and token:
                await self.ctx.logins.logout(token)
        elif found.status_code != 401:
            return found  # a wrong CSRF token: no logout by another site's form
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ admin: accounts
    async def admin_home(self, request: Request) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        return RedirectResponse("/admin/accounts", status_code=303)

    async def admin_unknown(self, request: Request, rest: str) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        return self.p.denied(request, 404, "Not found", "There is no such page.")

    async def accounts(self, request: Request, q: str = "") -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        return await self.accounts_page(request, q)

    async def accounts_page(self, request: Request, q: str = "", form: dict[str, str] | None = None,
                            errors: dict[str, str] | None = None, status: int = 200) -> Response:
        admin = self.ctx.store.admin
        accounts = await admin.list_accounts()
        needle = q.strip().lower()[:200]
        if needle:
            accounts = [a for a in accounts if needle in a.number or needle in a.display_name.lower()
                        or any(needle in d for d in a.dids)]
        rows = []
        for account in accounts:
            devices = self.ctx.directory.devices(account.number)
            live = {b.auth_username for b in self.ctx.location.get(account.number)}
            rows.append({"account": account, "devices": [
                {"name": device_name(d), "kind": str(d.kind), "registered": d.auth_username in live,
                 "enabled": d.enabled} for d in devices],
                "registered": sum(1 for d in devices if d.auth_username in live)})
        return self.p.page(request, "admin_accounts.html", status, rows=rows, q=q, form=form or {},
                           errors=errors or {}, notice=request.query_params.get("notice"))

    async def create_account(self, request: Request) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        form = await read_form(request)
        number = form.get("number", "").strip()
        try:
            dids = [d.strip() for d in form.get("dids", "").replace(";", ",").split(",") if d.strip()]
            password = form.get("password", "")
            if password:
                login_db.validate_password(password)
            await self.ctx.store.admin.add_account(number, form.get("name", ""), dids)
            if password:
                await login_db.set_account_password(self.ctx.store, number, password)
        except (AdminError, FormError) as exc:
            return await self.accounts_page(request, form=form, errors=_errors(exc, "number"), status=exc_status(exc))
        await self.ctx.changed()
        return RedirectResponse(f"/admin/accounts/{quote(number)}?notice=created", status_code=303)

    async def account(self, request: Request, number: str) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        return await self.account_page(request, number)

    async def account_page(self, request: Request, number: str, form: dict[str, str] | None = None,
                           errors: dict[str, str] | None = None, status: int = 200, section: str = "") -> Response:
        admin = self.ctx.store.admin
        try:
            account = await admin.get_account(number)
            devices = await admin.list_devices(number)
        except NotFoundError:
            return self.p.denied(request, 404, "Not found", f"There is no account {number}.")
        bindings = self.p.bindings_by_device(number)
        plan = await self.p.plan_view(number, devices)
        history = [history_out(r, {d.position: d.label for d in devices})
                   for r in await read_history(self.ctx.store, number, limit=20)]
        return self.p.page(request, "admin_account.html", status, account=account, devices=devices,
                           bindings=bindings, plan=plan, kinds=KINDS, ring_modes=RING_MODES, max_devices=MAX_DEVICES,
                           form=form or {}, errors=errors or {}, section=section, history=history,
                           notice=request.query_params.get("notice"), now=time.time(), device_name=device_name)

    async def _admin_write(self, request: Request, number: str, section: str,
                           action: Callable[[dict[str, str]], Awaitable[Any]], notice: str,
                           anchor: str = "") -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        form = await read_form(request)
        try:
            await action(form)
        except NotFoundError as exc:
            try:
                await self.ctx.store.admin.get_account(number)
            except NotFoundError:  # no such account: the page itself is not found
                return self.p.denied(request, 404, "Not found", f"There is no account {number}.")
            return await self.account_page(request, number, form=form, errors=_errors(exc, section), status=404,
                                           section=section)
        except (AdminError, FormError) as exc:
            return await self.account_page(request, number, form=form, errors=_errors(exc, section),
                                      status=exc_status(exc), section=section)
        await self.ctx.changed()
        return RedirectResponse(f"/admin/accounts/{quote(number)}?notice={notice}{anchor}", status_code=303)

    async def update_account(self, request: Request, number: str) -> Response:
        async def action(form: dict[str, str]) -> None:
            selected = form.get("selected_device", "")
            await self.ctx.store.admin.update_account(
                number, name=form.get("name"), ring_mode=form.get("ring_mode") or None,
                stage_seconds=int_field(form, "stage_seconds", optional=True),
                no_answer_seconds=int_field(form, "no_answer_seconds", optional=True),
                forward_unconditional=form.get("forward_unconditional", "").strip() or None,
                forward_busy=form.get("forward_busy", "").strip() or None,
                forward_no_answer=form.get("forward_no_answer", "").strip() or None,
                dnd=checkbox(form, "dnd"),
                selected_device=int_field(form, "selected_device", optional=True) if selected else None)

        return await self._admin_write(request, number, "account", action, "saved")

    async def set_password(self, request: Request, number: str) -> Response:
        async def action(form: dict[str, str]) -> None:
            await self.ctx.store.admin.get_account(number)
            password = form.get("password", "")
            if not password:
                raise FormError("password", "password: give the new login password (at least 8 characters)")
            try:
                login_db.validate_password(password)
            except AdminError as exc:
                raise FormError("password", str(exc)) from None
            await login_db.set_account_password(self.ctx.store, number, password)
            await self.ctx.logins.end_sessions_of("user", number)

        return await self._admin_write(request, number, "password", action, "password-set")

    async def delete_account(self, request: Request, number: str) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        try:
            await self.ctx.store.admin.remove_account(number)
        except NotFoundError:
            return self.p.denied(request, 404, "Not found", f"There is no account {number}.")
        await self.ctx.changed()
        await self.ctx.logins.end_sessions_of("user", number)
        return RedirectResponse(f"/admin/accounts?notice=removed-{quote(number)}", status_code=303)

    async def add_device(self, request: Request, number: str) -> Response:
        async def action(form: dict[str, str]) -> None:
            await self.ctx.store.admin.add_device(
                number, form.get("kind", ""), ring_order=int_field(form, "order") or 0,
                label=form.get("label", "").strip(), internet=checkbox(form, "internet"),
                call_waiting=checkbox(form, "call_waiting"))

        return await self._admin_write(request, number, "add-device", action, "device-added", "#devices")

    async def update_device(self, request: Request, number: str, position: int) -> Response:
        async def action(form: dict[str, str]) -> None:
            await self.ctx.store.admin.update_device(
                number, position, ring_order=int_field(form, "order"), enabled=checkbox(form, "enabled"),
                label=form.get("label", "").strip(), internet=checkbox(form, "internet"),
                call_waiting=checkbox(form, "call_waiting"))

        return await self._admin_write(request, number, f"device-{position}", action, "device-saved", "#devices")

    async def delete_device(self, request: Request, number: str, position: int) -> Response:
        async def action(_form: dict[str, str]) -> None:
            device = await self.ctx.store.admin.remove_device(number, position)
            self.ctx.location.drop_device(number, device.auth_username, "device-removed")

        return await self._admin_write(request, number, f"device-{position}", action, "device-removed", "#devices")

    # ------------------------------------------------------------------ admin: trunks, CSV
    async def trunks(self, request: Request) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        return await self.trunks_page(request)

    async def trunks_page(self, request: Request, form: dict[str, str] | None = None,
                          errors: dict[str, str] | None = None, status: int = 200) -> Response:
        trunks = await self.ctx.store.admin.list_trunks()
        return self.p.page(request, "admin_trunks.html", status, trunks=trunks, form=form or {"port": "5060"},
                           errors=errors or {}, notice=request.query_params.get("notice"))

    async def add_trunk(self, request: Request) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        form = await read_form(request)
        try:
            await self.ctx.store.admin.add_trunk(
                form.get("name", "").strip(), form.get("host", "").strip(), port=int_field(form, "port") or 0,
                transport=form.get("transport", "udp"), prefix=form.get("prefix", "").strip())
        except (AdminError, FormError) as exc:
            return await self.trunks_page(request, form=form, errors=_errors(exc, "name"), status=exc_status(exc))
        await self.ctx.changed()
        return RedirectResponse("/admin/trunks?notice=added", status_code=303)

    async def delete_trunk(self, request: Request, name: str) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        try:
            await self.ctx.store.admin.remove_trunk(name)
        except NotFoundError:
            return self.p.denied(request, 404, "Not found", f"There is no trunk {name}.")
        await self.ctx.changed()
        return RedirectResponse("/admin/trunks?notice=removed", status_code=303)

    async def csv(self, request: Request) -> Response:
        found = await self.p.admin(request)
        if not isinstance(found, Principal):
            return found
        return self.p.page(request, "admin_csv.html")

    # ------------------------------------------------------------------ user
    async def _me_values(self, number: str) -> dict[str, Any]:
        admin = self.ctx.store.admin
        account = await admin.get_account(number)
        devices = await admin.list_devices(number)
        live = {b.auth_username for b in self.ctx.location.get(number)}
        ordered = sorted(devices, key=lambda d: (d.ring_order == 0, d.ring_order, d.position))
        return {"account": account, "devices": ordered, "live": live, "ring_modes": RING_MODES,
                "plan": await self.p.plan_view(number, devices), "device_name": device_name}

    async def me(self, request: Request) -> Response:
        found = await self.p.user(request)
        if not isinstance(found, Principal):
            return found
        assert found.account is not None
        values = await self._me_values(found.account)
        return self.p.page(request, "me.html", **values, form={}, errors={}, section="", message="")

    async def _me_write(self, request: Request, action: Callable[[str, dict[str, str]], Awaitable[str]],
                        section: str) -> Response:
        found = await self.p.user(request)
        if not isinstance(found, Principal):
            return found
        number = found.account
        assert number is not None
        form = await read_form(request)
        live = request.headers.get("x-portal-live") == "1"
        try:
            message = await action(number, form)
        except (AdminError, FormError) as exc:
            values = await self._me_values(number)
            errors = _errors(exc, section)
            return self.p.page(request, "me_live.html" if live else "me.html", exc_status(exc), **values,
                               form=form, errors=errors, section=section,
                               message="Not saved: " + next(iter(errors.values())))
        await self.ctx.changed()
        if not live:
            return RedirectResponse("/me", status_code=303)
        values = await self._me_values(number)
        return self.p.page(request, "me_live.html", **values, form={}, errors={}, section="", message=message)

    async def me_routing(self, request: Request) -> Response:
        async def action(number: str, form: dict[str, str]) -> str:
            selected = form.get("selected_device", "")
            await self.ctx.store.admin.update_account(
                number, ring_mode=form.get("ring_mode") or None,
                forward_unconditional=form.get("forward_unconditional", "").strip() or None,
                forward_busy=form.get("forward_busy", "").strip() or None,
                forward_no_answer=form.get("forward_no_answer", "").strip() or None,
                dnd=checkbox(form, "dnd"),
                selected_device=int_field(form, "selected_device", optional=True) if selected else None,
                voicemail_pin=_pin_change(form))
            return "Saved. The preview shows who rings now."

        return await self._me_write(request, action, "routing")

    async def me_move(self, request: Request, position: int) -> Response:
        async def action(number: str, form: dict[str, str]) -> str:
            direction = form.get("direction", "")
            if direction not in ("up", "down"):
                raise FormError("direction", "direction: use up or down")
            devices = await self.ctx.store.admin.list_devices(number)
            ordered = [d for d in sorted(devices, key=lambda d: (d.ring_order, d.position)) if d.ring_order > 0]
            positions = [d.position for d in ordered]
            if position not in positions:
                raise FormError("direction", "this device never rings (order 0); it cannot be moved")
            i = positions.index(position)
            j = i - 1 if direction == "up" else i + 1
            if 0 <= j < len(positions):
                positions[i], positions[j] = positions[j], positions[i]
            never = [d.position for d in devices if d.ring_order == 0]
            await self.ctx.store.admin.reorder_devices(number, positions + never)
            name = next(device_name(d) for d in devices if d.position == position)
            return f"{name} moved {direction}. The preview shows the new order."

        return await self._me_write(request, action, f"device-{position}")

    async def me_enabled(self, request: Request, position: int) -> Response:
        async def action(number: str, form: dict[str, str]) -> str:
            enabled = checkbox(form, "enabled")
            device = await self.ctx.store.admin.update_device(number, position, enabled=enabled)
            return f"{device_name(device)} {'enabled' if enabled else 'disabled'}."

        return await self._me_write(request, action, f"device-{position}")

    async def me_history(self, request: Request, missed: bool = False) -> Response:
        found = await self.p.user(request)
        if not isinstance(found, Principal):
            return found
        assert found.account is not None
        devices = await self.ctx.store.admin.list_devices(found.account)
        rows = await read_history(self.ctx.store, found.account, limit=200, missed_only=missed)
        history = [history_out(r, {d.position: d.label for d in devices}) for r in rows]
        return self.p.page(request, "me_history.html", history=history, missed=missed)


def exc_status(exc: Exception) -> int:
    return int(getattr(exc, "status", 400)) if isinstance(exc, AdminError) else 400


def _errors(exc: Exception, section: str) -> dict[str, str]:
    """{field: message} for the template; a message without a field goes to the section."""
    message = api_message(str(exc))
    return {error_field(exc) or section: message}
