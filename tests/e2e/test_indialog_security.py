"""Issue 6 end to end: the proxy's in-dialog path against a running server, over UDP, TCP and TLS.

- forged in-dialog requests (a To-tag and a Route naming the server, a Call-ID it never routed)
  are answered 403 and never reach the address they name, on every transport;
- a real call between two devices, for each mix of the two legs' transports: re-INVITE,
  UPDATE, INFO, MESSAGE, NOTIFY, REFER, PRACK and BYE are relayed both ways; the caller's
  credentials for our realm never reach the callee; the caller sees its own From in every
  response and as the To of the callee's requests; the callee sees the account's identity;
- a dialog set up before a restart is still relayed after it (the signed Record-Route).
"""

from __future__ import annotations

import itertools
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from onenumber.sip.auth import authorize
from onenumber.sip.headers import NameAddr
from onenumber.sip.message import Request, Response

from .harness import LOOPBACK, Server, add_accounts, free_port
from .sockpeer import SDP, SocketPeer

TRANSPORTS = ("udp", "tcp", "tls")
METHODS = ("INVITE", "UPDATE", "INFO", "MESSAGE", "NOTIFY", "REFER", "PRACK")
_numbers = itertools.count(2000, 2)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int, ssl.SSLContext]]:
    tmp = tmp_path_factory.mktemp("indialog")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    tls_port = free_port()
    srv = Server(tmp / "server", extra=["--tls-cert", str(cert_path), "--tls-key", str(key_path),
                                        "--tls-port", str(tls_port)])
    srv.start()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    try:
        yield srv, tls_port, ctx
    finally:
        srv.stop()


def peer(srv: Server, tls_port: int, ctx: ssl.SSLContext, transport: str) -> SocketPeer:
    return SocketPeer(transport, tls_port if transport == "tls" else srv.sip_port, ctx=ctx)


def server_uri(srv: Server, tls_port: int, transport: str, user: str = "") -> str:
    at = f"{user}@" if user else ""
    port = tls_port if transport == "tls" else srv.sip_port
    return f"sip:{at}{LOOPBACK}:{port}" + ("" if transport == "udp" else f";transport={transport}")


class Call:
    """A call from `caller` (device of account A) to account B answered by `callee`."""

    def __init__(self, srv: Server, tls_port: int, caller: SocketPeer, callee: SocketPeer, a: str, a_dev,
                 b: str) -> None:
        self.caller, self.callee = caller, callee
        ruri = server_uri(srv, tls_port, caller.transport, b)
        self.from_ = f'"Phone" <sip:{a}@{LOOPBACK}:{srv.sip_port}>;tag={caller.tag}'
        self.call_id = caller.call_id + "-call"
        base = [("From", self.from_), ("To", f"<sip:{b}@{LOOPBACK}>"), ("Call-ID", self.call_id),
                ("Contact", caller.contact(a))]
        data, branch = caller.request("INVITE", ruri, [*base, ("CSeq", "1 INVITE")], body=SDP)
        caller.send(data)
        challenge = caller.final_to(branch)
        assert challenge.status == 407
        ack, _ = caller.request("ACK", ruri, [("From", self.from_), ("To", challenge.headers.get("to") or ""),
                                             ("Call-ID", self.call_id), ("CSeq", "1 ACK")], branch=branch)
        caller.send(ack)
        self.auth = authorize(challenge.headers.get("proxy-authenticate") or "", method="INVITE", uri=ruri,
                              username=a_dev.auth_username, password=a_dev.secret, cnonce="c")
        data, branch = caller.request("INVITE", ruri, [*base, ("CSeq", "2 INVITE"),
                                                        ("Proxy-Authorization", self.auth)], body=SDP)
        caller.send(data)
        self.got = callee.request_in("INVITE")
        assert self.got.headers.get("proxy-authorization") is None
        callee.reply(self.got, 180, "Ringing", tag="callee")
        callee.reply(self.got, 200, "OK", tag="callee", contact=callee.contact(b), body=SDP)
        ok = caller.final_to(branch)
        assert ok.status == 200
        self.ok = ok
        assert ok.headers.get("from") == self.from_, "the caller's 200 must carry its own From"
        self.caller_routes = list(reversed(ok.headers.get_all("record-route")))
        self.caller_to = ok.headers.get("to") or ""
        self.callee_routes = self.got.headers.get_all("record-route")
        self.callee_target = str(NameAddr.parse(ok.headers.get("contact") or "").uri)
        self.caller_target = f"sip:{a}@{LOOPBACK}:{caller.port}" + (
            "" if caller.transport == "udp" else f";transport={caller.transport}")
        self.cseq = 2
        self.callee_cseq = 100
        self.ack(self.cseq)

    def ack(self, cseq: int) -> None:
        data, _ = self.caller.request("ACK", self.callee_target, [
            *[("Route", r) for r in self.caller_routes], ("From", self.from_), ("To", self.caller_to),
            ("Call-ID", self.call_id), ("CSeq", f"{cseq} ACK")])
        self.caller.send(data)
        self.callee.request_in("ACK")

    def from_caller(self, method: str) -> tuple[Request, Response]:
        self.cseq += 1
        other_realm = 'Digest username="x", realm="carrier.example", nonce="n", uri="sip:a", response="0"'
        data, branch = self.caller.request(method, self.callee_target, [
            *[("Route", r) for r in self.caller_routes], ("From", self.from_), ("To", self.caller_to),
            ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}"), ("Proxy-Authorization", self.auth),
            ("Proxy-Authorization", other_realm)], body=SDP if method == "INVITE" else b"")
        self.caller.send(data)
        got = self.callee.request_in(method)
        self.callee.reply(got, 200, "OK", body=SDP if method == "INVITE" else b"")
        back = self.caller.final_to(branch)
        if method == "INVITE":
            self.ack(self.cseq)
        return got, back

    def from_callee(self, method: str) -> tuple[Request, Response]:
        self.callee_cseq += 1
        data, branch = self.callee.request(method, self.caller_target, [
            *[("Route", r) for r in self.callee_routes], ("From", self.got.headers.get("to") + ";tag=callee"
                                                           if ";tag=" not in (self.got.headers.get("to") or "")
                                                           else self.got.headers.get("to") or ""),
            ("To", self.got.headers.get("from") or ""), ("Call-ID", self.call_id),
            ("CSeq", f"{self.callee_cseq} {method}")])
        self.callee.send(data)
        got = self.caller.request_in(method)
        self.caller.reply(got, 200, "OK")
        return got, self.callee.final_to(branch)


