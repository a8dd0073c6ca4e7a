"""The login system on the real server: a browser session's web phone credential registers over
WebSocket, and after logout it no longer works and its binding is gone at once."""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from .harness import LOOPBACK, ONENUMBER, Server, add_accounts
from .test_websocket import http_bindings, time_until_no_binding
from .wsua import WsUA, wait_http

PASSWORD = "alice-web-password"


class Browser:
    """Cookies and the CSRF header, as the web phone page sends them."""

    def __init__(self, server: Server) -> None:
        self.base = f"http://{LOOPBACK}:{server.http_port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.csrf and method != "GET":
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None


def set_password(server: Server, number: str, password: str) -> None:
    subprocess.run([ONENUMBER, "account", "set-password", number, "--password-stdin", "--db", server.db],
                   input=password + "\n", text=True, check=True, capture_output=True, timeout=60)


def test_session_webphone_credential_registers_and_dies_with_logout(server: Server) -> None:
    add_accounts(server, [("1000", "Alice", 1)])
    set_password(server, "1000", PASSWORD)
    wait_http(server)
    browser = Browser(server)
    status, body = browser.call("POST", "/api/login", {"username": "1000", "password": "wrong-password"})
    assert status == 401 and body == {"error": "invalid_login", "message": "Wrong number or password"}
    status, body = browser.call("POST", "/api/login", {"username": "1000", "password": PASSWORD})
    assert status == 200 and body["kind"] == "user", body
    browser.csrf = body["csrf"]
    assert {c.name for c in browser.jar} == {"onenumber_session", "onenumber_csrf"}

    status, cred = browser.call("GET", "/api/me/webphone")
    assert status == 200 and cred["ws_path"] == "/sip", cred
    ua = WsUA(server)
    try:
        reply = ua.register("1000", (cred["auth_username"], cred["password"]))
        assert reply.status == 200, reply.raw
        [b] = http_bindings(server, "1000")
        assert b["auth_username"] == cred["auth_username"] and b["transport"] == "ws", b

        status, _ = browser.call("POST", "/api/logout")
        assert status == 204
        assert http_bindings(server, "1000") == []  # dropped before the logout answered
        assert browser.call("GET", "/api/me")[0] == 401
    finally:
        ua.close()

    again = WsUA(server)
    try:
        reply = again.register("1000", (cred["auth_username"], cred["password"]))
        assert reply.status in (401, 403), reply.raw
        assert http_bindings(server, "1000") == []
    finally:
        again.close()


def test_a_password_set_with_the_cli_revokes_the_session_credential_at_once(server: Server) -> None:
    """The CLI ends the account's sessions in the database, behind the server's back; the change
    is announced (configuration revision), so the server revokes their web phone credentials and
    drops the binding within a second or two, not at its next periodic sweep (60 s)."""
    add_accounts(server, [("1000", "Alice", 1)])
    set_password(server, "1000", PASSWORD)
    wait_http(server)
    browser = Browser(server)
    status, body = browser.call("POST", "/api/login", {"username": "1000", "password": PASSWORD})
    assert status == 200, body
    browser.csrf = body["csrf"]
    status, cred = browser.call("GET", "/api/me/webphone")
    assert status == 200, cred
    ua = WsUA(server)
    try:
        assert ua.register("1000", (cred["auth_username"], cred["password"])).status == 200
        start = time.perf_counter()
        set_password(server, "1000", "a-new-password")
        gone = time_until_no_binding(server, "1000", start, limit=5.0)
        print(f"\nCLI set-password -> web phone binding gone: {gone * 1000:.0f} ms (CLI run included)")
        reply = ua.register("1000", (cred["auth_username"], cred["password"]))
        assert reply.status in (401, 403), reply.raw
    finally:
        ua.close()


def test_selected_device_through_the_api_holds_for_the_next_call(server: Server) -> None:
    add_accounts(server, [("1000", "Alice", 2)])
    set_password(server, "1000", PASSWORD)
    wait_http(server)
    browser = Browser(server)
    status, body = browser.call("POST", "/api/login", {"username": "1000", "password": PASSWORD})
    assert status == 200
    browser.csrf = body["csrf"]
    status, me = browser.call("PUT", "/api/me/selected-device", {"position": 1})
    assert status == 200 and me["ring_mode"] == "exclusive" and me["selected_device"] == 1, me
    plan = server.http_json("/api/accounts/1000/ring-plan")  # the API reloaded: no wait
    reasons = {r["position"]: r["reason"] for r in plan["devices"]}
    assert reasons[1] == "selected device not registered", plan  # nothing registered in this test
