"""The HTTP side: health for everyone, live state for admins only."""

from __future__ import annotations

import time

from onenumber.routing.model import Binding

from .conftest import ALICE_PW, Api, login


async def test_live_bindings_and_ring_plan_for_an_admin(api: Api) -> None:
    api.location.apply([Binding("1000", "1000", "sip:a@127.0.0.1:5062", time.time() + 60, "udp",
                                ("127.0.0.1", 5062))], [])
    async with api.client(headers={"Authorization": f"Bearer {api.admin_token}"}) as c:
        assert (await c.get("/api/health")).json()["bindings"] == 1
        (row,) = (await c.get("/api/accounts/1000/bindings")).json()
        assert row["contact"] == "sip:a@127.0.0.1:5062" and row["expires"] > 50
        plan = (await c.get("/api/accounts/1000/ring-plan")).json()
        assert plan["devices"][0]["rings"] is True and plan["account"] == "1000"
        r = await c.get("/api/accounts/9999/bindings")
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_live_state_needs_a_login_from_anywhere(api: Api) -> None:
    async with api.client(host="127.0.0.1") as c:  # loopback is no longer enough
        assert (await c.get("/api/health")).status_code == 200
        r = await c.get("/api/accounts/1000/bindings")
        assert r.status_code == 401 and r.json()["error"] == "not_logged_in"


async def test_a_user_gets_no_live_state_of_accounts(api: Api) -> None:
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        assert (await c.get("/api/accounts/1000/bindings")).status_code in (403, 404)
        assert (await c.get("/api/accounts/1001/ring-plan")).status_code in (403, 404)
