"""The media seam (issue 8), sans-IO: a call between a browser (WebSocket, WebRTC SDP) and a
deskphone (UDP, plain RTP) waits for the relay to rewrite each SDP; without a relay it is
refused with a reason; nothing is sent for a call cancelled meanwhile."""

from __future__ import annotations

from dataclasses import replace

from onenumber.media.bridge import NO_RELAY_REASON
from onenumber.routing.model import DeviceKind
from onenumber.settings import Trunk

from .sipnet import TRUNK, Net, invite, make_account, reply, requests_to, responses_to

D0, WEB = 31000, 31002


def office() -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 2)
    devs[1] = replace(devs[1], kind=DeviceKind.WEBPHONE)
    net = Net([alice], devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    return net, devs


def web_invites(out: list) -> list:
    return [m for s, m in out if s.conn == "ws-1" and getattr(m, "method", None) == "INVITE"]


def test_a_call_to_the_browser_goes_through_the_relay_both_ways() -> None:
    net, devs = office()
    net.bind(devs[0], D0)
    net.bind(devs[1], WEB, transport="ws", flow="ws-1")
    asked = net.fake_relay()
    out = net.send(invite("1000", TRUNK), TRUNK)
    (desk,) = requests_to(out, D0, "INVITE")
    (web,) = web_invites(out)
    assert b"a=relayed" not in desk.body  # RTP to RTP: untouched, no relay
    assert web.body.endswith(b"a=relayed:webrtc\r\n")  # the browser gets the relay's WebRTC offer
    assert int(web.headers.get("content-length") or 0) == len(web.body)
    ok = reply(web, 200, "OK", tag="web", contact="sip:x@df7jal23ls0d.invalid;transport=ws")
    ok.set_body(b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA\r\n", "application/sdp")
    out = net.send(ok, ("127.0.0.1", WEB), transport="ws", conn="ws-1")
    (answer,) = [r for r in responses_to(out, TRUNK[1]) if r.status == 200]
    assert answer.body.endswith(b"a=relayed:rtp\r\n")  # the caller gets plain RTP back
    assert [(r.to_tag is None, r.to_webrtc) for r in asked] == [(True, True), (False, False)]
    # the browser puts the call on hold: its re-INVITE's SDP goes through the relay too
    routes = web.headers.get_all("record-route")
    reinvite = "\r\n".join([
        f"INVITE sip:caller@{TRUNK[0]}:{TRUNK[1]} SIP/2.0", "Via: SIP/2.0/WS x.invalid;branch=z9hG4bKhold",
        *[f"Route: {r}" for r in routes], f"From: {answer.headers.get('to')}", f"To: {answer.headers.get('from')}",
        f"Call-ID: {answer.call_id}", "CSeq: 5 INVITE", "Max-Forwards: 70", "Content-Type: application/sdp",
        "Content-Length: 46", "", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"])
    out = net.send(reinvite.encode(), ("127.0.0.1", WEB), transport="ws", conn="ws-1")
    (hold,) = requests_to(out, TRUNK[1], "INVITE")
    assert hold.body.endswith(b"a=relayed:rtp\r\n")
    # a DTMF INFO from the browser (JsSIP's default) is not SDP: relayed as it is, the relay not asked
    before = len(asked)
    info = "\r\n".join([
        f"INFO sip:caller@{TRUNK[0]}:{TRUNK[1]} SIP/2.0", "Via: SIP/2.0/WS x.invalid;branch=z9hG4bKdtmf",
        *[f"Route: {r}" for r in routes], f"From: {answer.headers.get('to')}", f"To: {answer.headers.get('from')}",
        f"Call-ID: {answer.call_id}", "CSeq: 6 INFO", "Max-Forwards: 70", "Content-Type: application/dtmf-relay",
        "Content-Length: 22", "", "Signal=5\r\nDuration=100"])
    out = net.send(info.encode(), ("127.0.0.1", WEB), transport="ws", conn="ws-1")
    (dtmf,) = requests_to(out, TRUNK[1], "INFO")
    assert dtmf.body == b"Signal=5\r\nDuration=100" and len(asked) == before


def test_without_a_relay_the_browser_cannot_be_reached_and_the_caller_is_told_why() -> None:
    net, devs = office()
    net.bind(devs[1], WEB, transport="ws", flow="ws-1")
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert not web_invites(out)
    (final,) = [r for r in responses_to(out, TRUNK[1]) if r.status >= 200]
    assert (final.status, final.reason) == (488, NO_RELAY_REASON)


def test_a_call_cancelled_while_the_relay_works_sends_nothing_to_the_browser() -> None:
    net, devs = office()
    net.bind(devs[1], WEB, transport="ws", flow="ws-1")
    asked = net.fake_relay(answer_now=False)
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    assert not web_invites(out) and len(asked) == 1
    cancel = bytes(req).decode().replace("INVITE sip", "CANCEL sip", 1).replace("1 INVITE", "1 CANCEL")
    out = net.send((cancel.split("Content-Type")[0] + "Content-Length: 0\r\n\r\n").encode(), TRUNK)
    assert sorted(r.status for r in responses_to(out, TRUNK[1])) == [200, 487]
    net.relay_answer(asked[0])
    assert not web_invites(net.drain())


def test_a_relay_that_fails_ends_the_branch_with_488() -> None:
    net, devs = office()
    net.bind(devs[1], WEB, transport="ws", flow="ws-1")
    asked = net.fake_relay(answer_now=False)
    net.send(invite("1000", TRUNK), TRUNK)
    net.relay_answer(asked[0], fail=True)
    (final,) = [r for r in responses_to(net.drain(), TRUNK[1]) if r.status >= 200]
    assert final.status == 488 and "relay" in final.reason
