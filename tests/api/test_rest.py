"""The admin REST API: every resource, RBAC, validation errors naming the field."""

from __future__ import annotations

import time

import httpx
import pytest

from onenumber.routing.model import Binding

from .conftest import ALICE_PW, BOB_PW, Api, login


def admin(api: Api) -> httpx.AsyncClient:
    return api.client(headers={"Authorization": f"Bearer {api.admin_token}"})


async def test_accounts_crud(api: Api) -> None:
    async with admin(api) as c:
        r = await c.post("/api/accounts", json={"number": "2000", "name": "Dora", "dids": ["+3225550100"]})
        assert r.status_code == 201, r.text
        assert r.json()["number"] == "2000" and r.json()["dids"] == ["+3225550100"]
        assert "2000" in api.directory.accounts  # the server sees it for the next call
        numbers = [a["number"] for a in (await c.get("/api/accounts")).json()]
        assert numbers == ["1000", "1001", "2000"]
        found = (await c.get("/api/accounts", params={"q": "dor"})).json()
        assert [a["number"] for a in found] == ["2000"]
        assert [a["number"] for a in (await c.get("/api/accounts", params={"q": "555"})).json()] == ["2000"]
        r = await c.patch("/api/accounts/2000", json={
            "ring_mode": "exclusive", "forward_busy": "voicemail", "dnd": True, "dids": ["+3225550101"],
            "stage_seconds": 15, "cli": "+3225550101", "name": "Dora D",
        })
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["ring_mode"], body["forward_busy"], body["dnd"], body["dids"], body["stage_seconds"],
                body["cli"], body["name"]) == ("exclusive", "voicemail", True, ["+3225550101"], 15,
                                               "+3225550101", "Dora D")
        assert (await c.patch("/api/accounts/2000", json={"forward_busy": None})).json()["forward_busy"] is None
        r = await c.patch("/api/accounts/2000", json={"voicemail_pin": "4321"})
        assert r.json()["voicemail_pin_set"] is True and "4321" not in r.text
        assert api.directory.accounts["2000"].voicemail_pin == "4321"  # what the voicemail service asks
        assert (await c.patch("/api/accounts/2000", json={"voicemail_pin": None})).json()["voicemail_pin_set"] is False
        assert (await c.get("/api/accounts/2000")).json()["name"] == "Dora D"
        api.location.apply([Binding("2000", "2000", "sip:d@127.0.0.1:5090", time.time() + 60, "udp",
                                    ("127.0.0.1", 5090))], [])
        assert (await c.delete("/api/accounts/2000")).status_code == 204
        assert api.location.get("2000") == []  # its registrations went with it
        r = await c.get("/api/accounts/2000")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert "2000" not in api.directory.accounts


async def test_devices_crud_never_list_the_secret(api: Api) -> None:
    async with admin(api) as c:
        r = await c.post("/api/accounts/1001/devices", json={"kind": "mobile", "label": "Bob's mobile",
                                                             "internet": True, "order": 2})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["position"] == 1 and made["auth_username"] == "1001_2" and len(made["secret"]) >= 20
        assert made["internet"] is True and made["order"] == 2
        listed = (await c.get("/api/accounts/1001/devices")).json()
        assert [d["position"] for d in listed] == [0, 1] and all("secret" not in d for d in listed)
        assert "secret" not in (await c.get("/api/accounts/1001/devices/1")).json()
        assert all("secret" not in d for d in (await c.get("/api/accounts/1001")).json()["devices"])
        r = await c.patch("/api/accounts/1001/devices/1", json={"enabled": False, "position": 5, "label": "old"})
        assert r.status_code == 200 and r.json()["position"] == 5 and r.json()["enabled"] is False
        assert api.directory.devices_by_auth["1001_2"].enabled is False
        assert (await c.delete("/api/accounts/1001/devices/5")).status_code == 204
        assert (await c.get("/api/accounts/1001/devices/5")).status_code == 404


