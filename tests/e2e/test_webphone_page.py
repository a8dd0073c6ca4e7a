"""End-to-end: the web phone page (/phone) in the distribution's Chromium, against the real server.

Nothing is mocked: the page logs in with the account's password (set with the CLI), gets its
session SIP credential from `/api/me/webphone`, registers over `/sip`, and real baresip phones
call it and are called by it through the proxy and rtpengine (`onenumber serve` starts its own).
Screenshots of each state go to test-output/webphone/ (git-ignored) at the repository root.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from onenumber.web.pages import built

from .baresip import Baresip, wav_peak
from .harness import Device, Server, add_accounts, place_call, start_device, wait_config
from .test_web_login import Browser as ApiClient
from .test_web_login import set_password
from .test_websocket import http_bindings, time_until_no_binding
from .wsua import WsUA, wait_http

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection",
    # one browser serves every test: a page must not be treated as a background tab (media deferred)
    "--disable-renderer-backgrounding", "--disable-background-media-suspend", "--disable-background-timer-throttling",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "webphone"
ALICE_PW = "alice-web-password"
BOB_PW = "bob-web-password"
SILENCE = 500  # a recording whose peak sample is below this heard nothing
GREETING = Path(__file__).resolve().parents[2] / "data" / "greeting-default.wav"  # make greeting

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (scripts/install-peers.sh)"),
    pytest.mark.skipif(not built(), reason="the web phone is not built (make web)"),
]

# the page's current call: packets in and out of its RTCPeerConnection (getStats)
STATS = """async () => {
  const p = window.OneNumberPhone && window.OneNumberPhone.phone;
  const pc = p && p.session && p.session.connection;
  if (!pc) return null;
  const stats = await pc.getStats();
  let received = 0, sent = 0;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') received += s.packetsReceived || 0;
    if (s.type === 'outbound-rtp' && s.kind === 'audio') sent += s.packetsSent || 0;
  });
  return { received, sent, state: pc.connectionState };
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    for old in OUTPUT.glob("*.png"):  # this run's screenshots only
        old.unlink()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Office:
    server: Server
    desk: Device  # Alice's deskphone (position 0); her web phone is created at her first login
    bob: Device
    carol: Device  # 1002, a colleague whose presence the page shows
    tmp: Path

    def phone(self, name: str, device: Device, **kw: Any) -> Baresip:
        phone = Baresip(self.tmp / name, self.server, device.account, device.auth_username, device.secret,
                        **kw)
        phone.start()
        phone.wait_registered()
        return phone

    def account(self, number: str = "1000") -> dict[str, Any]:
        found = self.server.http_json(f"/api/accounts/{number}")
        assert isinstance(found, dict)
        return found


@pytest.fixture
def office(server: Server, tmp_path: Path) -> Office:
    """1000 Alice (a deskphone, `exclusive` mode) and 1001 Bob, both with a login password; 1002 Carol."""
    # Playwright's sync API keeps an event loop running in this thread: the store work goes to another
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(add_accounts, server, [("1000", "Alice", 1), ("1001", "Bob", 1),
                                                  ("1002", "Carol", 1)]).result()
    server.cli("account", "update", "1000", "--ring-mode", "exclusive")
    set_password(server, "1000", ALICE_PW)
    set_password(server, "1001", BOB_PW)
    wait_config(server)
    wait_http(server)
    return Office(server, made["1000"][0], made["1001"][0], made["1002"][0], tmp_path)


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def open_page(browser: Browser, server: Server, width: int = 1100) -> Page:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"http://127.0.0.1:{server.http_port}/phone")
    return page


def log_in(page: Page, number: str, password: str) -> None:
    page.fill("#login-username", number)
    page.fill("#login-password", password)
    page.press("#login-password", "Enter")  # keyboard: Enter submits
    expect(page.locator("#phone")).to_be_visible(timeout=10_000)
    # generous: a loaded machine may answer 503 + Retry-After (overload control); the page retries
    expect(page.locator("#reg-state")).to_have_text("Registered", timeout=30_000)


def stats(page: Page) -> dict[str, Any]:
    found = page.evaluate(STATS)
    assert found is not None, "no call in the page"
    return dict(found)


