"""The web phone page against the real login API (nothing mocked): Chromium logs in with the
account's password, gets its session credential, registers over /sip, saves the device menu as
the `exclusive` selection, and logging out drops the binding. Screenshots: test-output/webphone-real/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from onenumber.web.pages import built

from .harness import Server, add_accounts
from .test_web_login import set_password
from .test_websocket import http_bindings, time_until_no_binding
from .wsua import wait_http

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright

from .test_webphone_page import CHROMIUM, CHROMIUM_FLAGS

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "webphone-real"
PASSWORD = "alice-web-password"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (scripts/install-peers.sh)"),
    pytest.mark.skipif(not built(), reason="the web phone is not built (make web)"),
]


def test_real_login_registers_selects_a_device_and_logout_drops_the_binding(server: Server) -> None:
    add_accounts(server, [("1000", "Alice", 1)])
    set_password(server, "1000", PASSWORD)
    wait_http(server)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            page.goto(f"http://127.0.0.1:{server.http_port}/phone")
            page.fill("#login-username", "1000")
            page.fill("#login-password", "not-the-password")
            page.click("#login-submit")
            expect(page.locator("#login-error")).to_have_text("Wrong number or password.")
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            expect(page.locator("#reg-state")).to_have_text("Registered", timeout=15_000)
            expect(page.locator("#me-name")).to_have_text("Alice")
            page.screenshot(path=str(OUTPUT / "01-registered.png"), full_page=True)
            [b] = http_bindings(server, "1000")
            assert b["transport"] == "ws" and b["auth_username"] == "1000_2", b  # the new web phone device
            devices = server.http_json("/api/accounts/1000/devices")
            assert [(d["position"], d["kind"]) for d in devices] == [(0, "deskphone"), (1, "webphone")]

            page.select_option("#device-select", "0")
            expect(page.locator("#device-note")).to_have_text("Saved")
            account = server.http_json("/api/accounts/1000")
            assert account["ring_mode"] == "exclusive" and account["selected_device"] == 0, account

            start = time.perf_counter()
            page.click("#logout")
            expect(page.locator("#login")).to_be_visible()
            elapsed = time_until_no_binding(server, "1000", start, limit=5.0)
            print(f"\nreal logout -> binding gone: {elapsed * 1000:.1f} ms")
            page.screenshot(path=str(OUTPUT / "02-logged-out.png"), full_page=True)
            # the old session's cookie is dead: the API answers 401 for it
            status = page.evaluate("fetch('/api/me').then(r => r.status)")
            assert status == 401
        finally:
            browser.close()