async def test_bindings_are_read_only_and_ring_plan_explains(api: Api) -> None:
    api.location.apply([Binding("1000", "1000", "sip:a@127.0.0.1:5062", time.time() + 60, "udp",
                                ("127.0.0.1", 5062), user_agent="Desk/1.0")], [])
    async with admin(api) as c:
        [b] = (await c.get("/api/accounts/1000/bindings")).json()
        assert b["auth_username"] == "1000" and b["transport"] == "udp" and b["user_agent"] == "Desk/1.0"
        assert b["source"] == "127.0.0.1:5062" and 50 < b["expires"] <= 60
        assert (await c.post("/api/accounts/1000/bindings", json={})).status_code == 405
        plan = (await c.get("/api/accounts/1000/ring-plan")).json()
        rows = {r["position"]: r for r in plan["devices"]}
        assert rows[0]["rings"] is True and rows[1]["rings"] is False and "not registered" in rows[1]["reason"]
        assert plan["stages"][0]["contacts"][0]["contact"] == "sip:a@127.0.0.1:5062"
        assert plan["on_no_answer"]["text"]
        devices = (await c.get("/api/accounts/1000/devices")).json()
        assert [d["registered"] for d in devices] == [True, False]


async def test_history_trunks_settings(api: Api) -> None:
    from onenumber.store.history import HistoryRow, write_history

    await write_history(api.store, [HistoryRow("1001", "c1", "in", "1000", "Alice", 1_800_000_000.0, "missed")])
    async with admin(api) as c:
        [h] = (await c.get("/api/accounts/1001/history")).json()
        assert h["direction"] == "incoming" and h["outcome"] == "missed"
        assert (await c.get("/api/accounts/1001/history", params={"missed": True})).json() == [h]

        r = await c.post("/api/trunks", json={"name": "pstn", "host": "192.0.2.10", "prefix": "0"})
        assert r.status_code == 201 and r.json()["port"] == 5060
        assert [t["name"] for t in (await c.get("/api/trunks")).json()] == ["pstn"]
        assert api.directory.trunk_for("0123") is not None
        assert (await c.post("/api/trunks", json={"name": "pstn", "host": "192.0.2.11"})).status_code == 409
        assert (await c.delete("/api/trunks/pstn")).status_code == 204
        assert (await c.delete("/api/trunks/pstn")).status_code == 404

        settings = (await c.get("/api/settings")).json()
        assert "domain" in settings
        r = await c.put("/api/settings/domain", json={"value": "pbx.example.com"})
        assert r.status_code == 200 and r.json()["domain"] == "pbx.example.com"
        assert api.directory.settings.domain == "pbx.example.com"
        r = await c.put("/api/settings/domain", json={"value": "not a host!"})
        assert r.status_code == 400 and r.json()["field"] == "value"
        r = await c.put("/api/settings/nope", json={"value": "1"})
        assert r.status_code == 400 and r.json()["field"] == "key"
        assert (await c.delete("/api/settings/domain")).json()["domain"] is None


async def test_api_tokens(api: Api) -> None:
    async with admin(api) as c:
        r = await c.post("/api/tokens", json={"name": "billing", "role": "admin"})
        assert r.status_code == 201
        made = r.json()
        listed = (await c.get("/api/tokens")).json()
        assert [t["name"] for t in listed] == ["tests", "billing"] and all("token" not in t for t in listed)
        r = await c.post("/api/tokens", json={"name": "alice script", "role": "user", "account": "1000"})
        user_token = r.json()["token"]
        r = await c.post("/api/tokens", json={"name": "x", "role": "user"})
        assert r.status_code == 400 and r.json()["field"] == "account"
    async with api.client(headers={"Authorization": f"Bearer {made['token']}"}) as c2:
        assert (await c2.get("/api/accounts")).status_code == 200
    async with api.client(headers={"Authorization": f"Bearer {user_token}"}) as u:
        assert (await u.get("/api/me")).json()["number"] == "1000"
        assert (await u.get("/api/accounts")).status_code == 403
    async with admin(api) as c:
        assert (await c.delete(f"/api/tokens/{made['id']}")).json()["revoked_at"] is not None
    async with api.client(headers={"Authorization": f"Bearer {made['token']}"}) as c2:
        assert (await c2.get("/api/accounts")).status_code == 401


