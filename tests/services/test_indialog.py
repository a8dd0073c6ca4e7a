"""In-dialog requests (issue 6), sans-IO: no open relay, credentials consumed, From/To kept as
each side knows them, and genuine dialogs still relayed, in both directions and after a restart."""

from __future__ import annotations

import pytest

from onenumber.settings import Trunk
from onenumber.sip.message import Request, Response

from .sipnet import SERVER, TRUNK, Net, answer_auth, invite, make_account, reply, requests_to, responses_to

PHONE = ("127.0.0.1", 32000)  # 1001's device, the caller
D0 = 31000  # 1000's device
TARGET = 39999  # where a forged request wants to go
METHODS = ["INVITE", "BYE", "INFO", "MESSAGE", "ACK", "UPDATE", "NOTIFY", "REFER", "PRACK"]


def make_net() -> Net:
    alice, devs = make_account("1000", "Alice", 1)
    bob, bob_devs = make_account("1001", "Bob", 1)
    net = Net([alice, bob], devs + bob_devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    net.bind(devs[0], D0)
    return net


def forged(method: str, *, route: str | None, call_id: str = "r1") -> bytes:
    lines = [
        f"{method} sip:target@127.0.0.1:{TARGET} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{PHONE[1]};branch=z9hG4bKf{method};rport",
    ]
    if route:
        lines.append(f"Route: {route}")
    lines += [
        "From: <sip:1000@127.0.0.1>;tag=a", "To: <sip:target@127.0.0.1>;tag=b", f"Call-ID: {call_id}",
        f"CSeq: 2 {method}", "Max-Forwards: 70", "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("route", [f"<sip:127.0.0.1:{SERVER[1]};lr>",
                                   f"<sip:127.0.0.1:{SERVER[1]};lr;ons=AAAAAAAAAAAAAAAA>", None])
def test_forged_in_dialog_request_is_never_relayed(method: str, route: str | None) -> None:
    """Regression (issue 6 §1): a To-tag and a Route naming us used to be relayed anywhere."""
    net = make_net()
    out = net.send(forged(method, route=route), PHONE)
    assert not [s for s, _ in out if s.remote[1] == TARGET]
    statuses = [r.status for r in responses_to(out, PHONE[1])]
    if method == "ACK":
        assert statuses == []
    else:
        assert statuses == ([403] if route else [481])


def establish(net: Net, seen: list[Response] | None = None) -> tuple[Request, Response, Request]:
    """1001 (device 1001 at PHONE) calls 1000; 1000's device answers. Returns the caller's
    authenticated INVITE, the 200 it got and the INVITE the callee got; `seen` gets every
    response the caller got for it."""
    req = invite("1000", PHONE, from_user="1001")
    (challenge,) = responses_to(net.send(req, PHONE), PHONE[1])
    auth = answer_auth(challenge, req, "1001", "secret-1001-0")
    req2 = invite("1000", PHONE, from_user="1001", call_id=req.call_id, auth=auth, cseq=2)
    out = net.send(req2, PHONE)
    (fwd,) = requests_to(out, D0, "INVITE")
    out += net.send(reply(fwd, 180, "Ringing", tag="callee"), ("127.0.0.1", D0))
    out += net.send(reply(fwd, 200, "OK", tag="callee", contact=f"sip:1000@127.0.0.1:{D0}"), ("127.0.0.1", D0))
    if seen is not None:
        seen += responses_to(out, PHONE[1])
    ok = next(r for r in responses_to(out, PHONE[1]) if r.status == 200)
    return req2, ok, fwd


