"""`/api/me/...`: what a logged-in user reaches of their own account (and nothing else).

The account is always the principal's own (`require_account`): there is no number in these
paths to guess. Changes go through store/admin.py (the CLI's validation, one transaction)
and take effect on the next call (the server reloads on the revision bump).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Query, Request

from ..store.history import read_history
from .auth import ApiError, Principal, require_account
from .schemas import AccountOut, HistoryOut, SelectedDevice, WebphoneCredential, account_out, history_out


def add_me_routes(app: FastAPI, ctx: Any) -> None:
    from .app import ApiContext, session_of

    c: ApiContext = ctx

    async def me_body(number: str) -> AccountOut:
        account = await c.store.admin.get_account(number)
        devices = await c.store.admin.list_devices(number)
        registered = {b.auth_username for b in c.location.get(number)}
        return account_out(account, devices, registered)

    @app.get("/api/me", response_model=AccountOut, tags=["me"])
    async def me(who: Principal = Depends(require_account)) -> AccountOut:
        """The user's own account with its devices."""
        assert who.account is not None
        return await me_body(who.account)

    @app.get("/api/me/webphone", response_model=WebphoneCredential, tags=["me"],
             responses={409: {"description": "no web phone device and no free slot"}})
    async def webphone(request: Request, who: Principal = Depends(require_account)) -> WebphoneCredential:
        """A SIP credential for the account's web phone device, valid only for this session."""
        session = await session_of(c, who)
        if session is None:
            raise ApiError(400, "session_required", "The web phone credential is given to a browser session only; "
                           "log in with POST /api/login")
        host = (request.url.hostname or "localhost")
        return WebphoneCredential(**await c.webphone.credential(session, host))

    @app.get("/api/me/history", response_model=list[HistoryOut], tags=["me"])
    async def history(
        who: Principal = Depends(require_account),
        limit: int = Query(50, ge=1, le=500),
        missed: bool = Query(False, description="only missed calls"),
    ) -> list[HistoryOut]:
        """The account's calls, newest first."""
        assert who.account is not None
        rows = await read_history(c.store, who.account, limit=limit, missed_only=missed)
        labels = {d.position: d.label for d in await c.store.admin.list_devices(who.account)}
        return [history_out(r, labels) for r in rows]

    @app.put("/api/me/selected-device", response_model=AccountOut, tags=["me"])
    async def selected_device(body: SelectedDevice, who: Principal = Depends(require_account)) -> AccountOut:
        """Ring only this device (`exclusive` mode), like the web phone's device menu."""
        assert who.account is not None
        if body.position is None:
            await c.store.admin.update_account(who.account, selected_device=None)
        else:
            await c.store.admin.update_account(who.account, ring_mode="exclusive", selected_device=body.position)
        await c.changed()
        return await me_body(who.account)
