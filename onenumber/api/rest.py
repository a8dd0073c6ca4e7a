"""The admin REST API: accounts, devices, bindings, ring plans, history, trunks, settings,
API tokens. Admins only (`require_admin`): a user gets the same 403 for any account, whether
it exists or not.

Every write is one operation of store/admin.py (the CLI's validation, one transaction), then
an immediate reload of the server's directory so the next call sees it.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from ..routing.model import CallState
from ..routing.plan import plan_call
from ..settings import SETTING_KEYS
from ..store import AdminError, logins
from ..store.history import read_history
from ..store.repository import load_devices
from ..store.views import settings_view
from .auth import require_admin
from .schemas import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    BindingOut,
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DeviceUpdate,
    HistoryOut,
    PasswordSet,
    RingPlanOut,
    SettingValue,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TrunkCreate,
    TrunkOut,
    account_out,
    binding_out,
    device_out,
    history_out,
    ring_plan_out,
    token_out,
    trunk_out,
)


def account_changes(body: AccountUpdate | Any, current_dids: tuple[str, ...]) -> dict[str, Any]:
    """The admin layer's keyword arguments for the fields given in a PATCH body."""
    given = body.model_fields_set
    out: dict[str, Any] = {}
    simple = {"name": "name", "ring_mode": "ring_mode", "stage_seconds": "stage_seconds",
              "no_answer_seconds": "no_answer_seconds", "decline": "decline", "dnd": "dnd"}
    for field, arg in simple.items():
        if field in given and getattr(body, field, None) is not None:
            out[arg] = getattr(body, field)
    for field in ("forward_unconditional", "forward_busy", "forward_no_answer", "selected_device", "voicemail_pin"):
        if field in given:
            out[field] = getattr(body, field)
    if "cli" in given:
        out["custom_cli"] = body.cli
    if "dids" in given and body.dids is not None:
        wanted = [d.strip().replace(" ", "") for d in body.dids]
        out["add_dids"] = [d for d in wanted if d not in current_dids]
        out["remove_dids"] = [d for d in current_dids if d not in wanted]
    return out