def in_dialog(method: str, *, ruri: str, routes: list[str], from_: str, to: str, call_id: str, src: int,
              extra: str = "", cseq: int = 3) -> bytes:
    lines = [f"{method} {ruri} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bKid{method}{cseq};rport"]
    lines += [f"Route: {r}" for r in routes]
    lines += [f"From: {from_}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", "Max-Forwards: 70"]
    if extra:
        lines.append(extra)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_caller_responses_carry_its_own_from_and_the_callee_sees_the_account() -> None:
    """Regression (issue 6 §3): the 180/200 used to carry the rewritten From."""
    net = make_net()
    seen: list[Response] = []
    req, _ok, fwd = establish(net, seen)
    sent_from = req.headers.get("from")
    assert [r.status for r in seen] == [100, 180, 200]
    assert all(r.headers.get("from") == sent_from for r in seen)
    assert '"Bob" <sip:1001@' in (fwd.headers.get("from") or "")
    assert fwd.from_.tag == req.from_.tag


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("ACK",)])
def test_genuine_requests_relayed_both_ways_with_from_to_as_each_side_knows_them(method: str) -> None:
    net = make_net()
    req, ok, fwd = establish(net)
    routes = list(reversed(ok.headers.get_all("record-route")))
    caller_from, caller_to = req.headers.get("from") or "", ok.headers.get("to") or ""
    # caller → callee, carrying its credentials for our realm and one for another realm
    creds = req.headers.get("proxy-authorization") or ""
    other = 'Digest username="x", realm="carrier", nonce="n", uri="sip:a", response="0"'
    data = in_dialog(method, ruri=f"sip:1000@127.0.0.1:{D0}", routes=routes, from_=caller_from, to=caller_to,
                     call_id=req.call_id, src=PHONE[1],
                     extra=f"Proxy-Authorization: {creds}\r\nProxy-Authorization: {other}")
    out = net.send(data, PHONE)
    (got,) = requests_to(out, D0, method)
    assert got.headers.get_all("proxy-authorization") == [other]  # ours consumed, the carrier's kept
    assert "1001@" not in (got.headers.get("from") or "").split(";")[0] or '"Bob"' in (got.headers.get("from") or "")
    assert got.headers.get("from") == fwd.headers.get("from")  # as the callee knows the caller
    resp = net.send(reply(got, 200, "OK"), ("127.0.0.1", D0))
    (back,) = [r for r in responses_to(resp, PHONE[1]) if r.status == 200]
    assert back.headers.get("from") == caller_from and back.headers.get("to") == caller_to
    # callee → caller: the To names the caller as the callee saw it; the caller gets its own From back
    callee_routes = fwd.headers.get_all("record-route")
    data = in_dialog(method, ruri=f"sip:1001@{PHONE[0]}:{PHONE[1]}", routes=callee_routes,
                     from_=got.headers.get("to") or "", to=fwd.headers.get("from") or "", call_id=req.call_id,
                     src=D0, cseq=9)
    out = net.send(data, ("127.0.0.1", D0))
    (to_caller,) = requests_to(out, PHONE[1], method)
    assert to_caller.headers.get("to") == caller_from
    back = [r for r in responses_to(net.send(reply(to_caller, 200, "OK"), PHONE), D0) if r.status == 200]
    assert back and back[0].headers.get("to") == fwd.headers.get("from")


def test_genuine_dialog_relayed_after_a_restart_by_its_signature() -> None:
    net = make_net()
    req, ok, fwd = establish(net)
    routes = list(reversed(ok.headers.get_all("record-route")))
    restarted = Net(net.accounts, net.devices, trunks=net.trunks)  # same secret, no dialog state
    restarted.bind(net.directory.devices("1000")[0], D0)
    caller_from, caller_to = req.headers.get("from") or "", ok.headers.get("to") or ""
    out = restarted.send(in_dialog("BYE", ruri=f"sip:1000@127.0.0.1:{D0}", routes=routes, from_=caller_from,
                                   to=caller_to, call_id=req.call_id, src=PHONE[1]), PHONE)
    assert len(requests_to(out, D0, "BYE")) == 1
    # the callee's BYE after the restart: the caller still gets its own From as the To
    out = restarted.send(in_dialog("BYE", ruri=f"sip:1001@{PHONE[0]}:{PHONE[1]}",
                                   routes=fwd.headers.get_all("record-route"), from_=ok.headers.get("to") or "",
                                   to=fwd.headers.get("from") or "", call_id=req.call_id, src=D0, cseq=7),
                         ("127.0.0.1", D0))
    (bye,) = requests_to(out, PHONE[1], "BYE")
    assert bye.headers.get("to") == caller_from


def test_a_signature_does_not_travel_to_another_dialog() -> None:
    net = make_net()
    _req, ok, _ = establish(net)
    routes = list(reversed(ok.headers.get_all("record-route")))
    data = in_dialog("INVITE", ruri=f"sip:target@127.0.0.1:{TARGET}", routes=routes,
                     from_="<sip:1000@127.0.0.1>;tag=zz", to="<sip:t@127.0.0.1>;tag=yy", call_id="other", src=PHONE[1])
    out = net.send(data, PHONE)
    assert not [s for s, _ in out if s.remote[1] == TARGET]
    assert [r.status for r in responses_to(out, PHONE[1])] == [403]


def test_in_dialog_request_for_our_account_is_routed_as_usual() -> None:
    """No dialog explains it, but it is for one of our accounts: authenticated, then routed there."""
    net = make_net()
    data = forged("INVITE", route=None).replace(f"sip:target@127.0.0.1:{TARGET}".encode(),
                                                f"sip:1000@127.0.0.1:{SERVER[1]}".encode())
    out = net.send(data, PHONE)
    assert [r.status for r in responses_to(out, PHONE[1])] == [407]




def test_answers_the_proxy_makes_itself_carry_the_callers_from() -> None:
    """A 480 after no answer is built by the proxy: from the request as the caller sent it."""
    net = make_net()
    req = invite("1000", PHONE, from_user="1001")
    (challenge,) = responses_to(net.send(req, PHONE), PHONE[1])
    auth = answer_auth(challenge, req, "1001", "secret-1001-0")
    req2 = invite("1000", PHONE, from_user="1001", call_id=req.call_id, auth=auth, cseq=2)
    out = net.send(req2, PHONE)
    out += net.advance(200)
    finals = [r for r in responses_to(out, PHONE[1]) if r.status >= 100]
    assert finals and finals[-1].status >= 400
    assert all(r.headers.get("from") == req2.headers.get("from") for r in finals)
