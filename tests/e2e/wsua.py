"""A bare SIP user agent over WebSocket (RFC 7118), as a browser phone (JsSIP) behaves.

Contact and Via carry a `.invalid` host, as JsSIP sends them: the server can reach this UA
only over its own socket. Uses the `websockets` package's synchronous client.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time
import uuid
from dataclasses import dataclass

from websockets.sync.client import ClientConnection, connect

from .harness import LOOPBACK, Server, digest_authorization, parse_reply


@dataclass
class SipMessage:
    first_line: str
    headers: list[tuple[str, str]]
    body: str
    raw: str

    @property
    def method(self) -> str | None:
        return None if self.first_line.startswith("SIP/2.0") else self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        return int(self.first_line.split(" ")[1]) if self.first_line.startswith("SIP/2.0") else None

    def get_all(self, name: str) -> list[str]:
        out: list[str] = []
        for k, v in self.headers:
            if k.lower() == name.lower():
                out += [p.strip() for p in _split_commas(v)] if name.lower() in _LIST_HEADERS else [v]
        return out

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None


_LIST_HEADERS = {"via", "record-route", "route"}


def _split_commas(value: str) -> list[str]:
    out, depth, cur, quoted = [], 0, "", False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_message(text: str) -> SipMessage:
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return SipMessage(lines[0], headers, body, text)


SDP_ANSWER = (
    "v=0\r\no=ws 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class WsUA:
    """One WebSocket to the server's `/sip`, one registration, requests answered by hand."""

    def __init__(self, server: Server, *, transport: str = "ws") -> None:
        self.server = server
        self.host = f"{uuid.uuid4().hex[:12]}.invalid"
        self.user = uuid.uuid4().hex[:8]
        self.call_id = uuid.uuid4().hex
        self.cseq = 0
        self.tag = uuid.uuid4().hex[:10]
        self.transport = transport
        wait_http(server)
        self._exit = contextlib.ExitStack()
        self.ws: ClientConnection = self._exit.enter_context(connect(
            f"ws://{LOOPBACK}:{server.http_port}/sip", subprotocols=["sip"], open_timeout=5  # type: ignore[list-item]
        ))
        self.pending: list[SipMessage] = []

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host};transport={self.transport}>"

    def close(self) -> None:
        self._exit.close()

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def recv(self, timeout: float = 5.0) -> SipMessage:
        return parse_message(str(self.ws.recv(timeout=timeout)))

    def wait_for(self, pred, timeout: float = 5.0) -> SipMessage:  # type: ignore[no-untyped-def]
        for i, m in enumerate(self.pending):
            if pred(m):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [m.first_line for m in self.pending]
                raise AssertionError(f"nothing matching within {timeout}s; pending: {seen}")
            m = self.recv(left)
            if pred(m):
                return m
            self.pending.append(m)

    def request(self, method: str, ruri: str, headers: list[tuple[str, str]], body: str = "",
                timeout: float = 5.0) -> SipMessage:
        self.cseq += 1
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} {self.host};branch={branch}",
            "Max-Forwards: 70",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            *(f"{k}: {v}" for k, v in headers),
            f"Content-Length: {len(body.encode())}",
        ]
        self.send_text("\r\n".join(lines) + "\r\n\r\n" + body)
        return self.wait_for(lambda m: m.status is not None and m.status >= 200 and branch in (m.get("Via") or ""),
                             timeout)

    def register(self, account: str, auth: tuple[str, str], expires: int = 300) -> SipMessage:
        aor = f"sip:{account}@{self.server.address}"
        ruri = f"sip:{self.server.address}"
        hdrs = [("From", f"<{aor}>;tag={self.tag}"), ("To", f"<{aor}>"), ("Contact", self.contact),
                ("Expires", str(expires))]
        reply = self.request("REGISTER", ruri, hdrs)
        if reply.status == 401:
            challenge = next(c for c in reply.get_all("WWW-Authenticate") if "MD5" in c.upper() or "algorithm" not in c)
            hdrs.append(("Authorization", digest_authorization(challenge, "REGISTER", ruri, *auth)))
            reply = self.request("REGISTER", ruri, hdrs)
        return reply

    def respond(self, req: SipMessage, status: int, reason: str, *, to_tag: str | None = None,
                body: str = "", extra: list[tuple[str, str]] | None = None) -> None:
        lines = [f"SIP/2.0 {status} {reason}"]
        for k, v in req.headers:
            kl = k.lower()
            if kl in ("via", "from", "call-id", "cseq", "record-route"):
                lines.append(f"{k}: {v}")
            elif kl == "to":
                lines.append(f"{k}: {v}" + (f";tag={to_tag}" if to_tag and "tag=" not in v else ""))
        if status < 300 and req.method == "INVITE":
            lines.append(f"Contact: {self.contact}")
        lines += [f"{k}: {v}" for k, v in (extra or [])]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send_text("\r\n".join(lines) + "\r\n\r\n" + body)


def wait_http(server: Server, timeout: float = 10.0) -> None:
    """The HTTP port answers (the server answers SIP a moment before it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, server.http_port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"HTTP port {server.http_port} never answered")


def handshake_raw(http_port: int) -> socket.socket:
    """A WebSocket opened by hand on a plain socket: it never answers pings (a half-dead peer)."""
    s = socket.create_connection((LOOPBACK, http_port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((
        f"GET /sip HTTP/1.1\r\nHost: {LOOPBACK}:{http_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    ).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("handshake refused")
        data += chunk
    assert data.startswith(b"HTTP/1.1 101"), data
    return s


def raw_frame(text: str) -> bytes:
    """One masked text frame (client to server)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_register(s: socket.socket, server: Server, account: str, auth: tuple[str, str]) -> int:
    """REGISTER with digest over a raw socket; returns the final status. Reads unmasked server frames."""
    host = f"{uuid.uuid4().hex[:12]}.invalid"
    call_id = uuid.uuid4().hex
    aor = f"sip:{account}@{server.address}"
    ruri = f"sip:{server.address}"
    authz: list[str] = []
    for cseq in (1, 2):
        msg = "\r\n".join([
            f"REGISTER {ruri} SIP/2.0", f"Via: SIP/2.0/WS {host};branch=z9hG4bK{uuid.uuid4().hex[:12]}",
            "Max-Forwards: 70", f"From: <{aor}>;tag=raw1", f"To: <{aor}>", f"Call-ID: {call_id}",
            f"CSeq: {cseq} REGISTER", f"Contact: <sip:raw@{host};transport=ws>", "Expires: 300", *authz,
            "Content-Length: 0",
        ]) + "\r\n\r\n"
        s.sendall(raw_frame(msg))
        reply = parse_reply(_read_frame(s))
        if reply.status != 401:
            return reply.status
        challenge = next(c for c in reply.get_all("WWW-Authenticate") if "MD5" in c.upper() or "algorithm" not in c)
        authz = [f"Authorization: {digest_authorization(challenge, 'REGISTER', ruri, *auth)}"]
    return 401


def _read_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise AssertionError("socket closed")
        data += chunk
    return data


def _read_frame(s: socket.socket) -> bytes:
    while True:
        b0, b1 = _read_exact(s, 2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", _read_exact(s, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", _read_exact(s, 8))[0]
        payload = _read_exact(s, n)
        if b0 & 0x0F in (0x1, 0x2):
            return payload