def wait_audio_in(page: Page, more_than: int, seconds: float = 15.0) -> dict[str, Any]:
    """Wait until the page's call has received more than `more_than` RTP packets."""
    deadline = time.monotonic() + seconds
    now = stats(page)
    while now["received"] <= more_than and time.monotonic() < deadline:
        time.sleep(0.25)
        now = stats(page)
    assert now["received"] > more_than, now
    return now


def rang(phone: Baresip) -> int:
    """How many calls rang this phone so far."""
    return sum(1 for e in phone.events() if e.get("type") == "CALL_INCOMING")


def no_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def sip_frames(page: Page) -> list[str]:
    """Every SIP message the page sends or receives over its WebSocket (for failure messages)."""
    frames: list[str] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: frames.append(f">> {payload}"))
        ws.on("framereceived", lambda payload: frames.append(f"<< {payload}"))

    page.on("websocket", on_socket)
    return frames


def test_only_the_browser_rings_audio_both_ways_dtmf_hold_mute_and_hang_up_either_side(
    office: Office, browser: Browser
) -> None:
    server = office.server
    desk = office.phone("desk", office.desk)
    bob = office.phone("bob", office.bob, record=True, tone_seconds=60)
    page = open_page(browser, server)
    errors = no_errors(page)
    frames = sip_frames(page)
    try:
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-username")).to_be_focused()
        shot(page, "01-login")
        log_in(page, "1000", ALICE_PW)
        expect(page.locator("#me-name")).to_have_text("Alice")
        web = next(b for b in http_bindings(server, "1000") if b["transport"] == "ws")
        assert ".invalid" in web["contact"], web
        account = office.account()
        positions = {d["kind"]: d["position"] for d in account["devices"]}
        # exclusive mode with the web phone selected (its first login selected it)
        assert account["ring_mode"] == "exclusive" and account["selected_device"] == positions["webphone"], account
        expect(page.locator("#device-select")).to_have_value(str(positions["webphone"]))
        shot(page, "02-registered")

        # Bob calls: only the browser rings
        bob.dial(f"sip:1000@{server.address}")
        expect(page.locator("#incoming")).to_be_visible(timeout=10_000)
        expect(page.locator("#incoming-name")).to_have_text("Bob")
        expect(page.locator("#incoming-number")).to_have_text("1001")
        expect(page.locator("#answer")).to_be_focused()
        shot(page, "03-incoming")
        page.keyboard.press("Enter")  # the focused Answer button
        bob.wait_event("CALL_ESTABLISHED", timeout=15)
        expect(page.locator("#call-status")).to_have_text("In call", timeout=10_000)
        first = wait_audio_in(page, 25)
        time.sleep(1.0)
        later = wait_audio_in(page, first["received"] + 25)
        print(f"\nbrowser in a call with baresip via rtpengine: received {first['received']} -> "
              f"{later['received']} packets, sent {later['sent']}; pc {later['state']}")
        assert later["sent"] > 25 and later["state"] == "connected", later
        expect(page.locator("#call-timer")).not_to_have_text("0:00")
        shot(page, "04-in-call")

        # DTMF from the keypad reaches baresip (JsSIP sends SIP INFO by default; the proxy relays it)
        page.click("#keypad-toggle")
        expect(page.locator("#dtmf")).to_be_visible()
        page.click("#dtmf button[data-key='5']")
        try:
            dtmf = bob.wait_event(lambda e: str(e.get("type", "")).startswith("CALL_DTMF"), timeout=10)
        except AssertionError:
            firsts = "\n".join(f.split("\r\n")[0] for f in frames)
            raise AssertionError(firsts + "\n" + "\n".join(f for f in frames if "INFO sip" in f)) from None
        assert "5" in str(dtmf.get("param")), dtmf
        shot(page, "05-keypad")
        # and RFC 4733 telephone-events in the media (what JsSIP sends when asked): through rtpengine
        page.evaluate("window.OneNumberPhone.phone.session.sendDTMF('7', { transportType: 'RFC2833' })")
        event = bob.wait_event(lambda e: str(e.get("type", "")) == "CALL_DTMF_START" and "7" in str(e.get("param")),
                               timeout=10)
        assert not any(f.startswith(">> INFO") and "Signal=7" in f for f in frames), "sent as INFO"
        print(f"RFC 4733 event from the browser reached baresip: {event.get('param')}")

        # hold and resume: re-INVITEs through the proxy and rtpengine; audio flows again after
        page.click("#hold")
        expect(page.locator("#call-status")).to_have_text("On hold", timeout=10_000)
        expect(page.locator("#hold")).to_have_attribute("aria-pressed", "true")
        shot(page, "06-on-hold")
        page.click("#hold")
        expect(page.locator("#call-status")).to_have_text("In call", timeout=10_000)
        resumed = stats(page)["received"]
        wait_audio_in(page, resumed + 25)
        page.click("#mute")
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#mute")).to_have_text("Unmute")
        shot(page, "07-muted")
        page.click("#mute")
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "false")

        page.click("#hangup")  # hang up from the browser
        bob.wait_event("CALL_CLOSED", timeout=10)
        expect(page.locator("#incall")).to_be_hidden(timeout=5_000)
        assert not rang(desk), desk.events()
        recording = bob.recording_path()
        assert recording is not None, bob.log()
        peak = wav_peak(recording)
        print(f"baresip heard the browser: peak sample {peak}")
        assert peak > SILENCE, peak

        # a second call, hung up by Bob this time
        bob.dial(f"sip:1000@{server.address}")
        expect(page.locator("#incoming")).to_be_visible(timeout=10_000)
        page.click("#answer")
        bob.wait_event("CALL_ESTABLISHED", timeout=15)
        expect(page.locator("#incall")).to_be_visible()
        bob.hangup()
        expect(page.locator("#incall")).to_be_hidden(timeout=10_000)
        expect(page.locator("#dialer")).to_be_visible()
        assert not rang(desk), desk.events()

        # a third call, declined with the keyboard (Escape)
        bob.dial(f"sip:1000@{server.address}")
        expect(page.locator("#incoming")).to_be_visible(timeout=10_000)
        page.keyboard.press("Escape")
        expect(page.locator("#incoming")).to_be_hidden(timeout=5_000)
        bob.wait_event("CALL_CLOSED", timeout=10)
        assert not rang(desk), desk.events()
        assert not errors, errors
    finally:
        page.close()
        bob.stop()
        desk.stop()


