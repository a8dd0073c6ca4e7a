"""End-to-end: the web phone page (/phone) in the distribution's Chromium, driven by Playwright.

The login API (POST /api/login, GET /api/me, /api/me/webphone, /api/me/history, PUT
/api/me/selected-device, POST /api/logout) is another issue's work: here Playwright answers
those requests exactly as the contract says, handing the page a real device credential of the
running server. Everything else is real: the page's JsSIP registers over the server's `/sip`
WebSocket, a SIPp caller rings it through the proxy, the page answers, sends a DTMF tone,
hangs up, declines, and the tab is closed (close-to-binding-gone is measured).
Screenshots of each state go to test-output/webphone/ (git-ignored) at the repository root.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from onenumber.web.pages import built

from .harness import Device, Server, SippPeer, add_accounts, place_call
from .test_websocket import http_bindings, time_until_no_binding
from .wsua import wait_http

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "webphone"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (scripts/install-peers.sh)"),
    pytest.mark.skipif(not built(), reason="the web phone is not built (make web)"),
]


@dataclass
class Contract:
    """The login/me API of the contract, answered in the browser by Playwright."""

    webphone: dict[str, Any]
    me: dict[str, Any]
    history: list[dict[str, Any]]
    password: str = "right-password"
    csrf: str = "csrf-token-123"
    logged_in: bool = False
    failures: int = 0
    puts: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    logouts: int = 0

    def handle(self, route: Route) -> None:
        req = route.request
        path = req.url.split("//", 1)[1].split("/", 1)[1].split("?")[0]
        path = "/" + path
        method = req.method

        def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> None:
            route.fulfill(status=status, content_type="application/json", headers=headers or {},
                          body="" if body is None else json.dumps(body))

        if path == "/api/login" and method == "POST":
            body = json.loads(req.post_data or "{}")
            if self.failures >= 3:
                return reply(429, {"error": "throttled", "message": "Too many attempts"})
            if body.get("username") == self.me["number"] and body.get("password") == self.password:
                self.logged_in = True
                return reply(200, {"kind": "user", "account": self.me["number"], "name": self.me["name"],
                                   "csrf": self.csrf},
                             {"Set-Cookie": f"onenumber_csrf={self.csrf}; Path=/; SameSite=Strict"})
            self.failures += 1
            return reply(401, {"error": "invalid_login", "message": "Wrong number or password"})
        if not self.logged_in:
            return reply(401, {"error": "not_logged_in", "message": "Log in first"})
        if path == "/api/me" and method == "GET":
            return reply(200, self.me)
        if path == "/api/me/webphone" and method == "GET":
            return reply(200, self.webphone)
        if path == "/api/me/history" and method == "GET":
            return reply(200, self.history)
        if path == "/api/me/selected-device" and method == "PUT":
            body = json.loads(req.post_data or "{}")
            self.puts.append((body, req.headers.get("x-csrf-token")))
            if req.headers.get("x-csrf-token") != self.csrf:
                return reply(403, {"error": "csrf", "message": "Missing CSRF token"})
            self.me = {**self.me, "selected_device": body["position"], "ring_mode": "exclusive"}
            return reply(200, self.me)
        if path == "/api/logout" and method == "POST":
            self.logouts += 1
            self.logged_in = False
            return reply(204)
        return route.continue_()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def accounts(server: Server) -> dict[str, list[Device]]:
    # Playwright's sync API keeps an event loop running in this thread: the store work goes to another
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(add_accounts, server, [("1000", "Alice", 2), ("1001", "Bob", 1)]).result()
    return {"alice": made["1000"], "bob": made["1001"]}


def make_contract(server: Server, web_device: Device, desk: Device) -> Contract:
    return Contract(
        webphone={"auth_username": web_device.auth_username, "password": web_device.secret, "realm": "onenumber",
                  "domain": "127.0.0.1", "ws_path": "/sip", "display_name": "Alice", "number": "1000"},
        me={"number": "1000", "name": "Alice", "ring_mode": "exclusive", "selected_device": web_device.position,
            "devices": [{"position": desk.position, "kind": "deskphone", "label": "Desk"},
                        {"position": web_device.position, "kind": "webphone", "label": "Web phone"}]},
        history=[
            {"direction": "incoming", "other_number": "1001", "other_name": "Bob",
             "started_at": "2026-11-25T09:00:00Z", "answered_at": "2026-11-25T09:00:03Z",
             "ended_at": "2026-11-25T09:01:05Z", "duration": 62, "device": "Desk", "outcome": "answered"},
            {"direction": "incoming", "other_number": "1002", "other_name": "Carol",
             "started_at": "2026-11-25T10:00:00Z", "answered_at": None, "ended_at": "2026-11-25T10:00:20Z",
             "duration": 0, "device": None, "outcome": "missed"},
        ],
    )


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def open_page(browser: Browser, server: Server, contract: Contract, width: int = 1100) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.route("**/api/**", contract.handle)
    wait_http(server)
    page.goto(f"http://127.0.0.1:{server.http_port}/phone")
    return page


def sipp_call(server: Server, bob: Device, scenario: str, workdir: Path, name: str) -> SippPeer:
    return place_call(server, bob, "1000", scenario, workdir, from_user="1001", background=True, name=name)


def test_page_logs_in_registers_rings_answers_and_drops_the_binding_on_close(
    server: Server, accounts: dict[str, list[Device]], browser: Browser, tmp_path: Path
) -> None:
    desk, web = accounts["alice"]
    bob = accounts["bob"][0]
    contract = make_contract(server, web, desk)
    page = open_page(browser, server, contract)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    callers: list[SippPeer] = []
    try:
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#reg-state")).to_have_text("Signed out")
        shot(page, "01-login")

        page.fill("#login-username", "1000")
        page.fill("#login-password", "wrong")
        page.press("#login-password", "Enter")  # keyboard: Enter submits
        expect(page.locator("#login-error")).to_have_text("Wrong number or password.")
        shot(page, "02-wrong-password")

        page.fill("#login-password", contract.password)
        page.click("#login-submit")
        expect(page.locator("#phone")).to_be_visible()
        expect(page.locator("#reg-state")).to_have_text("Registered", timeout=10_000)
        expect(page.locator("#me-name")).to_have_text("Alice")
        [b] = http_bindings(server, "1000")
        assert b["transport"] == "ws" and b["auth_username"] == web.auth_username and ".invalid" in b["contact"], b
        expect(page.locator("#history li")).to_have_count(2)
        expect(page.locator("#history")).to_contain_text("Bob (1001)")
        expect(page.locator("#device-select")).to_have_value(str(web.position))
        shot(page, "03-registered")

        # an incoming call: name and number shown, answer, a DTMF tone, hang up from the page
        caller = sipp_call(server, bob, "call_webrtc_sdp.xml", tmp_path / "peers", "bob-call")
        callers.append(caller)
        expect(page.locator("#incoming")).to_be_visible(timeout=10_000)
        expect(page.locator("#incoming-name")).to_have_text("Bob")
        expect(page.locator("#incoming-number")).to_have_text("1001")
        expect(page.locator("#answer")).to_be_focused()
        shot(page, "04-incoming")
        page.click("#answer")
        expect(page.locator("#incall")).to_be_visible(timeout=10_000)
        expect(page.locator("#call-status")).to_have_text("In call", timeout=10_000)
        page.click("#mute")
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
        page.click("#keypad-toggle")
        page.click("#dtmf button[data-key='5']")
        time.sleep(1.2)  # the timer ticks
        expect(page.locator("#call-timer")).not_to_have_text("0:00")
        shot(page, "05-in-call")
        page.click("#hangup")
        expect(page.locator("#incall")).to_be_hidden(timeout=5_000)
        assert caller.wait(10) == 0, caller.describe() + server.log()[-3000:]
        infos = caller.received("INFO")
        assert infos and "Signal=5" in infos[0].text, [m.text for m in caller.messages()]

        # a second call, declined from the page
        decl = sipp_call(server, bob, "call_decline.xml", tmp_path / "peers", "bob-declined")
        callers.append(decl)
        expect(page.locator("#incoming")).to_be_visible(timeout=10_000)
        page.click("#decline")
        expect(page.locator("#incoming")).to_be_hidden()
        assert decl.wait(10) == 0, decl.describe() + server.log()[-3000:]

        # the device menu saves the exclusive selection, with the CSRF header
        page.select_option("#device-select", str(desk.position))
        expect(page.locator("#device-note")).to_have_text("Saved")
        assert contract.puts == [({"position": desk.position}, contract.csrf)]
        page.set_viewport_size({"width": 375, "height": 800})
        shot(page, "06-phone-width")
        assert not errors, errors

        # the tab closes (no logout): the binding is gone at once
        start = time.perf_counter()
        page.close()
        elapsed = time_until_no_binding(server, "1000", start, limit=5.0)
        print(f"\nbrowser tab closed -> binding gone: {elapsed * 1000:.1f} ms")
        assert elapsed < 1.0
    finally:
        for c in callers:
            c.stop()
        if not page.is_closed():
            page.close()


def test_logout_unregisters_and_returns_to_login(
    server: Server, accounts: dict[str, list[Device]], browser: Browser
) -> None:
    desk, web = accounts["alice"]
    contract = make_contract(server, web, desk)
    page = open_page(browser, server, contract, width=375)
    try:
        page.fill("#login-username", "1000")
        page.fill("#login-password", contract.password)
        page.click("#login-submit")
        expect(page.locator("#reg-state")).to_have_text("Registered", timeout=10_000)
        start = time.perf_counter()
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
        elapsed = time_until_no_binding(server, "1000", start, limit=5.0)
        print(f"\nlogout -> binding gone: {elapsed * 1000:.1f} ms")
        assert contract.logouts == 1
        shot(page, "07-logged-out")
    finally:
        page.close()


def test_throttled_and_unreachable_messages(
    server: Server, accounts: dict[str, list[Device]], browser: Browser
) -> None:
    desk, web = accounts["alice"]
    contract = make_contract(server, web, desk)
    contract.failures = 3
    page = open_page(browser, server, contract)
    try:
        page.fill("#login-username", "1000")
        page.fill("#login-password", "whatever")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("Too many failed attempts")
        shot(page, "08-throttled")
        page.unroute("**/api/**")
        page.route("**/api/**", lambda route: route.abort("connectionrefused"))
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("Server unreachable")
        shot(page, "09-unreachable")
    finally:
        page.close()


def test_connection_lost_is_shown_and_recovers(
    server: Server, accounts: dict[str, list[Device]], browser: Browser
) -> None:
    """The server goes away: 'connection lost — retrying'; it comes back: registered again (JsSIP back-off)."""
    desk, web = accounts["alice"]
    contract = make_contract(server, web, desk)
    page = open_page(browser, server, contract)
    try:
        page.fill("#login-username", "1000")
        page.fill("#login-password", contract.password)
        page.click("#login-submit")
        expect(page.locator("#reg-state")).to_have_text("Registered", timeout=10_000)
        server.stop()
        expect(page.locator("#reg-state")).to_contain_text("Connection lost — retrying", timeout=10_000)
        expect(page.locator("#error")).to_contain_text("retrying")
        shot(page, "10-connection-lost")
        server.start()
        expect(page.locator("#reg-state")).to_have_text("Registered", timeout=40_000)
        expect(page.locator("#error")).to_be_hidden()
    finally:
        page.close()
