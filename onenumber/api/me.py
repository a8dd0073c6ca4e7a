"""`/api/me/...`: what a logged-in user reaches of their own account (and nothing else).

The account is always the principal's own (`require_account`): there is no number in these
paths to guess. Changes go through store/admin.py (the CLI's validation, one transaction)
and take effect on the next call (the server's directory is reloaded at once).
A user may change routing (ring mode, forwarding, DND, selected device) and their devices'
order, enabled state, label and call waiting; not DIDs, caller ID, kinds or credentials.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from ..store import logins
from ..store.history import read_history
from .auth import ApiError, Principal, require_account
from .schemas import (
    AccountOut,
    DeviceOrder,
    DeviceOut,
    HistoryOut,
    MeUpdate,
    MyDeviceUpdate,
    PasswordChange,
    RingPlanOut,
    SelectedDevice,
    TokenCreated,
    TokenOut,
    UserTokenCreate,
    WebphoneCredential,
    account_out,
    device_out,
    history_out,
    token_out,
)


def add_me_routes(app: FastAPI, ctx: Any) -> None:
    from .app import ERROR_RESPONSES, ApiContext, session_of
    from .rest import account_changes, plan_of

    c: ApiContext = ctx
    router = APIRouter(prefix="/api/me", tags=["me"], responses=ERROR_RESPONSES)

    async def me_body(number: str) -> AccountOut:
        account = await c.store.admin.get_account(number)
        devices = await c.store.admin.list_devices(number)
        registered = {b.auth_username for b in c.location.get(number)}
        return account_out(account, devices, registered)

    def own(who: Principal) -> str:
        assert who.account is not None  # require_account
        return who.account

    @router.get("", response_model=AccountOut)
    async def me(who: Principal = Depends(require_account)) -> AccountOut:
        """The user's own account with its devices (never their secrets)."""
        return await me_body(own(who))

    @router.patch("", response_model=AccountOut)
    async def update_me(body: MeUpdate, who: Principal = Depends(require_account)) -> AccountOut:
        """Ring mode, forwarding, DND, selected device: only the fields given change."""
        number = own(who)
        await c.store.admin.update_account(number, **account_changes(body, ()))
        await c.changed()
        return await me_body(number)

    @router.get("/devices", response_model=list[DeviceOut])
    async def my_devices(who: Principal = Depends(require_account)) -> list[DeviceOut]:
        return (await me_body(own(who))).devices

    @router.patch("/devices/{position}", response_model=DeviceOut)
    async def update_my_device(position: int, body: MyDeviceUpdate,
                               who: Principal = Depends(require_account)) -> DeviceOut:
        """Enable or disable a device, change its ring order, label or call waiting."""
        number = own(who)
        device = await c.store.admin.update_device(number, position, ring_order=body.order, enabled=body.enabled,
                                                   label=body.label, call_waiting=body.call_waiting)
        await c.changed()
        return device_out(device, device.auth_username in {b.auth_username for b in c.location.get(number)})

    @router.put("/device-order", response_model=list[DeviceOut])
    async def order_my_devices(body: DeviceOrder, who: Principal = Depends(require_account)) -> list[DeviceOut]:
        """Ring the devices in this order (every position once; order 1, 2, 3…)."""
        number = own(who)
        await c.store.admin.reorder_devices(number, body.positions)
        await c.changed()
        return (await me_body(number)).devices

    @router.put("/selected-device", response_model=AccountOut)
    async def selected_device(body: SelectedDevice, who: Principal = Depends(require_account)) -> AccountOut:
        """Ring only this device (`exclusive` mode), like the web phone's device menu; null clears it."""
        number = own(who)
        if body.position is None:
            await c.store.admin.update_account(number, selected_device=None)
        else:
            await c.store.admin.update_account(number, ring_mode="exclusive", selected_device=body.position)
        await c.changed()
        return await me_body(number)

    @router.get("/ring-plan", response_model=RingPlanOut)
    async def my_ring_plan(who: Principal = Depends(require_account)) -> RingPlanOut:
        """Who would ring now, with the reason for each device."""
        return await plan_of(c, own(who))

    @router.get("/history", response_model=list[HistoryOut])
    async def history(
        who: Principal = Depends(require_account),
        limit: int = Query(50, ge=1, le=500),
        missed: bool = Query(False, description="only missed calls"),
    ) -> list[HistoryOut]:
        """The account's calls, newest first."""
        number = own(who)
        rows = await read_history(c.store, number, limit=limit, missed_only=missed)
        labels = {d.position: d.label for d in await c.store.admin.list_devices(number)}
        return [history_out(r, labels) for r in rows]

    @router.get("/webphone", response_model=WebphoneCredential,
                responses={409: {"description": "no web phone device and no free slot of the 8"}})
    async def webphone(request: Request, who: Principal = Depends(require_account)) -> WebphoneCredential:
        """A SIP credential for the account's web phone device, valid only for this session."""
        session = await session_of(c, who)
        if session is None:
            raise ApiError(400, "session_required", "The web phone credential is given to a browser session only; "
                           "log in with POST /api/login")
        return WebphoneCredential(**await c.webphone.credential(session, request.url.hostname or "localhost"))

    @router.put("/password", status_code=204, response_class=Response)
    async def change_password(body: PasswordChange, request: Request,
                              who: Principal = Depends(require_account)) -> Response:
        """Change the login password (the current one is needed); other sessions are logged out."""
        number = own(who)
        stored = await logins.password_hash(c.store, "user", number)
        if not await asyncio.to_thread(logins.check_password, body.current_password, stored):
            raise ApiError(403, "wrong_password", "The current password is wrong", field="current_password")
        await logins.set_account_password(c.store, number, body.new_password)
        await c.logins.end_sessions_of("user", number, keep=who.session_id)  # this browser stays logged in
        return Response(status_code=204)

    # ------------------------------------------------------------------ tokens of the user
    @router.get("/tokens", response_model=list[TokenOut])
    async def my_tokens(who: Principal = Depends(require_account)) -> list[TokenOut]:
        return [token_out(t) for t in await logins.list_api_tokens(c.store, account=own(who))]

    @router.post("/tokens", response_model=TokenCreated, status_code=201)
    async def create_my_token(body: UserTokenCreate, who: Principal = Depends(require_account)) -> TokenCreated:
        """A token that acts as this user (for scripts); shown only in this answer."""
        token, record = await logins.create_api_token(c.store, body.name, "user", own(who), now=time.time())
        return TokenCreated(**token_out(record).model_dump(), token=token)

    @router.delete("/tokens/{token_id}", response_model=TokenOut)
    async def revoke_my_token(token_id: int, who: Principal = Depends(require_account)) -> TokenOut:
        return token_out(await logins.revoke_api_token(c.store, token_id, now=time.time(), account=own(who)))

    app.include_router(router)