def test_device_menu_outgoing_identity_history_and_fallback_when_the_tab_closes(
    office: Office, browser: Browser
) -> None:
    server = office.server
    desk = office.phone("desk", office.desk)
    bob = office.phone("bob", office.bob, tone_seconds=60)
    page = open_page(browser, server)
    errors = no_errors(page)
    try:
        log_in(page, "1000", ALICE_PW)
        web_position = office.account()["selected_device"]

        # the device menu: the deskphone, saved on the server; the next call rings it, not the browser
        page.select_option("#device-select", str(office.desk.position))
        expect(page.locator("#device-note")).to_have_text("Saved")
        account = office.account()
        assert (account["ring_mode"], account["selected_device"]) == ("exclusive", office.desk.position), account
        bob.dial(f"sip:1000@{server.address}")
        desk.wait_event("CALL_INCOMING", timeout=10)
        time.sleep(0.5)
        expect(page.locator("#incoming")).to_be_hidden()
        shot(page, "08-deskphone-selected")
        bob.hangup()
        desk.wait_event("CALL_CLOSED", timeout=10)
        bob.wait_event("CALL_CLOSED", timeout=10)
        page.select_option("#device-select", str(web_position))
        expect(page.locator("#device-note")).to_have_text("Saved")

        # the browser calls Bob: he sees the account's number and name (typed on the keyboard)
        page.click("#number")
        page.keyboard.type("1001")
        page.keyboard.press("Enter")
        incoming = bob.wait_event("CALL_INCOMING", timeout=10)
        print(f"\nbaresip 1001 sees the browser's call as: {json.dumps(incoming)}")
        assert "sip:1000@" in str(incoming.get("peeruri")), incoming
        assert incoming.get("peerdisplayname") == "Alice", incoming
        expect(page.locator("#call-status")).to_have_text("Ringing…", timeout=10_000)
        shot(page, "09-calling")
        bob.accept()
        expect(page.locator("#call-status")).to_have_text("In call", timeout=10_000)
        wait_audio_in(page, 25)
        bob.hangup()
        expect(page.locator("#incall")).to_be_hidden(timeout=10_000)

        # the merged history: Bob's calls in and the call out, newest first
        expect(page.locator("#history li")).to_have_count(2, timeout=10_000)
        expect(page.locator("#history li").first).to_contain_text("↗ Bob (1001)")
        expect(page.locator("#history li").nth(1)).to_contain_text("↙ Bob (1001)")
        page.set_viewport_size({"width": 375, "height": 800})
        shot(page, "10-history-phone-width")
        page.set_viewport_size({"width": 1100, "height": 900})

        # the tab closes (no logout) while the browser rings: the deskphone rings at once
        bob.dial(f"sip:1000@{server.address}")
        expect(page.locator("#incoming")).to_be_visible(timeout=10_000)
        assert rang(desk) == 1  # only the call when it was selected
        assert not errors, errors
        start = time.perf_counter()
        page.close()
        gone = ringing = None
        while (gone is None or ringing is None) and time.perf_counter() - start < 5.0:
            now = time.perf_counter() - start
            if gone is None and not any(b["transport"] == "ws" for b in http_bindings(server, "1000")):
                gone = now
            if ringing is None and rang(desk) == 2:
                ringing = now
            time.sleep(0.005)
        print(f"tab closed while ringing: web binding gone after {gone and gone * 1000:.0f} ms, "
              f"deskphone ringing after {ringing and ringing * 1000:.0f} ms")
        assert gone is not None and ringing is not None, (gone, ringing, desk.events())
        desk.wait_event("CALL_INCOMING", timeout=1)
        assert ringing < 1.0, ringing
        assert [b["transport"] for b in http_bindings(server, "1000")] == ["udp"]
        desk.accept()
        bob.wait_event("CALL_ESTABLISHED", timeout=10)
        bob.hangup()
    finally:
        if not page.is_closed():
            page.close()
        bob.stop()
        desk.stop()