def build_router(ctx: Any) -> APIRouter:
    from .app import ERROR_RESPONSES, ApiContext

    c: ApiContext = ctx
    router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)], responses=ERROR_RESPONSES)

    async def registered(number: str) -> set[str]:
        return {b.auth_username for b in c.location.get(number)}

    # ------------------------------------------------------------------ accounts
    @router.get("/accounts", response_model=list[AccountOut], tags=["accounts"])
    async def list_accounts(
        q: str | None = Query(None, max_length=200, description="search in number, name and DIDs"),
        limit: int = Query(1000, ge=1, le=10000),
        offset: int = Query(0, ge=0),
    ) -> list[AccountOut]:
        """Accounts with their devices and whether each is registered now."""
        async with c.store.read() as conn:
            from ..store.repository import load_accounts

            accounts = await load_accounts(conn)
            devices = await load_devices(conn)
        if q:
            needle = q.strip().lower()
            accounts = [a for a in accounts if needle in a.number or needle in a.display_name.lower()
                        or any(needle in d for d in a.dids)]
        by_account: dict[str, list[Any]] = {}
        for d in devices:
            by_account.setdefault(d.account, []).append(d)
        page = accounts[offset:offset + limit]
        return [account_out(a, by_account.get(a.number, []), await registered(a.number)) for a in page]

    @router.post("/accounts", response_model=AccountOut, status_code=201, tags=["accounts"])
    async def create_account(body: AccountCreate) -> AccountOut:
        account = await c.store.admin.add_account(body.number, body.name, body.dids)
        await c.changed()
        return account_out(account, [], set())

    @router.get("/accounts/{number}", response_model=AccountOut, tags=["accounts"])
    async def get_account(number: str) -> AccountOut:
        account = await c.store.admin.get_account(number)
        return account_out(account, await c.store.admin.list_devices(number), await registered(number))

    @router.patch("/accounts/{number}", response_model=AccountOut, tags=["accounts"])
    async def update_account(number: str, body: AccountUpdate) -> AccountOut:
        """Change the fields given (ring mode, forwarding, DND, selected device, DIDs, ...)."""
        current = await c.store.admin.get_account(number)
        account = await c.store.admin.update_account(number, **account_changes(body, current.dids))
        await c.changed()
        return account_out(account, await c.store.admin.list_devices(number), await registered(number))

    @router.delete("/accounts/{number}", status_code=204, response_class=Response, tags=["accounts"])
    async def delete_account(number: str) -> Response:
        """Remove the account with its DIDs, devices and registrations."""
        await c.store.admin.remove_account(number)
        await c.changed()
        for username in {b.auth_username for b in c.location.get(number)}:
            c.location.drop_device(number, username, "account-removed")
        await c.logins.end_sessions_of("user", number)
        return Response(status_code=204)

    @router.put("/accounts/{number}/password", status_code=204, response_class=Response, tags=["accounts"])
    async def set_password(number: str, body: PasswordSet) -> Response:
        """Set the account's login password (web phone, portal); its sessions are logged out."""
        await logins.set_account_password(c.store, number, body.password)
        await c.logins.end_sessions_of("user", number)
        return Response(status_code=204)

    @router.delete("/accounts/{number}/password", status_code=204, response_class=Response, tags=["accounts"])
    async def remove_password(number: str) -> Response:
        """No login for this account any more; its sessions are logged out."""
        await logins.set_account_password(c.store, number, None)
        await c.logins.end_sessions_of("user", number)
        return Response(status_code=204)

    # ------------------------------------------------------------------ devices
    @router.get("/accounts/{number}/devices", response_model=list[DeviceOut], tags=["devices"])
    async def list_devices(number: str) -> list[DeviceOut]:
        live = await registered(number)
        return [device_out(d, d.auth_username in live) for d in await c.store.admin.list_devices(number)]

    @router.post("/accounts/{number}/devices", response_model=DeviceCreated, status_code=201, tags=["devices"])
    async def create_device(number: str, body: DeviceCreate) -> DeviceCreated:
        """Add a device with a generated secret (in this answer only)."""
        device = await c.store.admin.add_device(
            number, body.kind, position=body.position, ring_order=body.order, label=body.label,
            auth_username=body.auth_username, internet=body.internet, call_waiting=body.call_waiting,
            expires_days=body.expires_days,
        )
        await c.changed()
        return DeviceCreated(**device_out(device, False).model_dump(), secret=device.secret)

    @router.get("/accounts/{number}/devices/{position}", response_model=DeviceOut, tags=["devices"])
    async def get_device(number: str, position: int) -> DeviceOut:
        device = await c.store.admin.get_device(number, position)
        return device_out(device, device.auth_username in await registered(number))

    @router.patch("/accounts/{number}/devices/{position}", response_model=DeviceOut, tags=["devices"])
    async def update_device(number: str, position: int, body: DeviceUpdate) -> DeviceOut:
        given = body.model_fields_set
        device = await c.store.admin.update_device(
            number, position,
            new_position=body.position if "position" in given else None,
            kind=body.kind, ring_order=body.order, enabled=body.enabled, label=body.label,
            auth_username=body.auth_username, internet=body.internet, call_waiting=body.call_waiting,
            expires_days=body.expires_days,
        )
        await c.changed()
        return device_out(device, device.auth_username in await registered(number))

    @router.delete("/accounts/{number}/devices/{position}", status_code=204, response_class=Response,
                   tags=["devices"])
    async def delete_device(number: str, position: int) -> Response:
        device = await c.store.admin.remove_device(number, position)
        await c.changed()
        c.location.drop_device(number, device.auth_username, "device-removed")
        return Response(status_code=204)

    # ------------------------------------------------------------------ live state
    @router.get("/accounts/{number}/bindings", response_model=list[BindingOut], tags=["accounts"])
    async def bindings(number: str) -> list[BindingOut]:
        """Where each device of the account is registered now (read-only)."""
        await c.store.admin.get_account(number)
        now = time.time()
        return [binding_out(b, now) for b in c.location.get(number)]

    @router.get("/accounts/{number}/ring-plan", response_model=RingPlanOut, tags=["accounts"])
    async def ring_plan(number: str) -> RingPlanOut:
        """Who would ring now, with the reason for each device (as `onenumber ring-plan`)."""
        return await plan_of(c, number)

    @router.get("/accounts/{number}/history", response_model=list[HistoryOut], tags=["accounts"])
    async def history(
        number: str, limit: int = Query(50, ge=1, le=500), missed: bool = Query(False),
    ) -> list[HistoryOut]:
        await c.store.admin.get_account(number)
        labels = {d.position: d.label for d in await c.store.admin.list_devices(number)}
        return [history_out(r, labels) for r in await read_history(c.store, number, limit=limit, missed_only=missed)]

    # ------------------------------------------------------------------ trunks
    @router.get("/trunks", response_model=list[TrunkOut], tags=["trunks"])
    async def list_trunks() -> list[TrunkOut]:
        return [trunk_out(t) for t in await c.store.admin.list_trunks()]

    @router.post("/trunks", response_model=TrunkOut, status_code=201, tags=["trunks"])
    async def create_trunk(body: TrunkCreate) -> TrunkOut:
        trunk = await c.store.admin.add_trunk(body.name, body.host, port=body.port, transport=body.transport,
                                              prefix=body.prefix)
        await c.changed()
        return trunk_out(trunk)

    @router.delete("/trunks/{name}", status_code=204, response_class=Response, tags=["trunks"])
    async def delete_trunk(name: str) -> Response:
        await c.store.admin.remove_trunk(name)
        await c.changed()
        return Response(status_code=204)

    # ------------------------------------------------------------------ settings
    @router.get("/settings", tags=["settings"])
    async def get_settings() -> dict[str, Any]:
        """Every setting with its current value (see docs/admin.md for each)."""
        return settings_view(await c.store.admin.get_settings())

    @router.put("/settings/{key}", tags=["settings"])
    async def set_setting(key: str, body: SettingValue) -> dict[str, Any]:
        """Set one setting (the value as text, as the CLI takes it); returns every setting."""
        if key not in SETTING_KEYS:
            raise AdminError(f"unknown setting {key!r}; known settings: {', '.join(SETTING_KEYS)}", field="key")
        try:
            settings = await c.store.admin.set_setting(key, body.value)
        except AdminError as exc:
            raise AdminError(str(exc), field=exc.field or "value") from None
        await c.changed()
        return settings_view(settings)

    @router.delete("/settings/{key}", tags=["settings"])
    async def reset_setting(key: str) -> dict[str, Any]:
        """Back to the default value; returns every setting."""
        settings = await c.store.admin.reset_setting(key)
        await c.changed()
        return settings_view(settings)

    # ------------------------------------------------------------------ API tokens
    @router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
    async def list_tokens() -> list[TokenOut]:
        return [token_out(t) for t in await logins.list_api_tokens(c.store)]

    @router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"])
    async def create_token(body: TokenCreate) -> TokenCreated:
        """A new token, shown only in this answer (stored hashed). Role user needs an account."""
        token, record = await logins.create_api_token(c.store, body.name, body.role, body.account, now=time.time())
        return TokenCreated(**token_out(record).model_dump(), token=token)

    @router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["tokens"])
    async def revoke_token(token_id: int) -> TokenOut:
        return token_out(await logins.revoke_api_token(c.store, token_id, now=time.time()))

    return router


async def plan_of(c: Any, number: str) -> RingPlanOut:
    account = c.directory.accounts.get(number)
    if account is None:
        await c.store.admin.get_account(number)  # the database's own 404 message
        await c.changed()
        account = c.directory.accounts.get(number)
        if account is None:
            from ..store import NotFoundError

            raise NotFoundError(f"no account {number}", field="number")
    now = time.time()
    plan = plan_call(account, c.directory.devices(number), c.location.get(number), CallState(), now=now)
    return ring_plan_out(plan, account, now)
