"""End-to-end: the media bridge's ng parameters carry real audio between Chromium and plain RTP.

A real rtpengine (our own process), the `MediaBridge` offer/answer, a WebRTC peer connection in
the distribution's Chromium (fake microphone) on one side and a plain-RTP UDP socket (PCMU, as a
deskphone sends) on the other. Both call directions: the browser's packets arrive as plain RTP at
the socket, and the socket's packets arrive in the browser (`getStats()` inbound-rtp
packetsReceived). This is what the call engine will drive from the call events.
"""

from __future__ import annotations

import asyncio
import http.server
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from onenumber.media.bridge import MediaBridge
from onenumber.media.process import command_line, find_binary, free_port_range, free_udp_port
from onenumber.media.rtpengine import NgClient

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, sync_playwright

from .test_webphone_page import CHROMIUM, CHROMIUM_FLAGS

pytestmark = [
    pytest.mark.skipif(find_binary() is None, reason="rtpengine not installed"),
    pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None, reason="no chromium"),
]

LOCAL = "127.0.0.1"


@pytest.fixture
def rtpengine(tmp_path: Path) -> Iterator[tuple[str, int]]:
    binary = find_binary()
    assert binary
    ng = free_udp_port(LOCAL)
    lo, hi = free_port_range(LOCAL, 100)
    log = open(tmp_path / "rtpengine.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command_line(binary, LOCAL, ng, lo, hi), stdout=log, stderr=subprocess.STDOUT)
    try:
        ok = _ng(ng, lambda c: c.ping())
        assert ok, (tmp_path / "rtpengine.log").read_text()
        yield LOCAL, ng
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()


def _ng(port: int, action: Any) -> Any:
    """Run one ng action in a thread of its own (Playwright's sync API holds this thread's loop)."""

    async def run() -> Any:
        client = await NgClient(LOCAL, port, timeout=0.5, retries=6).open()
        try:
            return await action(client)
        finally:
            client.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=20)


@pytest.fixture
def page() -> Iterator[Page]:
    """A page on a plain http://127.0.0.1 origin (a secure context: getUserMedia works)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>bridge</title><p>media bridge test</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer((LOCAL, 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            pg = browser.new_page()
            pg.goto(f"http://{LOCAL}:{httpd.server_address[1]}/")
            yield pg
        finally:
            browser.close()
            httpd.shutdown()


GATHER = """async (pc) => {
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
  });
}"""

SETUP = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  const pc = new RTCPeerConnection({ iceServers: [] });
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  window.pc = pc;
  window.gather = GATHER_FN;
}""".replace("GATHER_FN", GATHER)

STATS = """async () => {
  const stats = await window.pc.getStats();
  let received = 0, sent = 0;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') received += s.packetsReceived || 0;
    if (s.type === 'outbound-rtp' && s.kind === 'audio') sent += s.packetsSent || 0;
  });
  const pairs = [];
  stats.forEach((s) => {
    if (s.type === 'candidate-pair') pairs.push(s.state);
    if (s.type === 'transport') pairs.push('dtls:' + s.dtlsState);
  });
  return { received, sent, state: window.pc.connectionState, ice: window.pc.iceConnectionState, pairs };
}"""