def test_wrong_password_throttling_and_accounts_kept_apart(office: Office, browser: Browser) -> None:
    server = office.server
    server.cli("settings", "set", "auth_max_failures", "3")
    wait_config(server)
    page = open_page(browser, server, width=375)  # phone width
    try:
        page.fill("#login-username", "1000")
        page.fill("#login-password", "wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_have_text("Wrong number or password.")
        shot(page, "11-wrong-password")
        for _ in range(4):
            page.click("#login-submit")
            page.wait_for_timeout(200)
        expect(page.locator("#login-error")).to_contain_text("Too many failed attempts")
        shot(page, "12-throttled")
        # throttled means throttled: the right password is refused too, for now
        page.fill("#login-password", ALICE_PW)
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("Too many failed attempts")
    finally:
        page.close()

    # a session of one account never registers as another
    alice, bob = ApiClient(server), ApiClient(server)
    for client, number, password in ((alice, "1000", ALICE_PW), (bob, "1001", BOB_PW)):
        deadline = time.monotonic() + 90  # the throttle above blocks 1000's logins for a while
        while True:
            status, body = client.call("POST", "/api/login", {"username": number, "password": password})
            if status != 429 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert status == 200, body
        client.csrf = body["csrf"]
    _, alice_cred = alice.call("GET", "/api/me/webphone")
    _, bob_cred = bob.call("GET", "/api/me/webphone")
    assert alice_cred["number"] == "1000" and bob_cred["number"] == "1001"
    assert alice_cred["auth_username"].startswith("1000") and bob_cred["auth_username"].startswith("1001")
    assert bob.call("GET", "/api/me/webphone?account=1000")[1]["number"] == "1001"  # no way to name another
    ua = WsUA(server)
    try:
        wrong = ua.register("1001", (alice_cred["auth_username"], alice_cred["password"]))
        assert wrong.status == 403, wrong.raw
        wrong = ua.register("1000", (bob_cred["auth_username"], bob_cred["password"]))
        assert wrong.status == 403, wrong.raw
        wrong = ua.register("1000", (alice_cred["auth_username"], bob_cred["password"]))
        assert wrong.status in (401, 403), wrong.raw
        assert http_bindings(server, "1000") == [] and http_bindings(server, "1001") == []
        right = ua.register("1000", (alice_cred["auth_username"], alice_cred["password"]))
        assert right.status == 200, right.raw
    finally:
        ua.close()


def test_typing_before_the_session_check_answers_stays_where_it_was_typed(
    office: Office, browser: Browser
) -> None:
    """The page checks for an earlier session at load and shows the sign-in form when there is
    none; a user already typing then must keep their focus (it once moved the password into the
    Number field). The check is held back here until both fields are filled."""
    server = office.server
    held: list[Any] = []
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.route("**/api/me/webphone", lambda route: held.append(route))
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.http_port}/phone")
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert held, "the page did not check for a session at load"
        page.fill("#login-username", "1000")
        page.click("#login-password")  # the user moves on to the password…
        context.unroute("**/api/me/webphone")
        held.pop().fallback()  # …when the check answers (401: no session)
        page.wait_for_function("() => document.body.dataset.booted === '1'")
        page.keyboard.type(ALICE_PW)  # and goes on typing where they were
        assert page.input_value("#login-username") == "1000"
        assert page.input_value("#login-password") == ALICE_PW
        page.press("#login-password", "Enter")
        expect(page.locator("#phone")).to_be_visible(timeout=10_000)
    finally:
        context.close()