ADMIN_PATHS = [
    ("GET", "/api/accounts"), ("GET", "/api/accounts/{n}"), ("PATCH", "/api/accounts/{n}"),
    ("DELETE", "/api/accounts/{n}"), ("GET", "/api/accounts/{n}/devices"), ("POST", "/api/accounts/{n}/devices"),
    ("GET", "/api/accounts/{n}/devices/0"), ("PATCH", "/api/accounts/{n}/devices/0"),
    ("DELETE", "/api/accounts/{n}/devices/0"), ("GET", "/api/accounts/{n}/bindings"),
    ("GET", "/api/accounts/{n}/ring-plan"), ("GET", "/api/accounts/{n}/history"),
    ("PUT", "/api/accounts/{n}/password"), ("GET", "/api/trunks"), ("POST", "/api/trunks"),
    ("GET", "/api/settings"), ("PUT", "/api/settings/domain"), ("GET", "/api/tokens"), ("POST", "/api/tokens"),
]


@pytest.mark.parametrize("via", ["session", "token"])
async def test_a_user_reaches_no_other_account_and_cannot_tell_which_exist(api: Api, via: str) -> None:
    from onenumber.store.logins import create_api_token

    token, _ = await create_api_token(api.store, "bob", "user", "1001", now=0.0)
    headers = {"Authorization": f"Bearer {token}"} if via == "token" else {}
    async with api.client(headers=headers) as c:
        if via == "session":
            headers["X-CSRF-Token"] = (await login(c, "1001", BOB_PW)).json()["csrf"]
        for method, path in ADMIN_PATHS:
            answers = set()
            for number in ("1000", "1001", "4242"):  # another's, the own one, one that does not exist
                r = await c.request(method, path.format(n=number), json={}, headers=headers)
                answers.add((r.status_code, r.text))
            assert len(answers) == 1 and next(iter(answers))[0] == 403, (method, path, answers)
        assert (await c.get("/api/me", headers=headers)).json()["number"] == "1001"
    assert "1000" in api.directory.accounts and len(await api.store.admin.list_devices("1000")) == 2


