"""Overload through the whole core (sans-IO): a call set up before the overload is ended by
BYE normally, a CANCEL still stops a ringing call, new calls get 503 + Retry-After."""

from __future__ import annotations

from .sipnet import invite, reply, requests_to, responses_to
from .test_calls import D0, D1, TRUNK, two_devices


def _bye(ok, n: int) -> bytes:
    rr = ok.headers.get_all("record-route")
    return (
        f"BYE sip:1000@127.0.0.1:31000 SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK[0]}:{TRUNK[1]};branch=z9hG4bKbye{n};rport\r\n"
        f"Route: {rr[0]}\r\nMax-Forwards: 70\r\nFrom: {ok.headers.get('from')}\r\nTo: {ok.headers.get('to')}\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_overload_refuses_new_calls_and_serves_calls_already_accepted() -> None:
    net, _ = two_devices()
    ov = net.core.overload
    assert ov is not None and net.stack.overload is ov
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    out = net.send(reply(inv0, 200, "OK", tag="d0", contact="sip:1000@127.0.0.1:31000"), ("127.0.0.1", D0))
    ok = responses_to(out, TRUNK[1])[0]
    ringing = invite("1000", TRUNK)  # a second call, accepted and ringing when the overload starts
    out = net.send(ringing, TRUNK)
    r0 = requests_to(out, D0, "INVITE")[0]
    net.send(reply(r0, 180, "Ringing", tag="r0"), ("127.0.0.1", D0))

    for _ in range(3):  # the edge saw the loop 5 s late, sample after sample
        ov.sample(net.now, lag=5.0)
    out = net.send(invite("1000", TRUNK), TRUNK)
    (refused,) = responses_to(out, TRUNK[1])
    assert refused.status == 503 and 5 <= int(refused.headers.get("retry-after") or 0) <= 10
    assert not requests_to(out, D0) and not requests_to(out, D1)  # nothing rang

    out = net.send(_bye(ok, 1), TRUNK)
    (fwd,) = requests_to(out, D0, "BYE")
    out = net.send(reply(fwd, 200, "OK"), ("127.0.0.1", D0))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [200]

    cancel = bytes(ringing).decode().replace("INVITE sip", "CANCEL sip", 1).replace("1 INVITE", "1 CANCEL")
    out = net.send((cancel.split("Content-Type")[0] + "Content-Length: 0\r\n\r\n").encode(), TRUNK)
    assert sorted(r.status for r in responses_to(out, TRUNK[1])) == [200, 487]
    assert ov.shed == {"INVITE": 1}

    net.advance(2.0)  # calm: the hold time is over
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert requests_to(out, D0, "INVITE")