def test_logout_and_unreachable_server(office: Office, browser: Browser) -> None:
    server = office.server
    page = open_page(browser, server, width=375)
    try:
        log_in(page, "1000", ALICE_PW)
        shot(page, "13-registered-phone-width")
        start = time.perf_counter()
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
        elapsed = time_until_no_binding(server, "1000", start, limit=5.0)
        print(f"\nlogout -> binding gone: {elapsed * 1000:.1f} ms")
        expect(page.locator("#reg-state")).to_have_text("Signed out")
        assert page.evaluate("fetch('/api/me/webphone').then(r => r.status)") == 401
        shot(page, "14-logged-out")
        server.stop()
        page.fill("#login-username", "1000")
        page.fill("#login-password", ALICE_PW)
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("Server unreachable")
        shot(page, "15-unreachable")
    finally:
        page.close()


def test_a_session_ended_elsewhere_signs_the_page_out_and_drops_the_binding(office: Office, browser: Browser) -> None:
    """The password is changed with the CLI (every session of the account ends): the page's next
    request is refused, it says so, stops its phone, and the web phone's binding goes."""
    server = office.server
    page = open_page(browser, server)
    try:
        log_in(page, "1000", ALICE_PW)
        assert [b["transport"] for b in http_bindings(server, "1000")] == ["ws"]
        set_password(server, "1000", "a-new-password")
        try:  # any request will do; the page may have found out by itself already (its event stream)
            page.select_option("#device-select", str(office.desk.position), timeout=3000)
        except PlaywrightTimeoutError:
            assert not page.locator("#device-select").is_visible()  # signed out: the menu is gone
        expect(page.locator("#login-error")).to_have_text("Your session has ended. Sign in again.")
        expect(page.locator("#reg-state")).to_have_text("Signed out")
        time_until_no_binding(server, "1000", time.perf_counter(), limit=5.0)
        shot(page, "16-session-ended")
        assert office.account()["selected_device"] != office.desk.position  # the change was refused
    finally:
        page.close()


def test_connection_lost_is_shown_and_recovers(office: Office, browser: Browser) -> None:
    """The server goes away: 'connection lost — retrying'; it comes back: registered again (JsSIP
    back-off), with the same session (the server restores its web phone credential)."""
    server = office.server
    page = open_page(browser, server)
    try:
        log_in(page, "1000", ALICE_PW)
        server.stop()
        expect(page.locator("#reg-state")).to_contain_text("Connection lost — retrying", timeout=10_000)
        expect(page.locator("#error")).to_contain_text("retrying")
        shot(page, "17-connection-lost")
        server.start()
        expect(page.locator("#reg-state")).to_have_text("Registered", timeout=40_000)
        expect(page.locator("#error")).to_be_hidden()
    finally:
        page.close()


def test_microphone_refused_is_said_clearly(office: Office, browser: Browser) -> None:
    """A Chromium without the fake-UI flag: headless, nobody answers the permission prompt and
    the microphone is refused. The call is not placed and the page says what to do."""
    flags = [f for f in CHROMIUM_FLAGS if f != "--use-fake-ui-for-media-stream"]
    strict = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=flags)
    try:
        page = open_page(strict, office.server)
        log_in(page, "1000", ALICE_PW)
        page.fill("#number", "1001")
        page.click("#call")
        expect(page.locator("#error")).to_contain_text("Microphone access was refused", timeout=10_000)
        expect(page.locator("#incall")).to_be_hidden()
        shot(page, "18-microphone-refused")
    finally:
        strict.close()