async def test_validation_errors_name_the_field_in_api_terms(api: Api) -> None:
    async with admin(api) as c:
        cases = [
            ("POST", "/api/accounts", {"number": "12a", "name": "X"}, 422, "number"),
            ("POST", "/api/accounts", {"number": "3000"}, 422, "name"),
            ("POST", "/api/accounts", {"number": "3000", "name": "Q\"uote"}, 400, "name"),
            ("POST", "/api/accounts", {"number": "3000", "name": "X", "dids": ["abc"]}, 400, "dids"),
            ("POST", "/api/accounts", {"number": "1000", "name": "X"}, 409, None),
            ("PATCH", "/api/accounts/1000", {"ring_mode": "random"}, 422, "ring_mode"),
            ("PATCH", "/api/accounts/1000", {"forward_busy": "not a number"}, 400, "forward_busy"),
            ("PATCH", "/api/accounts/1000", {"forward_busy": "1000"}, 400, None),
            ("PATCH", "/api/accounts/1000", {"selected_device": 6}, 404, "selected_device"),
            ("PATCH", "/api/accounts/1000", {"stage_seconds": 0}, 422, "stage_seconds"),
            ("PATCH", "/api/accounts/1000", {"unknown": 1}, 422, "unknown"),
            ("POST", "/api/accounts/1000/devices", {"kind": "fax"}, 422, "kind"),
            ("POST", "/api/accounts/1000/devices", {"kind": "mobile", "position": 0}, 409, None),
            ("POST", "/api/accounts/1000/devices", {"kind": "mobile", "auth_username": "bad name"}, 400,
             "auth_username"),
            ("POST", "/api/accounts/1000/devices", {"kind": "mobile", "label": "a\x01"}, 400, "label"),
            ("PATCH", "/api/accounts/1000/devices/0", {"order": 100}, 422, "order"),
            ("POST", "/api/trunks", {"name": "t", "host": "bad host"}, 400, "host"),
            ("POST", "/api/trunks", {"name": "t", "host": "h.example", "transport": "sctp"}, 422, "transport"),
            ("PUT", "/api/accounts/1000/password", {"password": "short"}, 422, "password"),
            ("GET", "/api/accounts/1000/history?limit=0", None, 422, "limit"),
        ]
        for method, path, body, status, field in cases:
            r = await c.request(method, path, json=body)
            assert r.status_code == status, (method, path, body, r.text)
            data = r.json()
            assert set(data) >= {"error", "message"}, data
            if field is not None:
                assert data["field"] == field, (path, body, data)
            assert "--" not in data["message"] and "onenumber " not in data["message"], data
        r = await c.post("/api/accounts", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422


async def test_account_password_through_the_api_logs_the_user_out(api: Api) -> None:
    async with api.client() as user:
        await login(user, "1000", ALICE_PW)
        async with admin(api) as c:
            assert (await c.put("/api/accounts/1000/password", json={"password": "brand-new-pw"})).status_code == 204
        assert (await user.get("/api/me")).status_code == 401
        assert (await login(user, "1000", ALICE_PW)).status_code == 401
        assert (await login(user, "1000", "brand-new-pw")).status_code == 200


async def test_me_routes(api: Api) -> None:
    async with api.client() as c:
        csrf = (await login(c, "1000", ALICE_PW)).json()["csrf"]
        h = {"X-CSRF-Token": csrf}
        r = await c.patch("/api/me", json={"forward_no_answer": "voicemail", "dnd": True}, headers=h)
        assert r.status_code == 200 and r.json()["forward_no_answer"] == "voicemail" and r.json()["dnd"] is True
        r = await c.patch("/api/me", json={"dids": ["+3225550100"]}, headers=h)
        assert r.status_code == 422  # DIDs are an admin's to give
        r = await c.patch("/api/me", json={"dnd": False}, headers=h)
        assert r.json()["dnd"] is False
        assert r.json()["voicemail_pin_set"] is False
        r = await c.patch("/api/me", json={"voicemail_pin": "864209"}, headers=h)  # the box's own PIN
        assert r.status_code == 200 and r.json()["voicemail_pin_set"] is True and "864209" not in r.text
        assert (await api.store.admin.get_account("1000")).voicemail_pin == "864209"
        r = await c.patch("/api/me", json={"voicemail_pin": "12ab"}, headers=h)
        assert r.status_code == 422
        r = await c.patch("/api/me", json={"voicemail_pin": ""}, headers=h)  # back to the server-wide one
        assert r.json()["voicemail_pin_set"] is False

        r = await c.put("/api/me/device-order", json={"positions": [1, 0]}, headers=h)  # mobile above desk
        assert r.status_code == 200, r.text
        assert [(d["position"], d["order"]) for d in r.json()] == [(0, 2), (1, 1)]
        plan = (await c.get("/api/me/ring-plan")).json()
        assert plan["account"] == "1000" and {row["position"] for row in plan["devices"]} == {0, 1}
        r = await c.put("/api/me/device-order", json={"positions": [1]}, headers=h)
        assert r.status_code == 400 and r.json()["field"] == "positions"

        r = await c.patch("/api/me/devices/1", json={"enabled": False}, headers=h)
        assert r.status_code == 200 and r.json()["enabled"] is False
        r = await c.patch("/api/me/devices/1", json={"kind": "deskphone"}, headers=h)
        assert r.status_code == 422  # the kind is an admin's to change
        r = await c.patch("/api/me/devices/7", json={"enabled": False}, headers=h)
        assert r.status_code == 404
        assert [d["enabled"] for d in (await c.get("/api/me/devices")).json()] == [True, False]

        r = await c.post("/api/me/tokens", json={"name": "my script"}, headers=h)
        assert r.status_code == 201 and r.json()["role"] == "user" and r.json()["account"] == "1000"
        mine = (await c.get("/api/me/tokens")).json()
        assert [t["name"] for t in mine] == ["my script"]
        assert (await c.delete(f"/api/me/tokens/{mine[0]['id']}", headers=h)).json()["revoked_at"]
        assert (await c.delete("/api/me/tokens/1", headers=h)).status_code == 404  # the admin's, not mine

        r = await c.put("/api/me/password", json={"current_password": "wrong", "new_password": "another-pw"},
                        headers=h)
        assert r.status_code == 403 and r.json()["field"] == "current_password"
        r = await c.put("/api/me/password", json={"current_password": ALICE_PW, "new_password": "another-pw"},
                        headers=h)
        assert r.status_code == 204
        assert (await c.get("/api/me")).status_code == 200  # this session stays


async def test_openapi_and_offline_docs(api: Api) -> None:
    async with api.client() as c:
        schema = (await c.get("/api/openapi.json")).json()
        assert "/api/accounts/{number}/devices" in schema["paths"] and "/api/me" in schema["paths"]
        docs = await c.get("/api/docs")
        assert docs.status_code == 200 and "/api/docs/static/swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        js = await c.get("/api/docs/static/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert (await c.get("/api/docs/static/swagger-ui.css")).status_code == 200
