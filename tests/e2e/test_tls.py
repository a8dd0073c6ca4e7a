"""TLS transport: a phone registers over TLS when a certificate is configured; closing the
connection removes its binding at once."""

from __future__ import annotations

import socket
import ssl
import time
import uuid
from pathlib import Path

import pytest

from onenumber.sip.auth import authorize
from onenumber.sip.message import Response, parse

from .harness import LOOPBACK
from .harness import tls_server as start_tls_server


@pytest.fixture
def tls_server(tmp_path: Path):
    srv, tls_port, ctx = start_tls_server(tmp_path)
    try:
        yield srv, tls_port, ctx
    finally:
        srv.stop()


def _register(sock: ssl.SSLSocket, port: int, me: int, auth: str | None, cseq: int) -> Response:
    lines = [
        f"REGISTER sips:{LOOPBACK}:{port} SIP/2.0",
        f"Via: SIP/2.0/TLS {LOOPBACK}:{me};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport",
        "Max-Forwards: 70",
        f"From: <sip:1000@{LOOPBACK}>;tag=tls1",
        f"To: <sip:1000@{LOOPBACK}>",
        "Call-ID: tls-register-1",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:1000@{LOOPBACK}:{me};transport=tls>",
        "Expires: 300",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    lines.append("Content-Length: 0")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65535)
        assert chunk, "server closed the TLS connection"
        data += chunk
    msg = parse(data, stream=True)
    assert isinstance(msg, Response)
    return msg


def test_phone_registers_over_tls_and_binding_goes_when_connection_closes(tls_server) -> None:
    srv, tls_port, ctx = tls_server
    (dev,) = srv.add_account("1000", "Alice", devices=1)
    raw = socket.create_connection((LOOPBACK, tls_port), timeout=5)
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    me = sock.getsockname()[1]
    challenge = _register(sock, tls_port, me, None, 1)
    assert challenge.status == 401
    auth = authorize(challenge.headers.get("www-authenticate") or "", method="REGISTER",
                     uri=f"sips:{LOOPBACK}:{tls_port}", username=dev.auth_username, password=dev.secret, cnonce="c1")
    ok = _register(sock, tls_port, me, auth, 2)
    assert ok.status == 200
    (row,) = srv.wait_bindings("1000", 1)
    assert row["transport"] == "tls"
    sock.close()
    deadline = time.monotonic() + 3
    while srv.bindings("1000") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.bindings("1000") == []
