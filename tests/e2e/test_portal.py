"""End-to-end: the portal at `/` in the distribution's Chromium (Playwright, headless), against a
running server with the real login system, nothing mocked.

- An admin logs in, creates an account and two devices with the forms, provisions one through
  its QR link (the link read from the page), and a SIPp phone registers with exactly what the
  link gave; the account page then shows it registered and from where.
- A user logs in, moves the mobile above the deskphone with the keyboard, and the "who rings
  now" preview shows the new order without a reload, focus kept on the moved row.
- A user cannot see another account: admin URLs answer 403 alike whether the account exists.
- A user sees a colleague's presence change live (server-sent events) and plays, marks as
  heard and deletes a voicemail message in the page.
Screenshots of each page go to test-output/portal/ (git-ignored) at the repository root.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from .harness import LOOPBACK, Device, Server, add_accounts, free_port, register
from .wsua import wait_http

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "portal"
ADMIN_PW = "admin-password-1"
ALICE_PW = "alice-password-1"
BOB_PW = "bob-password-1"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (scripts/install-peers.sh)")

T = TypeVar("T")


def off_loop(fn: Callable[[], T]) -> T:
    """Playwright's sync API keeps an event loop running in this thread: store work goes to another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def logins(server: Server, admin: str | None = None, users: dict[str, str] | None = None) -> None:
    import asyncio

    from onenumber.store import Store
    from onenumber.store import logins as db

    async def run() -> None:
        store = await Store.open(server.db, migrate=True)
        try:
            if admin:
                await db.create_admin(store, admin, ADMIN_PW)
            for number, password in (users or {}).items():
                await db.set_account_password(store, number, password)
        finally:
            await store.close()

    off_loop(lambda: asyncio.run(run()))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def new_page(browser: Browser, server: Server, width: int = 1200, height: int = 900) -> Page:
    wait_http(server)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.textContent || '').trim())
    .map(e => e.outerHTML.slice(0, 120))"""


def assert_labelled(page: Page) -> None:
    """Every control has a name a screen reader can say (a label, aria-label or its text)."""
    assert page.evaluate(UNLABELLED) == []


def base(server: Server) -> str:
    return f"http://{LOOPBACK}:{server.http_port}"


def log_in(page: Page, server: Server, username: str, password: str) -> None:
    page.goto(base(server) + "/login")
    page.get_by_label("Number or admin name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")


def test_admin_creates_an_account_and_devices_and_provisions_a_phone_by_qr_link(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    logins(server, admin="root")
    page = new_page(browser, server)
    page.goto(base(server) + "/")
    expect(page).to_have_url(base(server) + "/login?next=/")
    shot(page, "01-login")
    log_in(page, server, "root", "wrong-password")
    expect(page.locator("#login-error")).to_have_text("Wrong number or password.")
    shot(page, "02-login-wrong-password")
    page.get_by_label("Password").fill(ADMIN_PW)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(base(server) + "/admin/accounts")  # back to /, which sends an admin on
    expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()

    # a mistake is shown next to its field, what was typed stays
    page.get_by_label("Number", exact=True).fill("10a0")
    page.get_by_label("Name", exact=True).fill("Alice")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#err-number")).to_contain_text("number")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Alice")
    shot(page, "03-admin-new-account-error")
    page.get_by_label("Number", exact=True).fill("1000")
    page.get_by_label("Portal password").fill(ALICE_PW)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="1000 · Alice")).to_be_visible()

    for kind, label, order in (("deskphone", "Yealink T54W", "1"), ("mobile", "Mobile", "2")):
        page.get_by_label("Kind").select_option(kind)
        page.locator("#add-label").fill(label)
        page.locator("#add-order").fill(order)
        page.get_by_role("button", name="Add device").click()
        expect(page.locator(".notice")).to_contain_text("Device added")
    rows = page.locator("table.devices tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#device-0")).to_contain_text("1000")
    expect(page.locator("#device-1")).to_contain_text("1000_2")
    expect(page.locator("#device-1")).to_contain_text("not registered")
    shot(page, "04-admin-account-devices")
    assert_labelled(page)

    # the provisioning link of the mobile, read from the page (and its QR code shown)
    page.locator("#device-1").get_by_role("button", name="Provisioning link").click()
    link = page.locator("#provision-url-1")
    expect(link).to_be_visible()
    expect(page.locator("#prov-1 img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    url = link.get_attribute("href")
    assert url and url.startswith(base(server) + "/provision/")
    shot(page, "05-admin-provisioning-qr")
    page.once("dialog", lambda dialog: dialog.accept())  # "Give device 0 a new secret?"
    page.locator("#device-0").get_by_role("button", name="New secret").click()
    expect(page.locator("#rot-0")).to_contain_text("New secret issued; the old one works until")

    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        settings = json.load(resp)
    assert (settings["server"], settings["ports"]["udp"]) == (LOOPBACK, server.sip_port)
    assert settings["number"] == "1000" and settings["auth_username"] == "1000_2"
    device = Device(settings["number"], settings["device"]["position"], settings["auth_username"], settings["secret"])
    port = free_port()
    register(server, device, port, workdir=tmp_path)  # SIPp registers with what the link gave
    server.wait_bindings("1000", 1)

    page.reload()
    expect(page.locator("#device-1")).to_contain_text("registered")
    expect(page.locator("#device-1")).to_contain_text(f"127.0.0.1:{port}")
    expect(page.locator("#device-1")).not_to_contain_text("not registered")
    assert settings["secret"] not in page.content()
    shot(page, "06-admin-account-registered")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the table scrolls inside its frame
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    shot(page, "06b-admin-account-phone-width")
    page.set_viewport_size({"width": 1200, "height": 900})

    page.goto(base(server) + "/admin/accounts")
    expect(page.locator("table.accounts")).to_contain_text("1 of 2")
    shot(page, "07-admin-accounts")
    assert_labelled(page)
    page.get_by_label("Search accounts").fill("nobody")
    page.get_by_label("Search accounts").press("Enter")
    expect(page.locator("table.accounts")).to_contain_text("No accounts match")

    page.goto(base(server) + "/admin/trunks")
    page.get_by_label("Name", exact=True).fill("gateway")
    page.get_by_label("Host").fill("192.0.2.10")
    page.get_by_role("button", name="Add trunk").click()
    expect(page.locator("table")).to_contain_text("192.0.2.10")
    shot(page, "08-admin-trunks")

    # CSV: a broken line reports its number and changes nothing; the export downloads
    page.goto(base(server) + "/admin/csv")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download accounts.csv").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("number,name") and settings["secret"] not in exported
    broken = exported + "1001,Bob,,sideways,,,,,,,,,,,,,,,,,,\n"
    csv_path = tmp_path / "broken.csv"
    csv_path.write_text(broken)
    page.get_by_label("CSV file").set_input_files(str(csv_path))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_contain_text("Nothing was imported")
    expect(page.locator("#import-result")).to_contain_text("column ring_mode")
    shot(page, "09-admin-csv-error")
    csv_path.write_text(exported)
    page.get_by_label("CSV file").set_input_files(str(csv_path))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_contain_text("Nothing to change")
    assert page.errors == []  # type: ignore[attr-defined]


def user_with_desk_and_mobile(server: Server) -> tuple[Device, Device]:
    import asyncio

    from onenumber.store import Store

    async def run() -> tuple[Device, Device]:
        store = await Store.open(server.db, migrate=True)
        try:
            await store.admin.add_account("1000", "Alice")
            desk = await store.admin.add_device("1000", "deskphone", label="Desk", ring_order=1)
            mobile = await store.admin.add_device("1000", "mobile", label="Mobile", ring_order=2)
            await store.admin.add_account("1001", "Bob")
            await store.admin.add_device("1001", "deskphone")
            return (Device("1000", desk.position, desk.auth_username, desk.secret),
                    Device("1000", mobile.position, mobile.auth_username, mobile.secret))
        finally:
            await store.close()

    from .harness import wait_config

    made = off_loop(lambda: asyncio.run(run()))
    off_loop(lambda: wait_config(server))
    return made


def test_user_moves_the_mobile_above_the_deskphone_and_the_ring_plan_follows(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    desk, mobile = user_with_desk_and_mobile(server)
    logins(server, users={"1000": ALICE_PW})
    register(server, desk, free_port(), workdir=tmp_path)
    register(server, mobile, free_port(), workdir=tmp_path)
    server.wait_bindings("1000", 2)

    page = new_page(browser, server)
    log_in(page, server, "1000", ALICE_PW)
    expect(page).to_have_url(base(server) + "/me")
    plan = page.locator("#plan")
    expect(plan.locator("ol.stages li").nth(0)).to_contain_text("Rings at once: Desk")
    expect(plan.locator("ol.stages li").nth(1)).to_contain_text("Joins after 10 s: Mobile")
    expect(page.get_by_role("link", name="Open the web phone")).to_have_attribute("href", "/phone")
    assert desk.secret not in page.content() and mobile.secret not in page.content()
    shot(page, "10-user-before")
    assert_labelled(page)

    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    up = page.get_by_role("button", name="Move Mobile up")
    up.focus()
    page.keyboard.press("Enter")  # the keyboard works the page
    expect(plan.locator("ol.stages li").nth(0)).to_contain_text("Rings at once: Mobile")
    expect(plan.locator("ol.stages li").nth(1)).to_contain_text("Joins after 10 s: Desk")
    expect(page.locator("#live-status")).to_have_text("Mobile moved up. The preview shows the new order.")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    focused = page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')")
    assert focused == "Move Mobile down", focused  # Up is disabled at the top: focus stays in the row
    rows = page.locator("table.my-devices tbody tr")
    expect(rows.nth(0)).to_contain_text("Mobile")
    shot(page, "11-user-after-move")

    # disable the deskphone: the preview says why it no longer rings
    page.get_by_role("button", name="Desk enabled").click()
    expect(page.locator("#live-status")).to_have_text("Desk disabled.")
    expect(plan).to_contain_text("Desk:")
    expect(plan.locator("ol.stages li")).to_have_count(1)
    # forwarding with a mistake: the error by its field, nothing saved
    page.get_by_label("When busy").fill("12 34")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#err-forward_busy")).to_be_visible()
    page.get_by_label("When busy").fill("voicemail")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(plan).to_contain_text("voicemail")
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "12-user-forwarding")

    phone = new_page(browser, server, width=390, height=844)  # a phone's width
    log_in(phone, server, "1000", ALICE_PW)
    expect(phone.locator("#plan")).to_contain_text("Rings at once: Mobile")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways at phone width ({width}px)"
    shot(phone, "13-user-phone-width")
    phone.goto(base(server) + "/me/history")
    expect(phone.get_by_role("heading", name="Call history")).to_be_visible()
    shot(phone, "14-user-history")
    assert page.errors == [] and phone.errors == []  # type: ignore[attr-defined]


def test_a_user_cannot_see_another_account(server: Server, browser: Browser) -> None:
    off_loop(lambda: add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1)]))
    logins(server, users={"1000": ALICE_PW, "1001": BOB_PW})
    page = new_page(browser, server)
    log_in(page, server, "1000", ALICE_PW)
    expect(page).to_have_url(base(server) + "/me")
    answers: list[tuple[int, str]] = []
    for path in ("/admin/accounts/1001", "/admin/accounts/9999", "/admin/accounts"):
        response = page.goto(base(server) + path)
        assert response is not None
        answers.append((response.status, page.locator("main").inner_text()))
    assert answers[0][0] == 403 and all(a == answers[0] for a in answers), answers
    assert "Bob" not in answers[0][1]
    shot(page, "15-user-tampering-403")
    for path in ("/api/accounts/1001", "/api/accounts/9999"):
        response = page.goto(base(server) + path)
        assert response is not None and response.status == 403
    page.goto(base(server) + "/me")  # her own page: her devices only (Bob appears only as a colleague's presence)
    expect(page.locator("#live")).not_to_contain_text("Bob")
    expect(page.locator("#live")).not_to_contain_text("1001")


def leave_message(server: Server, box: str, wav: Path) -> str:
    """A complete voicemail message in `box`'s database rows, as the voicemail service writes it."""
    import asyncio
    import math
    import struct

    from onenumber.media.wav import write_wav
    from onenumber.services.voicemail.store import DatabaseMessageStore, VoicemailMessage
    from onenumber.store import Store

    tone = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000))
    write_wav(wav, tone)  # one second of 440 Hz

    async def run() -> None:
        store = await Store.open(server.db, migrate=True)
        try:
            await DatabaseMessageStore(store).add(VoicemailMessage(
                "m-portal-1", box, "1001", "Bob", time.time() - 60, str(wav), 1.0, complete=True))
        finally:
            await store.close()

    off_loop(lambda: asyncio.run(run()))
    return "m-portal-1"