@pytest.mark.parametrize(("caller_tp", "callee_tp"), list(itertools.product(TRANSPORTS, TRANSPORTS)))
def test_in_dialog_requests_both_ways_for_each_transport_mix(tls_server, caller_tp: str, callee_tp: str) -> None:
    srv, tls_port, ctx = tls_server
    a, b = str(next(_numbers)), str(next(_numbers))
    devs = add_accounts(srv, [(a, "Bob", 1), (b, "Alice", 1)])
    callee = peer(srv, tls_port, ctx, callee_tp)
    caller = peer(srv, tls_port, ctx, caller_tp)
    try:
        host = f"{LOOPBACK}:{tls_port if callee_tp == 'tls' else srv.sip_port}"
        assert callee.register(b, devs[b][0].auth_username, devs[b][0].secret, host).status == 200
        call = Call(srv, tls_port, caller, callee, a, devs[a][0], b)
        assert f'"Bob" <sip:{a}@' in (call.got.headers.get("from") or "")  # the callee sees the account
        for method in METHODS:
            got, back = call.from_caller(method)
            creds = got.headers.get_all("proxy-authorization")
            assert all("carrier.example" in c for c in creds) and len(creds) == 1, (method, creds)
            assert a + "_" not in str(got.headers.get("from")) and got.headers.get("from") == call.got.headers.get(
                "from"), method
            assert (back.status, back.headers.get("from"), back.headers.get("to")) == (200, call.from_,
                                                                                       call.caller_to), method
            got, back = call.from_callee(method)
            assert got.headers.get("to") == call.from_, f"{method}: the caller must see its own From as To"
            assert back.status == 200 and back.headers.get("to") == call.got.headers.get("from"), method
        got, back = call.from_caller("BYE")
        assert back.status == 200 and got.headers.get("proxy-authorization") is not None  # only carrier's left
        assert "onenumber" not in (got.headers.get("proxy-authorization") or "")
    finally:
        caller.close()
        callee.close()


FORGED = """{method} sip:target@127.0.0.1:{target} SIP/2.0
Via: SIP/2.0/{tp} 127.0.0.1:{me};branch=z9hG4bKforged{method}{n};rport
Route: <{route};lr>
From: <sip:1000@127.0.0.1>;tag=a
To: <sip:target@127.0.0.1>;tag=b
Call-ID: forged-{n}
CSeq: 2 {method}
Max-Forwards: 70
Content-Length: 0

"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_forged_in_dialog_requests_are_refused_and_never_relayed(tls_server, transport: str) -> None:
    """Regression (issue 6 §1): the datagram of the issue was relayed to the address it named."""
    srv, tls_port, ctx = tls_server
    udp_target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_target.bind((LOOPBACK, 0))
    tcp_target = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp_target.bind((LOOPBACK, udp_target.getsockname()[1]))
    tcp_target.listen(4)
    target = udp_target.getsockname()[1]
    p = peer(srv, tls_port, ctx, transport)
    try:
        route = server_uri(srv, tls_port, transport).replace(f";transport={transport}", "")
        if transport != "udp":
            route += f";transport={transport}"
        for n, method in enumerate(("INVITE", "BYE", "INFO", "MESSAGE", "UPDATE", "NOTIFY", "REFER", "PRACK")):
            data = FORGED.format(method=method, target=target, tp=transport.upper(), me=p.port, n=n,
                                 route=route).replace("\n", "\r\n").encode()
            p.send(data)
            resp = p.final_to(f"z9hG4bKforged{method}{n}")
            assert resp.status == 403, (method, resp.status, resp.reason)
        ack = FORGED.format(method="ACK", target=target, tp=transport.upper(), me=p.port, n=99,
                            route=route).replace("\n", "\r\n").encode()
        p.send(ack)
        udp_target.settimeout(1.0)
        with pytest.raises(TimeoutError):
            udp_target.recvfrom(65535)
        tcp_target.settimeout(0.2)
        with pytest.raises(TimeoutError):
            tcp_target.accept()
    finally:
        p.close()
        udp_target.close()
        tcp_target.close()


def test_a_dialog_set_up_before_a_restart_is_relayed_after_it(tmp_path: Path) -> None:
    srv = Server(tmp_path / "server")
    srv.start()
    try:
        devs = add_accounts(srv, [("1001", "Bob", 1), ("1000", "Alice", 1)])
        callee = SocketPeer("udp", srv.sip_port)
        caller = SocketPeer("udp", srv.sip_port)
        assert callee.register("1000", devs["1000"][0].auth_username, devs["1000"][0].secret,
                               srv.address).status == 200
        call = Call(srv, 0, caller, callee, "1001", devs["1001"][0], "1000")
        srv.restart()
        got, back = call.from_callee("INFO")
        assert got.headers.get("to") == call.from_  # restored from the signed Record-Route
        got, back = call.from_caller("BYE")
        assert back.status == 200 and got.method == "BYE"
    finally:
        srv.stop()
