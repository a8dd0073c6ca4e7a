"""A SIP peer on a plain socket (UDP, TCP or TLS) for exact in-dialog checks against a running server.

It writes what a test tells it to, byte for byte, and keeps every message it receives (parsed
with our own parser) so a test can wait for one, or check that none came. Used where SIPp
cannot go (TLS) or where a test must forge what no phone would send.
"""

from __future__ import annotations

import queue
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable

from onenumber.sip.auth import authorize
from onenumber.sip.framing import StreamFramer
from onenumber.sip.message import Request, Response, parse

from .harness import LOOPBACK, check_port

Message = Request | Response


class SocketPeer:
    def __init__(self, transport: str, port: int, *, ctx: ssl.SSLContext | None = None) -> None:
        self.transport = transport
        self.server = (LOOPBACK, check_port(port))
        if transport == "udp":
            self.sock: socket.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((LOOPBACK, 0))
        else:
            raw = socket.create_connection(self.server, timeout=5)
            self.sock = ctx.wrap_socket(raw, server_hostname=LOOPBACK) if transport == "tls" and ctx else raw
            # non-blocking, every read and write under one lock: an SSL object used by a reading
            # and a writing thread at once loses data now and then (requests never got an answer)
            self.sock.setblocking(False)
        self.io = threading.Lock()
        self.port = self.sock.getsockname()[1]
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.kept: list[Message] = []
        self.tag = uuid.uuid4().hex[:8]
        self.call_id = uuid.uuid4().hex
        self.cseq = 0
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    # ---------------------------------------------------------------- transport
    def _read(self) -> None:
        framer = StreamFramer(max_body=65535)
        while not self.closed:
            try:
                if self.transport == "udp":
                    data, _ = self.sock.recvfrom(65535)
                    chunks = [data] if data.strip() else []
                else:
                    data = self._recv_stream()
                    if data is None:
                        continue
                    if not data:
                        return
                    chunks = framer.feed(data)
            except (OSError, ValueError):  # ValueError: select() on a socket closed meanwhile
                return
            for chunk in chunks:
                try:
                    self.inbox.put(parse(chunk, stream=self.transport != "udp"))
                except Exception:
                    continue

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            view = memoryview(data)
            deadline = time.monotonic() + 5
            while view and time.monotonic() < deadline:
                with self.io:
                    try:
                        view = view[self.sock.send(view):]
                        continue
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        pass
                select.select([], [self.sock], [], 0.05)
            if view:
                raise TimeoutError(f"{self.transport} peer :{self.port}: could not send within 5 s")

    def _recv_stream(self) -> bytes | None:
        """Bytes from the stream, b"" at its end, None when nothing is there yet."""
        if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if not readable:
                return None
        with self.io:
            try:
                return self.sock.recv(65535)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return None

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def expect(self, pred: Callable[[Message], bool], timeout: float = 5.0, what: str = "a message") -> Message:
        for i, m in enumerate(self.kept):
            if pred(m):
                return self.kept.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.transport} peer :{self.port}: no {what} within {timeout}s; "
                                     f"got {[_line(m) for m in self.kept]}")
            try:
                m = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if pred(m):
                return m
            self.kept.append(m)

    def request_in(self, method: str, timeout: float = 5.0) -> Request:
        m = self.expect(lambda m: isinstance(m, Request) and m.method == method, timeout, f"{method} request")
        assert isinstance(m, Request)
        return m

    def final_to(self, branch: str, timeout: float = 5.0) -> Response:
        def final(m: Message) -> bool:
            return isinstance(m, Response) and m.status >= 200 and branch in (m.headers.get("via") or "")

        m = self.expect(final, timeout, f"final response to {branch}")
        assert isinstance(m, Response)
        return m

    # ---------------------------------------------------------------- building messages
    def via(self, branch: str) -> str:
        return f"SIP/2.0/{self.transport.upper()} {LOOPBACK}:{self.port};branch={branch};rport"

    def contact(self, user: str) -> str:
        tp = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"<sip:{user}@{LOOPBACK}:{self.port}{tp}>"

    def request(self, method: str, ruri: str, headers: list[tuple[str, str]], *, branch: str | None = None,
                body: bytes = b"") -> tuple[bytes, str]:
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = [f"{method} {ruri} SIP/2.0", f"Via: {self.via(branch)}", "Max-Forwards: 70"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, branch

    def transact(self, method: str, ruri: str, headers: list[tuple[str, str]], *, body: bytes = b"",
                 timeout: float = 5.0) -> Response:
        data, branch = self.request(method, ruri, headers, body=body)
        self.send(data)
        return self.final_to(branch, timeout)

    def reply(self, req: Request, status: int, reason: str, *, tag: str | None = None,
              contact: str | None = None, body: bytes = b"") -> None:
        h = req.headers
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in h.get_all("via")]
        lines += [f"Record-Route: {rr}" for rr in h.get_all("record-route")]
        to = h.get("to") or ""
        if tag and ";tag=" not in to:
            to += f";tag={tag}"
        lines += [f"From: {h.get('from')}", f"To: {to}", f"Call-ID: {req.call_id}", f"CSeq: {h.get('cseq')}"]
        if contact:
            lines.append(f"Contact: {contact}")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def register(self, user: str, auth_user: str, secret: str, server_host: str) -> Response:
        aor = f"sip:{user}@{server_host}"
        ruri = f"sip:{server_host}" + ("" if self.transport == "udp" else f";transport={self.transport}")
        base = [("From", f"<{aor}>;tag={self.tag}"), ("To", f"<{aor}>"), ("Call-ID", self.call_id),
                ("Contact", self.contact(user)), ("Expires", "300")]
        self.cseq += 1
        first = self.transact("REGISTER", ruri, [*base, ("CSeq", f"{self.cseq} REGISTER")])
        assert first.status == 401, first
        challenge = first.headers.get("www-authenticate") or ""
        auth = authorize(challenge, method="REGISTER", uri=ruri, username=auth_user, password=secret, cnonce="c")
        self.cseq += 1
        return self.transact("REGISTER", ruri, [*base, ("CSeq", f"{self.cseq} REGISTER"), ("Authorization", auth)])


SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4000 RTP/AVP 0\r\n")


def _line(m: Message) -> str:
    return f"{m.method} {m.uri}" if isinstance(m, Request) else f"{m.status} {m.reason}"
