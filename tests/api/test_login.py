"""The login system over HTTP: login, logout, throttling, CSRF, session expiry, no enumeration."""

from __future__ import annotations

import time

import httpx

from onenumber.routing.model import Binding

from .conftest import ADMIN_PW, ALICE_PW, Api, login


async def test_user_login_sets_cookies_and_me_answers(api: Api) -> None:
    async with api.client() as c:
        r = await login(c, "1000", ALICE_PW)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] == "user" and body["account"] == "1000" and body["name"] == "Alice" and body["csrf"]
        cookies = r.headers.get_list("set-cookie")
        session = next(h for h in cookies if h.startswith("onenumber_session="))
        csrf = next(h for h in cookies if h.startswith("onenumber_csrf="))
        assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
        assert "Secure" not in session  # plain HTTP here; Secure under TLS
        assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
        me = (await c.get("/api/me")).json()
        assert me["number"] == "1000" and me["name"] == "Alice"
        assert [(d["position"], d["kind"], d["label"]) for d in me["devices"]] == [(0, "deskphone", "Desk"),
                                                                                   (1, "mobile", "Mobile")]
        assert all("secret" not in d and "password" not in d for d in me["devices"])


async def test_admin_login(api: Api) -> None:
    async with api.client() as c:
        r = await login(c, "root", ADMIN_PW)
        assert r.status_code == 200
        assert r.json()["kind"] == "admin" and r.json()["account"] is None
        assert (await c.get("/api/accounts/1000/bindings")).status_code == 200
        assert (await c.get("/api/me")).status_code == 404  # an admin has no account of its own


async def test_every_failure_gets_the_same_answer(api: Api) -> None:
    async with api.client() as c:
        answers = []
        for username, password in [("1000", "wrong-password"), ("9999", "whatever-pw"), ("root", "nope-nope"),
                                   ("nobody", "nope-nope"), ("", "x")]:
            r = await login(c, username, password)
            answers.append((r.status_code, r.json() if r.status_code == 401 else None))
        expected = (401, {"error": "invalid_login", "message": "Wrong number or password"})
        assert answers[:4] == [expected] * 4
        assert answers[4][0] == 422  # an empty username is a validation error naming the field


async def test_account_without_password_cannot_log_in(api: Api) -> None:
    await api.store.admin.add_account("1002", "Carol")
    async with api.client() as c:
        r = await login(c, "1002", "")
        assert r.status_code == 422
        r = await login(c, "1002", "anything-at-all")
        assert r.status_code == 401 and r.json()["error"] == "invalid_login"


