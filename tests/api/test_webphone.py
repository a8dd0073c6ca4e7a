"""The web phone device and its first login (SPEC: "Logging in to the web phone the first time
selects it"): the device created for the first credential becomes the selected device, unless
the user already chose one."""

from __future__ import annotations

from .conftest import ALICE_PW, BOB_PW, Api, login


async def test_first_login_selects_the_new_web_phone(api: Api) -> None:
    assert (await api.store.admin.get_account("1000")).selected_device is None
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        cred = (await c.get("/api/me/webphone")).json()
        me = (await c.get("/api/me")).json()
    web = next(d for d in me["devices"] if d["kind"] == "webphone")
    assert web["auth_username"] == cred["auth_username"] and me["selected_device"] == web["position"], me
    assert me["ring_mode"] != "exclusive"  # the mode is the user's choice; only the selection is made


async def test_a_choice_already_made_is_kept(api: Api) -> None:
    await api.store.admin.update_account("1001", ring_mode="exclusive", selected_device=0)
    async with api.client() as c:
        await login(c, "1001", BOB_PW)
        assert (await c.get("/api/me/webphone")).status_code == 200
        me = (await c.get("/api/me")).json()
    assert (me["ring_mode"], me["selected_device"]) == ("exclusive", 0), me