def test_user_sees_colleagues_presence_live_and_plays_marks_and_deletes_voicemail(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    made = off_loop(lambda: add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1)]))
    logins(server, users={"1000": ALICE_PW})
    message_id = leave_message(server, "1000", tmp_path / "message.wav")
    page = new_page(browser, server)
    page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
    log_in(page, server, "1000", ALICE_PW)
    expect(page).to_have_url(base(server) + "/me")

    bob = page.locator('#presence li[data-account="1001"]')
    expect(bob).to_contain_text("Bob 1001")
    expect(bob.locator(".state")).to_have_text("offline")
    page.evaluate("window.__sameDocument = true")
    register(server, made["1001"][0], free_port(), workdir=tmp_path)  # Bob's phone comes up
    expect(bob.locator(".state")).to_have_text("available", timeout=10_000)  # pushed, no reload
    assert page.evaluate("window.__sameDocument") is True

    item = page.locator(f'#voicemail li[data-id="{message_id}"]')
    expect(item).to_contain_text("New: Bob 1001")
    expect(page.locator("#vm-counts")).to_have_text("(1 new, 0 saved)")
    audio = item.locator("audio")
    expect(audio).to_have_attribute("src", f"/api/me/voicemail/{message_id}/audio")
    duration = audio.evaluate("""a => new Promise((ok, fail) => {
        a.preload = 'auto';
        a.addEventListener('loadedmetadata', () => ok(a.duration), {once: true});
        a.addEventListener('error', () => fail(new Error('audio error ' + (a.error && a.error.code))), {once: true});
        a.load();
    })""")
    assert abs(float(duration) - 1.0) < 0.05, duration  # the page's player reads the WAV
    shot(page, "16-user-presence-voicemail")

    item.get_by_role("button", name="Mark as heard").click()
    expect(page.locator("#live-status")).to_have_text("Message marked as heard.")
    expect(page.locator("#vm-counts")).to_have_text("(0 new, 1 saved)")
    expect(item.get_by_role("button", name="Mark as heard")).to_be_disabled()
    item.get_by_role("button", name="Delete").click()
    expect(page.locator("#live-status")).to_have_text("Message deleted.")
    expect(page.locator("#voicemail li")).to_have_count(0)
    expect(page.locator("#voicemail-note")).to_have_text("No messages.")
    shot(page, "17-user-voicemail-deleted")
    assert page.errors == []  # type: ignore[attr-defined]