def test_colleagues_presence_live_and_voicemail_played_in_the_page(office: Office, browser: Browser) -> None:
    """Carol's SIPp device rings and answers a call from Bob: Alice's page shows it live (server-sent
    events). Then Bob reaches Alice's voicemail through the proxy: the message appears and plays."""
    server = office.server
    carol = office.carol
    page = open_page(browser, server)
    errors = no_errors(page)
    device = None
    try:
        log_in(page, "1000", ALICE_PW)
        colleagues = page.locator("#colleagues li")
        expect(colleagues).to_have_count(2)
        expect(page.locator("#colleagues li[data-account='1002'] .state")).to_have_text("offline")
        expect(page.locator("#vm-counts")).to_have_text("(0 new, 0 saved)")

        device = start_device(server, carol, "dev_answer.xml", office.tmp / "carol")
        expect(page.locator("#colleagues li[data-account='1002'] .state")).to_have_attribute(
            "data-state", "available", timeout=10_000)
        caller = place_call(server, office.bob, "1002", "call_answered.xml", office.tmp / "bob-sipp")
        assert caller.returncode == 0, caller.describe()
        device.wait(10)
        expect(page.locator("#colleagues li[data-account='1002'] .state")).to_have_attribute(
            "data-state", "available", timeout=10_000)
        seen = [p["state"] for p in page.evaluate("window.OneNumberPhone.presenceLog") if p["account"] == "1002"]
        print(f"\nCarol's presence as Alice's page saw it: {seen}")
        assert "ringing" in seen and "in-use" in seen, seen
        assert seen.index("ringing") < seen.index("in-use") < len(seen) - 1 and seen[-1] == "available", seen
        shot(page, "19-colleagues")

        # a message left through the proxy: Bob's baresip after the greeting, then it hangs up
        server.cli("account", "update", "1000", "--forward-unconditional", "voicemail")
        wait_config(server)  # the running server has it before Bob dials (else the browser rings)
        greeting = GREETING.stat().st_size / 16000 if GREETING.exists() else 0.0
        bob = office.phone("bob", office.bob, tone_seconds=greeting + 4)
        try:
            bob.dial(f"sip:1000@{server.address}")
            bob.wait_event("CALL_ESTABLISHED", timeout=10)
            bob.wait_event("CALL_CLOSED", timeout=greeting + 20)
        finally:
            bob.stop()
        expect(page.locator("#vm-counts")).to_have_text("(1 new, 0 saved)", timeout=15_000)
        expect(page.locator("#voicemail li")).to_have_count(1)
        expect(page.locator("#voicemail li").first).to_contain_text("Bob (1001)")
        # the merged history has the call too, with its outcome
        expect(page.locator("#history li").first).to_contain_text("↙ Bob (1001)", timeout=15_000)
        expect(page.locator("#history li").first).to_contain_text("voicemail")
        shot(page, "20-voicemail")
        requests: list[str] = []
        page.on("request", lambda r: requests.append(f"{r.method} {r.url}") if "voicemail" in r.url else None)
        page.on("response", lambda r: requests.append(f"{r.status} {r.url}") if "voicemail" in r.url else None)
        page.click("#voicemail li button")
        deadline = time.monotonic() + 20
        while page.evaluate("document.getElementById('vm-player').readyState") < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        if page.evaluate("document.getElementById('vm-player').readyState") < 1:
            state = page.evaluate("""() => { const a = document.getElementById('vm-player');
              return {url: a.dataset.url, src: a.src, error: a.error && [a.error.code, a.error.message],
                      network: a.networkState, ready: a.readyState, paused: a.paused,
                      text: document.getElementById('error').textContent}; }""")
            state["requests"] = requests
            raise AssertionError(f"the message did not load in the page: {state}") from None
        duration = page.evaluate("document.getElementById('vm-player').duration")
        print(f"voicemail message played in the page: {duration:.2f} s")
        assert duration > 1.0, duration
        expect(page.locator("#vm-counts")).to_have_text("(0 new, 1 saved)", timeout=10_000)
        shot(page, "21-voicemail-played")
        assert not errors, errors
    finally:
        if device is not None:
            device.stop()
        page.close()
