"""The portal's pages (api/portal.py) over HTTP, without a browser: login, CSRF, admin forms
with errors next to their fields, the user's page and its live fragment, and what a user
cannot reach. The browser runs are in tests/e2e/test_portal.py."""

from __future__ import annotations

import re
import time

import httpx

from onenumber.routing.model import Binding

from .conftest import ADMIN_PW, ALICE_PW, Api

FORM = {"content-type": "application/x-www-form-urlencoded"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def portal_login(c: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await c.post("/login", data={"username": username, "password": password})


async def test_login_page_wrong_password_and_throttling(api: Api) -> None:
    async with api.client() as c:
        page = await c.get("/login")
        assert page.status_code == 200 and '<label for="password">' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        r = await portal_login(c, "1000", "wrong")
        assert r.status_code == 401 and "Wrong number or password." in r.text
        assert (await portal_login(c, "9999", "wrong")).text.count("Wrong number or password.") == 1  # no enumeration
        await portal_login(c, "1000", "wrong")
        await portal_login(c, "1000", "wrong")
        r = await portal_login(c, "1000", ALICE_PW)  # 3 failures: blocked even with the right password
        assert r.status_code == 429 and "Too many failed attempts. Try again in" in r.text
        assert int(r.headers["retry-after"]) > 0


async def test_unauthenticated_pages_redirect_to_login(api: Api) -> None:
    async with api.client() as c:
        r = await c.get("/admin/accounts/1000")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/accounts/1000"
        assert (await c.get("/")).headers["location"].startswith("/login")
        assert (await c.post("/admin/accounts", data={"number": "1002"})).status_code == 401


async def test_login_sets_the_api_session_and_logout_ends_it(api: Api) -> None:
    async with api.client() as c:
        r = await c.post("/login", data={"username": "1000", "password": ALICE_PW, "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/me"  # never off-site
        assert {"onenumber_session", "onenumber_csrf"} <= set(c.cookies.keys())
        assert (await c.get("/api/me")).json()["number"] == "1000"  # the same session as the API's
        page = await c.get("/me")
        token = csrf_of(page.text)
        assert (await c.post("/logout", data={"csrf": "wrong"})).status_code == 403
        r = await c.post("/logout", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert (await c.get("/api/me")).status_code == 401


async def test_login_posted_from_another_site_is_refused(api: Api) -> None:
    async with api.client() as c:
        r = await c.post("/login", data={"username": "1000", "password": ALICE_PW},
                         headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "onenumber_session" not in c.cookies


async def test_admin_accounts_list_search_and_registration_state(api: Api) -> None:
    api.location.apply([Binding("1000", "1000", "sip:a@127.0.0.1:5062", time.time() + 60, "udp",
                                ("127.0.0.1", 5062))], [])
    async with api.client() as c:
        r = await portal_login(c, "root", ADMIN_PW)
        assert r.headers["location"] == "/admin/accounts"
        page = (await c.get("/admin/accounts")).text
        assert "Alice" in page and "Bob" in page
        assert "1 of 2" in page and "Desk registered, Mobile not registered" in page
        page = (await c.get("/admin/accounts", params={"q": "bob"})).text
        assert "Bob" in page and "Alice" not in page


async def test_admin_creates_an_account_with_errors_next_to_fields(api: Api) -> None:
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        token = csrf_of((await c.get("/admin/accounts")).text)
        r = await c.post("/admin/accounts", data={"number": "1002", "name": "Carol"})  # no CSRF field
        assert r.status_code == 403 and "CSRF" in r.text
        r = await c.post("/admin/accounts", data={"csrf": token, "number": "12ab", "name": "Carol"})
        assert r.status_code == 400
        assert 'id="err-number"' in r.text and 'aria-invalid="true"' in r.text
        assert 'value="Carol"' in r.text  # what was typed stays
        r = await c.post("/admin/accounts", data={"csrf": token, "number": "1000", "name": "Again"})
        assert r.status_code == 409 and "already exists" in r.text and "onenumber " not in r.text
        r = await c.post("/admin/accounts", data={"csrf": token, "number": "1002", "name": "Carol",
                                                  "dids": "0140000002", "password": "carol-password"})
        assert r.status_code == 303 and r.headers["location"] == "/admin/accounts/1002?notice=created"
        assert (await api.store.admin.get_account("1002")).dids == ("0140000002",)
        assert "1002" in api.directory.accounts  # reloaded at once: the next call sees it


async def test_admin_account_page_devices_and_no_secrets(api: Api) -> None:
    api.location.apply([Binding("1000", "1000_2", "sip:m@127.0.0.1:5070", time.time() + 60, "tcp",
                                ("127.0.0.1", 5070), user_agent="PhoneApp/1.0")], [])
    secrets = [d.secret for d in await api.store.admin.list_devices("1000")]
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        page = (await c.get("/admin/accounts/1000")).text
        for text in ("<code>1000</code>", "<code>1000_2</code>", "Desk", "Mobile", "127.0.0.1:5070", "TCP",
                     "PhoneApp/1.0", 'data-provision="/api/accounts/1000/devices/1/provisioning"', "Who rings now"):
            assert text in page, text
        assert not any(s in page for s in secrets)
        token = csrf_of(page)
        r = await c.post("/admin/accounts/1000/devices", data={"csrf": token, "kind": "softphone", "label": "Laptop",
                                                               "order": "2", "call_waiting": "1"})
        assert r.status_code == 303 and r.headers["location"].endswith("notice=device-added#devices")
        device = await api.store.admin.get_device("1000", 2)
        assert (device.kind, device.label, device.ring_order, device.internet) == ("softphone", "Laptop", 2, False)
        page = (await c.get("/admin/accounts/1000")).text
        assert device.secret not in page
        r = await c.post("/admin/accounts/1000/devices", data={"csrf": token, "kind": "fax", "order": "1"})
        assert r.status_code == 400 and 'id="err-kind"' in r.text
        r = await c.post("/admin/accounts/1000/devices/2", data={"csrf": token, "order": "x"})
        assert r.status_code == 400 and "is not a whole number" in r.text
        r = await c.post("/admin/accounts/1000/devices/2", data={"csrf": token, "order": "100", "label": "L"})
        assert r.status_code == 400 and 'id="err-order"' in r.text
        r = await c.post("/admin/accounts/1000/devices/2", data={"csrf": token, "order": "3", "label": "Laptop 2",
                                                                 "internet": "1"})
        assert r.status_code == 303
        device = await api.store.admin.get_device("1000", 2)
        assert (device.ring_order, device.label, device.internet, device.enabled) == (3, "Laptop 2", True, False)
        assert (await c.post("/admin/accounts/1000/devices/2/delete", data={"csrf": token})).status_code == 303
        assert len(await api.store.admin.list_devices("1000")) == 2


async def test_admin_at_most_eight_devices(api: Api) -> None:
    for _ in range(6):
        await api.store.admin.add_device("1000", "softphone")
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        page = (await c.get("/admin/accounts/1000")).text
        assert "8 devices, the most allowed" in page and 'action="/admin/accounts/1000/devices"' not in page
        r = await c.post("/admin/accounts/1000/devices", data={"csrf": csrf_of(page), "kind": "mobile", "order": "1"})
        assert r.status_code == 409 and "already has 8 devices" in r.text


async def test_admin_ring_mode_and_forwarding(api: Api) -> None:
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        token = csrf_of((await c.get("/admin/accounts/1000")).text)
        base = {"csrf": token, "name": "Alice", "ring_mode": "exclusive", "stage_seconds": "10",
                "no_answer_seconds": "20", "selected_device": "1"}
        r = await c.post("/admin/accounts/1000", data={**base, "forward_busy": "1000"})
        assert r.status_code == 400 and "cannot forward to its own number" in r.text
        r = await c.post("/admin/accounts/1000", data={**base, "stage_seconds": "0"})
        assert r.status_code == 400 and 'id="err-stage_seconds"' in r.text
        r = await c.post("/admin/accounts/1000", data={**base, "name": "  "})
        assert r.status_code == 400 and 'id="err-name"' in r.text
        assert "the display name is empty" in r.text and "--name" not in r.text  # the API's words, not the CLI's
        r = await c.post("/admin/accounts/1000", data={**base, "ring_mode": "sideways"})
        assert r.status_code == 400 and 'id="err-ring_mode"' in r.text
        r = await c.post("/admin/accounts/1000", data={**base, "selected_device": "7"})
        assert r.status_code in (400, 404) and 'id="err-selected_device"' in r.text
        assert (await c.post("/admin/accounts/9999", data=base)).status_code == 404
        r = await c.post("/admin/accounts/1000", data={**base, "forward_no_answer": "voicemail", "dnd": "1"})
        assert r.status_code == 303
        account = await api.store.admin.get_account("1000")
        assert (account.ring_mode, account.selected_device, account.forwarding.no_answer, account.dnd) == (
            "exclusive", 1, "voicemail", True)


async def test_admin_trunks(api: Api) -> None:
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        token = csrf_of((await c.get("/admin/trunks")).text)
        r = await c.post("/admin/trunks", data={"csrf": token, "name": "gw", "host": "192.0.2.10", "port": "99999",
                                                "transport": "udp"})
        assert r.status_code == 400 and 'id="err-port"' in r.text
        r = await c.post("/admin/trunks", data={"csrf": token, "name": "gw", "host": "192.0.2.10", "port": "5060",
                                                "transport": "udp", "prefix": "0"})
        assert r.status_code == 303
        assert "192.0.2.10" in (await c.get("/admin/trunks")).text
        assert (await c.post("/admin/trunks/gw/delete", data={"csrf": token})).status_code == 303
        assert await api.store.admin.list_trunks() == []


async def test_user_moves_the_mobile_up_and_the_live_preview_follows(api: Api) -> None:
    await api.store.admin.update_device("1000", 1, ring_order=2)  # Desk 1, Mobile 2
    now = time.time() + 60
    api.location.apply([Binding("1000", "1000", "sip:d@127.0.0.1:5062", now, "udp", ("127.0.0.1", 5062)),
                        Binding("1000", "1000_2", "sip:m@127.0.0.1:5064", now, "udp", ("127.0.0.1", 5064))], [])
    await api.directory.reload(api.store)
    async with api.client() as c:
        await portal_login(c, "1000", ALICE_PW)
        page = (await c.get("/me")).text
        assert re.search(r"Rings at once:\s*<strong>Desk</strong>", page)
        assert re.search(r"Joins after 10 s:\s*<strong>Mobile</strong>", page)
        token = csrf_of(page)
        r = await c.post("/me/devices/1/move", data={"csrf": token, "direction": "up"},
                         headers={"x-portal-live": "1"})
        assert r.status_code == 200 and r.text.lstrip().startswith('<div id="live"')  # a fragment, no reload
        assert re.search(r"Rings at once:\s*<strong>Mobile</strong>", r.text)
        assert re.search(r"Joins after 10 s:\s*<strong>Desk</strong>", r.text)
        assert 'data-message="Mobile moved up. The preview shows the new order."' in r.text
        orders = {d.position: d.ring_order for d in await api.store.admin.list_devices("1000")}
        assert orders == {0: 2, 1: 1}
        # without JavaScript: the same form answers with a redirect
        r = await c.post("/me/devices/1/move", data={"csrf": token, "direction": "down"})
        assert r.status_code == 303 and r.headers["location"] == "/me"
        r = await c.post("/me/devices/0/enabled", data={"csrf": token, "enabled": "0"}, headers={"x-portal-live": "1"})
        assert "Desk disabled." in r.text and "Desk: disabled" in r.text.replace("device is disabled", "disabled")


async def test_user_routing_errors_and_no_secrets(api: Api) -> None:
    secrets = [d.secret for d in await api.store.admin.list_devices("1000")]
    async with api.client() as c:
        await portal_login(c, "1000", ALICE_PW)
        page = (await c.get("/me")).text
        assert not any(s in page for s in secrets) and "1000_2" not in page
        assert 'href="/phone"' in page
        token = csrf_of(page)
        r = await c.post("/me/routing", data={"csrf": token, "ring_mode": "ordered", "forward_busy": "10 00"},
                         headers={"x-portal-live": "1"})
        assert r.status_code == 400 and 'id="err-forward_busy"' in r.text
        r = await c.post("/me/routing", data={"csrf": token, "ring_mode": "exclusive", "selected_device": "1"},
                         headers={"x-portal-live": "1"})
        assert r.status_code == 200 and "Saved." in r.text
        account = await api.store.admin.get_account("1000")
        assert (account.ring_mode, account.selected_device) == ("exclusive", 1)
        # the voicemail PIN: set, kept when the field is left empty, refused when not digits, cleared
        r = await c.post("/me/routing", data={"csrf": token, "ring_mode": "exclusive", "voicemail_pin": "24680"},
                         headers={"x-portal-live": "1"})
        assert r.status_code == 200 and "your own is set" in r.text and "24680" not in r.text
        await c.post("/me/routing", data={"csrf": token, "ring_mode": "ordered"}, headers={"x-portal-live": "1"})
        assert (await api.store.admin.get_account("1000")).voicemail_pin == "24680"
        r = await c.post("/me/routing", data={"csrf": token, "ring_mode": "ordered", "voicemail_pin": "12x"},
                         headers={"x-portal-live": "1"})
        assert r.status_code == 400 and 'id="err-voicemail_pin"' in r.text
        await c.post("/me/routing", data={"csrf": token, "ring_mode": "ordered", "voicemail_pin_clear": "1"},
                     headers={"x-portal-live": "1"})
        assert (await api.store.admin.get_account("1000")).voicemail_pin is None


async def test_a_user_cannot_reach_another_account(api: Api) -> None:
    async with api.client() as c:
        await portal_login(c, "1000", ALICE_PW)
        token = csrf_of((await c.get("/me")).text)
        answers = []
        for path in ("/admin/accounts/1001", "/admin/accounts/9999", "/admin/accounts", "/admin/anything"):
            r = await c.get(path)
            answers.append((r.status_code, r.text))
        assert {a for a in answers} == {answers[0]} and answers[0][0] == 403  # one answer, exists or not
        for path in ("/admin/accounts/1001", "/admin/accounts/9999"):
            r = await c.post(path, data={"csrf": token, "name": "Mallory"})
            assert r.status_code == 403
        assert (await api.store.admin.get_account("1001")).display_name == "Bob"
        for path in ("/api/accounts/1001", "/api/accounts/9999"):
            assert (await c.get(path)).status_code == 403


async def test_user_history_page(api: Api) -> None:
    async with api.client() as c:
        await portal_login(c, "1000", ALICE_PW)
        page = await c.get("/me/history")
        assert page.status_code == 200 and "No calls yet." in page.text
        assert (await c.get("/me/history", params={"missed": "true"})).status_code == 200


async def test_admin_is_sent_to_accounts_from_the_user_page(api: Api) -> None:
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        r = await c.get("/login")  # already logged in
        assert r.status_code == 303 and r.headers["location"] == "/admin/accounts"
        r = await c.get("/me")
        assert r.status_code == 303 and r.headers["location"] == "/admin/accounts"
        assert (await c.get("/admin/csv")).status_code == 200
        assert (await c.get("/portal/static/portal.js")).status_code == 200
        token = csrf_of((await c.get("/admin/accounts")).text)
        huge = "csrf=" + token + "&name=" + "x" * 70_000
        r = await c.post("/admin/accounts", content=huge, headers=FORM)
        assert r.status_code == 400 and "too large" in r.text  # an answer, not a crash
        many = "csrf=" + token + "".join(f"&f{i}=1" for i in range(300))
        r = await c.post("/admin/accounts", content=many, headers=FORM)
        assert r.status_code in (400, 403) and "Internal" not in r.text


async def test_the_pages_calls_to_the_ops_router_need_the_csrf_header(api: Api) -> None:
    """What portal.js does: provisioning links and CSV with the session cookie + X-CSRF-Token."""
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        token = csrf_of((await c.get("/admin/accounts/1000")).text)
        path = "/api/accounts/1000/devices/1/provisioning"
        assert (await c.post(path, json={})).status_code == 403  # a cross-site form could not add the header
        r = await c.post(path, json={}, headers={"x-csrf-token": token})
        assert r.status_code == 200 and r.json()["url"].startswith("http://testserver/provision/")
        assert r.json()["qr_png_data_uri"].startswith("data:image/png;base64,")
        assert "secret" not in r.json()["device"]
        export = await c.get("/api/export")
        assert export.status_code == 200 and export.text.startswith("number,name")
        r = await c.post("/api/import", params={"dry_run": "true"}, content=export.text.encode(),
                         headers={"content-type": "text/csv", "x-csrf-token": token})
        assert r.status_code == 200 and r.json()["changed"] is False
    async with api.client() as c:  # a user: none of it
        await portal_login(c, "1000", ALICE_PW)
        token = csrf_of((await c.get("/me")).text)
        r = await c.post("/api/accounts/1000/devices/1/provisioning", json={}, headers={"x-csrf-token": token})
        assert r.status_code == 403
        assert (await c.get("/api/export")).status_code == 403


async def test_what_people_typed_is_escaped(api: Api) -> None:
    await api.store.admin.add_account("1003", "<script>alert(1)</script>")
    await api.store.admin.add_device("1003", "softphone", label="<img src=x onerror=alert(1)>")
    async with api.client() as c:
        await portal_login(c, "root", ADMIN_PW)
        for path in ("/admin/accounts", "/admin/accounts/1003"):
            page = (await c.get(path)).text
            assert "<script>alert" not in page and "<img src=x" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        r = await c.get("/admin/accounts", params={"q": "<svg onload=alert(1)>"})
        assert "<svg onload" not in r.text