def rtp_sdp(port: int) -> str:
    return (f"v=0\r\no=desk 1 1 IN IP4 {LOCAL}\r\ns=-\r\nc=IN IP4 {LOCAL}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def media_address(sdp: str) -> tuple[str, int]:
    port = int(re.search(r"^m=audio (\d+)", sdp, re.MULTILINE).group(1))  # type: ignore[union-attr]
    hosts = re.findall(r"^c=IN IP4 (\S+)", sdp, re.MULTILINE)
    return hosts[-1], port


class RtpPhone:
    """A deskphone's media: PCMU packets every 20 ms to the relay, and a count of what comes back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL, 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, remote: tuple[str, int]) -> None:
        def run() -> None:
            seq, ts, ssrc = 1, 0, 0x1234ABCD
            while not self._stop.is_set():
                header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
                self.sock.sendto(header + bytes([0xD5] * 160), remote)
                self.sent += 1
                seq, ts = seq + 1, ts + 160
                end = time.monotonic() + 0.02
                while time.monotonic() < end:
                    try:
                        data = self.sock.recv(2048)
                        if len(data) >= 12 and data[0] >> 6 == 2:
                            self.received += 1
                    except (TimeoutError, OSError):
                        pass

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self.sock.close()


def _wait_flow(page: Page, phone: RtpPhone, seconds: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = page.evaluate(STATS)
        if stats["received"] > 20 and phone.received > 20:
            break
        time.sleep(0.2)
    return stats


def test_browser_calls_a_deskphone_through_the_relay(rtpengine: tuple[str, int], page: Page) -> None:
    """WebRTC offer -> RTP (offer to_webrtc=False); RTP answer -> WebRTC (answer to_webrtc=True)."""
    _, ng = rtpengine
    call_id = uuid.uuid4().hex
    page.evaluate(SETUP)
    offer = page.evaluate("""async () => {
      const o = await window.pc.createOffer(); await window.pc.setLocalDescription(o);
      await window.gather(window.pc); return window.pc.localDescription.sdp; }""")
    assert "UDP/TLS/RTP/SAVPF" in offer
    to_phone = _ng(ng, lambda c: MediaBridge(c).offer(call_id, "browser", offer, False)).decode()
    assert "RTP/AVP" in to_phone and "a=fingerprint" not in to_phone and "a=candidate" not in to_phone, to_phone
    phone = RtpPhone()
    try:
        answer = _ng(ng, lambda c: MediaBridge(c).answer(call_id, "browser", "desk", rtp_sdp(phone.port), True))
        answer_text = answer.decode()
        assert "a=fingerprint" in answer_text and "a=candidate" in answer_text, answer_text
        page.evaluate("async (sdp) => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer_text)
        phone.start(media_address(to_phone))
        stats = _wait_flow(page, phone)
        print(f"\nbrowser -> deskphone via rtpengine: browser received {stats['received']} packets, "
              f"sent {stats['sent']}; deskphone received {phone.received}, sent {phone.sent}; pc {stats['state']}")
        assert stats["state"] == "connected", (stats, answer_text)
        assert stats["received"] > 20, stats
        assert phone.received > 20, (phone.received, stats)
    finally:
        phone.stop()
        _ng(ng, lambda c: c.delete(call_id))


def test_deskphone_calls_a_browser_through_the_relay(rtpengine: tuple[str, int], page: Page) -> None:
    """RTP offer -> WebRTC (offer to_webrtc=True); the browser's answer -> RTP (answer to_webrtc=False)."""
    _, ng = rtpengine
    call_id = uuid.uuid4().hex
    phone = RtpPhone()
    try:
        to_browser = _ng(ng, lambda c: MediaBridge(c).offer(call_id, "desk", rtp_sdp(phone.port), True)).decode()
        assert "UDP/TLS/RTP/SAVPF" in to_browser and "a=fingerprint" in to_browser, to_browser
        page.evaluate(SETUP)
        answer = page.evaluate("""async (sdp) => {
          await window.pc.setRemoteDescription({ type: 'offer', sdp });
          const a = await window.pc.createAnswer(); await window.pc.setLocalDescription(a);
          await window.gather(window.pc); return window.pc.localDescription.sdp; }""", to_browser)
        to_phone = _ng(ng, lambda c: MediaBridge(c).answer(call_id, "desk", "browser", answer, False)).decode()
        assert "RTP/AVP" in to_phone and "a=fingerprint" not in to_phone, to_phone
        phone.start(media_address(to_phone))
        stats = _wait_flow(page, phone)
        print(f"\ndeskphone -> browser via rtpengine: browser received {stats['received']} packets, "
              f"sent {stats['sent']}; deskphone received {phone.received}, sent {phone.sent}; pc {stats['state']}")
        assert stats["state"] == "connected", stats
        assert stats["received"] > 20, stats
        assert phone.received > 20, (phone.received, stats)
    finally:
        phone.stop()
        _ng(ng, lambda c: c.delete(call_id))
