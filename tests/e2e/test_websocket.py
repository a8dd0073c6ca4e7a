"""End-to-end: SIP over WebSocket (RFC 7118) at `/sip` on the HTTP port, as the web phone uses it.

A Python WebSocket client (the `websockets` package) plays the browser: REGISTER with digest, a
call from a SIPp caller ringing it over its socket, and the binding dropped the moment the
socket closes (the time is measured and printed). A hand-made socket that never answers pings
plays a half-dead connection.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import LOOPBACK, Device, Server, SippPeer, add_accounts, place_call, start_device
from .wsua import SDP_ANSWER, WsUA, handshake_raw, raw_register, wait_http


def http_bindings(server: Server, number: str) -> list[dict]:
    rows = server.http_json(f"/api/accounts/{number}/bindings")
    assert isinstance(rows, list)
    return rows


def time_until_no_binding(server: Server, number: str, start: float, limit: float) -> float:
    """Seconds from `start` (a perf_counter) until the account has no binding left, polling every 5 ms."""
    while True:
        if not http_bindings(server, number):
            return time.perf_counter() - start
        if time.perf_counter() - start > limit:
            raise AssertionError(f"binding still there after {limit}s: {http_bindings(server, number)}")
        time.sleep(0.005)


@pytest.fixture
def accounts(server: Server) -> dict[str, list[Device]]:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1)])
    return {"alice": made["1000"], "bob": made["1001"]}


@pytest.fixture
def ws_ua(server: Server) -> Iterator[WsUA]:
    ua = WsUA(server)
    try:
        yield ua
    finally:
        ua.close()


def test_register_over_websocket_with_digest(
    server: Server, accounts: dict[str, list[Device]], ws_ua: WsUA
) -> None:
    alice = accounts["alice"][0]
    reply = ws_ua.register("1000", (alice.auth_username, alice.secret))
    assert reply.status == 200, reply.raw
    assert ws_ua.host in (reply.get("Contact") or ""), reply.raw
    [b] = http_bindings(server, "1000")
    assert b["transport"] == "ws", b
    assert b["flow"] and b["flow"].startswith("ws-"), b
    assert ".invalid" in b["contact"], b


def test_wrong_password_over_websocket_is_refused(
    server: Server, accounts: dict[str, list[Device]], ws_ua: WsUA
) -> None:
    alice = accounts["alice"][0]
    reply = ws_ua.register("1000", (alice.auth_username, "not-the-secret"))
    assert reply.status in (401, 403), reply.raw
    assert http_bindings(server, "1000") == []


def test_handshake_without_sip_subprotocol_is_refused(server: Server) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    wait_http(server)
    with pytest.raises(InvalidStatus):
        connect(f"ws://{LOOPBACK}:{server.http_port}/sip", open_timeout=5).close()


@pytest.mark.parametrize("how", ["close-frame", "tcp-close"])
def test_socket_close_removes_binding_within_a_second(
    server: Server, accounts: dict[str, list[Device]], how: str
) -> None:
    alice = accounts["alice"][0]
    ua = WsUA(server)
    assert ua.register("1000", (alice.auth_username, alice.secret)).status == 200
    assert len(http_bindings(server, "1000")) == 1
    start = time.perf_counter()
    if how == "close-frame":
        ua.ws.close()  # what a browser does on logout or when the tab closes
    else:
        ua.ws.socket.shutdown(socket.SHUT_RDWR)  # the connection goes without a close frame
        ua.ws.socket.close()
    elapsed = time_until_no_binding(server, "1000", start, limit=5.0)
    print(f"\nclose-to-binding-gone ({how}): {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    assert "binding(s) removed" in server.log()


def test_half_dead_socket_is_closed_by_pings(tmp_path: Path) -> None:
    """No close frame, no FIN, no pong: the pings close it within `ws_ping_seconds` (2 s here)."""
    srv = Server(tmp_path / "server")
    srv.cli("settings", "set", "ws_ping_seconds", "2")
    srv.start()
    s = None
    try:
        made = add_accounts(srv, [("1000", "Alice", 1)])
        alice = made["1000"][0]
        wait_http(srv)
        s = handshake_raw(srv.http_port)
        assert raw_register(s, srv, "1000", (alice.auth_username, alice.secret)) == 200
        start = time.perf_counter()
        assert len(http_bindings(srv, "1000")) == 1
        elapsed = time_until_no_binding(srv, "1000", start, limit=8.0)  # we never read the pings again
        print(f"\nhalf-dead socket dropped after {elapsed:.2f} s (ws_ping_seconds=2)")
        assert elapsed <= 3.0
    finally:
        if s is not None:
            s.close()
        srv.stop()


def _sipp_call(server: Server, caller: Device, number: str, workdir: Path) -> SippPeer:
    return place_call(server, caller, number, "call_answered.xml", workdir, from_user=caller.account,
                      background=True)


def test_sipp_call_rings_the_websocket_device(
    server: Server, accounts: dict[str, list[Device]], ws_ua: WsUA, tmp_path: Path
) -> None:
    """UDP caller -> WS callee: Via WS, a double Record-Route (ws and udp), ACK and BYE over the socket."""
    alice, bob = accounts["alice"][0], accounts["bob"][0]
    assert ws_ua.register("1000", (alice.auth_username, alice.secret)).status == 200
    caller = _sipp_call(server, bob, "1000", tmp_path / "peers")
    try:
        invite = ws_ua.wait_for(lambda m: m.method == "INVITE", timeout=10)
        assert invite.first_line.startswith(f"INVITE sip:{ws_ua.user}@{ws_ua.host}"), invite.first_line
        vias = invite.get_all("Via")
        assert vias[0].startswith("SIP/2.0/WS "), vias
        assert f":{server.http_port};" in vias[0], vias
        rrs = invite.get_all("Record-Route")
        assert len(rrs) == 2, rrs
        assert "transport=ws" in rrs[0] and f":{server.http_port};" in rrs[0], rrs
        assert "transport=" not in rrs[1] and f":{server.sip_port};" in rrs[1], rrs
        assert "1001" in (invite.get("From") or ""), invite.raw
        to_tag = uuid.uuid4().hex[:8]
        ws_ua.respond(invite, 180, "Ringing", to_tag=to_tag)
        time.sleep(0.2)
        ws_ua.respond(invite, 200, "OK", to_tag=to_tag, body=SDP_ANSWER)
        ack = ws_ua.wait_for(lambda m: m.method == "ACK", timeout=5)
        assert ack.get("Call-ID") == invite.get("Call-ID")
        bye = ws_ua.wait_for(lambda m: m.method == "BYE", timeout=5)
        ws_ua.respond(bye, 200, "OK")
        assert caller.wait(10) == 0, caller.describe() + server.log()[-3000:]
    finally:
        caller.stop()


def test_websocket_device_calls_a_udp_device(
    server: Server, accounts: dict[str, list[Device]], ws_ua: WsUA, tmp_path: Path
) -> None:
    """WS caller -> UDP callee: the callee sees a double Record-Route; its 200 and BYE go back over the socket."""
    alice, bob = accounts["alice"][0], accounts["bob"][0]
    assert ws_ua.register("1000", (alice.auth_username, alice.secret)).status == 200
    callee = start_device(server, bob, "dev_answer_hangup.xml", tmp_path / "peers", name="bob")
    try:
        target = f"sip:1001@{server.address}"
        aor = f"sip:1000@{server.address}"
        offer = SDP_ANSWER
        hdrs = [("From", f"<{aor}>;tag={ws_ua.tag}"), ("To", f"<{target}>"), ("Contact", ws_ua.contact),
                ("Content-Type", "application/sdp")]
        from .harness import digest_authorization

        reply = ws_ua.request("INVITE", target, hdrs, offer, timeout=5)
        assert reply.status == 407, reply.raw
        ack_lines = [f"ACK {target} SIP/2.0", f"Via: {reply.get('Via')}", "Max-Forwards: 70",
                     f"From: {reply.get('From')}", f"To: {reply.get('To')}", f"Call-ID: {ws_ua.call_id}",
                     f"CSeq: {ws_ua.cseq} ACK", "Content-Length: 0"]
        ws_ua.send_text("\r\n".join(ack_lines) + "\r\n\r\n")
        challenge = reply.get("Proxy-Authenticate") or ""
        hdrs.append(("Proxy-Authorization",
                     digest_authorization(challenge, "INVITE", target, alice.auth_username, alice.secret)))
        ok = ws_ua.request("INVITE", target, hdrs, offer, timeout=10)
        assert ok.status == 200, ok.raw
        rrs = ok.get_all("Record-Route")
        assert len(rrs) == 2 and "transport=ws" in rrs[1] and "transport=" not in rrs[0], rrs
        # the ACK follows the route set: reversed Record-Route, so the ws entry first
        routes = ", ".join(reversed(rrs))
        contact = (ok.get("Contact") or "").strip("<>").split(">")[0]
        ws_ua.send_text("\r\n".join([
            f"ACK {contact} SIP/2.0", f"Via: SIP/2.0/WS {ws_ua.host};branch=z9hG4bK{uuid.uuid4().hex[:12]}",
            "Max-Forwards: 70", f"Route: {routes}", f"From: {ok.get('From')}", f"To: {ok.get('To')}",
            f"Call-ID: {ws_ua.call_id}", f"CSeq: {ws_ua.cseq} ACK", "Content-Length: 0",
        ]) + "\r\n\r\n")
        bye = ws_ua.wait_for(lambda m: m.method == "BYE", timeout=10)  # the callee hangs up
        ws_ua.respond(bye, 200, "OK")
        assert callee.wait(10) == 0, callee.describe() + server.log()[-3000:]
        [inv] = callee.received("INVITE")
        seen = ",".join(inv.headers("Record-Route")).lower()
        assert "transport=ws" in seen and f":{server.sip_port};" in seen, seen
    finally:
        callee.stop()