async def test_unauthenticated_requests(api: Api) -> None:
    async with api.client() as c:
        for path in ("/api/me", "/api/me/history", "/api/me/webphone", "/api/accounts/1000/bindings"):
            r = await c.get(path)
            assert r.status_code == 401 and r.json() == {"error": "not_logged_in", "message": "Log in first"}, path
        assert (await c.get("/api/health")).status_code == 200  # public
        r = await c.get("/api/me", headers={"Authorization": "Bearer on_not-a-token"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"


async def test_throttled_after_repeated_failures_known_or_not(api: Api) -> None:
    async with api.client(host="127.0.0.9") as c:
        statuses = [(await login(c, "1000", "wrong-password")).status_code for _ in range(4)]
        assert statuses[:2] == [401, 401] and statuses[-1] == 429
        r = await login(c, "1000", ALICE_PW)  # even the right password waits
        assert r.status_code == 429 and r.json()["error"] == "throttled" and int(r.headers["retry-after"]) >= 1
        unknown = [(await login(c, "9998", "wrong-password")).status_code for _ in range(4)]
        assert unknown == statuses  # an unknown number is throttled the same way
    async with api.client(host="127.0.0.10") as other:  # another address is not blocked
        assert (await login(other, "1000", ALICE_PW)).status_code == 200
    api.clock.now += 3600
    async with api.client(host="127.0.0.9") as c:
        assert (await login(c, "1000", ALICE_PW)).status_code == 200


async def test_csrf_required_for_state_changes_by_cookie(api: Api) -> None:
    async with api.client() as c:
        csrf = (await login(c, "1000", ALICE_PW)).json()["csrf"]
        r = await c.put("/api/me/selected-device", json={"position": 1})
        assert r.status_code == 403 and r.json()["error"] == "csrf"
        r = await c.put("/api/me/selected-device", json={"position": 1}, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        r = await c.put("/api/me/selected-device", json={"position": 1}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert r.json()["ring_mode"] == "exclusive" and r.json()["selected_device"] == 1
        account = await api.store.admin.get_account("1000")
        assert account.selected_device == 1 and account.ring_mode == "exclusive"
        assert api.directory.accounts["1000"].selected_device == 1  # holds for the next call already
        r = await c.post("/api/logout")
        assert r.status_code == 403  # logout changes state too
        assert (await c.post("/api/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert (await c.get("/api/me")).status_code == 401


async def test_bearer_token_needs_no_csrf(api: Api) -> None:
    async with api.client(headers={"Authorization": f"Bearer {api.admin_token}"}) as c:
        assert (await c.get("/api/accounts/1000/bindings")).status_code == 200


async def test_selected_device_validation(api: Api) -> None:
    async with api.client() as c:
        csrf = (await login(c, "1000", ALICE_PW)).json()["csrf"]
        h = {"X-CSRF-Token": csrf}
        r = await c.put("/api/me/selected-device", json={"position": 9}, headers=h)
        assert r.status_code == 422 and r.json()["field"] == "position"
        r = await c.put("/api/me/selected-device", json={"position": 5}, headers=h)
        assert r.status_code == 404 and "position 5" in r.json()["message"]
        r = await c.put("/api/me/selected-device", json={"nope": 1}, headers=h)
        assert r.status_code == 422


async def test_session_slides_and_expires(api: Api) -> None:
    idle = api.logins.idle_seconds
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        for _ in range(3):  # used within the idle time: still alive past the first expiry
            api.clock.now += idle * 0.6
            assert (await c.get("/api/me")).status_code == 200
        api.clock.now += idle + 1
        assert (await c.get("/api/me")).status_code == 401
    async with api.store.read() as conn:
        from sqlalchemy import func, select

        from onenumber.store import tables as t

        assert await conn.scalar(select(func.count()).select_from(t.web_sessions)) == 0  # deleted when met


async def test_session_has_a_maximum_age(api: Api) -> None:
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        for _ in range(int(api.logins.max_age_seconds / (api.logins.idle_seconds * 0.5)) + 2):
            api.clock.now += api.logins.idle_seconds * 0.5
            if (await c.get("/api/me")).status_code == 401:
                break
        else:
            raise AssertionError("the session outlived its maximum age")
        assert api.clock.now - 1_800_000_000.0 <= api.logins.max_age_seconds + api.logins.idle_seconds


async def test_webphone_credential_is_per_session_and_revoked_on_logout(api: Api) -> None:
    async with api.client() as c:
        csrf = (await login(c, "1000", ALICE_PW)).json()["csrf"]
        cred = (await c.get("/api/me/webphone")).json()
        assert cred["ws_path"] == "/sip" and cred["number"] == "1000" and cred["display_name"] == "Alice"
        assert cred["auth_username"] == "1000_3" and len(cred["password"]) >= 20  # position 2: a new device
        devices = await api.store.admin.list_devices("1000")
        web = devices[-1]
        assert web.kind == "webphone" and web.secret != cred["password"]
        assert api.directory.devices_by_auth[web.auth_username] == web  # the gate knows it already
        assert api.credentials.passwords(web.auth_username) == [cred["password"]]
        again = (await c.get("/api/me/webphone")).json()
        assert again == cred  # a reload of the page gets the same one
        me = (await c.get("/api/me")).json()
        assert [d["kind"] for d in me["devices"]] == ["deskphone", "mobile", "webphone"]

        api.location.apply([Binding("1000", web.auth_username, "sip:x@abc.invalid;transport=ws", time.time() + 60,
                                    "ws", ("127.0.0.1", 5000), flow="f1")], [])
        api.location.apply([Binding("1000", "1000", "sip:d@127.0.0.1:5070", time.time() + 60, "udp",
                                    ("127.0.0.1", 5070))], [])
        assert (await c.post("/api/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert api.credentials.passwords(web.auth_username) == []
        assert [b.auth_username for b in api.location.get("1000")] == ["1000"]  # only the web phone's went
    async with api.client() as c2:  # another session: another password, same device
        await login(c2, "1000", ALICE_PW)
        other = (await c2.get("/api/me/webphone")).json()
        assert other["auth_username"] == cred["auth_username"] and other["password"] != cred["password"]
        assert len(await api.store.admin.list_devices("1000")) == 3


async def test_webphone_needs_a_free_slot(api: Api) -> None:
    for _ in range(6):
        await api.store.admin.add_device("1000", "softphone")
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        r = await c.get("/api/me/webphone")
        assert r.status_code == 409 and "8 devices" in r.json()["message"]


async def test_expired_session_revokes_the_webphone_credential_on_sweep(api: Api) -> None:
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        cred = (await c.get("/api/me/webphone")).json()
    api.clock.now += api.logins.idle_seconds + 1
    assert await api.logins.sweep() == 1
    assert api.credentials.passwords(cred["auth_username"]) == []


async def test_sessions_removed_by_the_cli_lose_their_credential_at_the_next_sweep(api: Api) -> None:
    from onenumber.store.logins import delete_sessions_of

    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        cred = (await c.get("/api/me/webphone")).json()
    await delete_sessions_of(api.store, "user", "1000")
    assert api.credentials.passwords(cred["auth_username"])
    await api.logins.sweep()
    assert api.credentials.passwords(cred["auth_username"]) == []


async def test_history_uses_incoming_and_outgoing(api: Api) -> None:
    from onenumber.store.history import HistoryRow, write_history

    await write_history(api.store, [
        HistoryRow("1000", "c1", "in", "1001", "Bob", 1_800_000_000.0, "answered", 1_800_000_003.0,
                   1_800_000_065.0, 62.0, "1000", 0),
        HistoryRow("1000", "c2", "out", "1001", "Bob", 1_800_000_100.0, "missed"),
        HistoryRow("1001", "c1", "out", "1000", "Alice", 1_800_000_000.0, "answered"),
    ])
    async with api.client() as c:
        await login(c, "1000", ALICE_PW)
        rows = (await c.get("/api/me/history")).json()
    assert [r["direction"] for r in rows] == ["outgoing", "incoming"]
    first = rows[1]
    assert first["started_at"] == "2027-01-15T08:00:00Z" and first["duration"] == 62 and first["device"] == "Desk"
    assert first["other_name"] == "Bob" and first["outcome"] == "answered"


async def test_html_forms_carry_the_csrf_token_as_a_field(api: Api) -> None:
    async with api.client() as c:
        csrf = (await login(c, "1000", ALICE_PW)).json()["csrf"]
        assert (await c.post("/api/logout", data={"csrf": "wrong"})).status_code == 403
        assert (await c.post("/api/logout", data={"csrf": csrf})).status_code == 204


async def test_cookies_are_secure_under_tls(api: Api) -> None:
    transport = httpx.ASGITransport(app=api.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await login(c, "1000", ALICE_PW)
        assert all("Secure" in h for h in r.headers.get_list("set-cookie"))
    api.app.state.ctx.secure_cookies = True  # `serve` with a certificate, behind anything
    async with api.client() as c:
        r = await login(c, "1000", ALICE_PW)
        assert all("Secure" in h for h in r.headers.get_list("set-cookie"))


async def test_demo_creates_an_admin_and_user_logins_once(api: Api) -> None:
    from onenumber.demo import format_logins, seed_demo, seed_logins
    from onenumber.store import Store

    store = await Store.open(f"sqlite:///{api.store.engine.url.database}-demo")
    try:
        await seed_demo(store)
        made = await seed_logins(store)
        assert set(made) == {"admin", "1000", "1001"} and all(len(p) >= 12 for p in made.values())
        assert await seed_logins(store) == {}  # printed once only
        text = format_logins(made, "http://localhost:8080")
        assert made["admin"] in text and "/phone" in text and "/api/docs" in text
    finally:
        await store.close()
