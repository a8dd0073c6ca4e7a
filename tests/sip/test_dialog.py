"""UAS dialogs: stored from the request, answered with one tag, in-dialog requests routed right."""

import pytest

from onenumber.sip.dialog import Dialog, response_for
from onenumber.sip.message import Request, parse

INVITE = (
    "INVITE sip:1000@127.0.0.1:25060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bKabc;rport\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Bob" <sip:1001@example.com>;tag=ft\r\n'
    "To: <sip:1000@example.com>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:1001@10.0.0.2:5080>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def invite(text: str = INVITE) -> Request:
    return parse(text.encode())  # type: ignore[return-value]


def test_from_request_and_matching():
    d = Dialog.from_request(invite(), "lt")
    assert (d.call_id, d.local_tag, d.remote_tag) == ("c1", "lt", "ft")
    assert (d.local_uri, d.remote_uri, d.remote_target) == (
        "sip:1000@example.com", "sip:1001@example.com", "sip:1001@10.0.0.2:5080",
    )
    assert d.route_set == ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    assert d.remote_cseq == 10 and d.remote_display == '"Bob"'
    bye = invite(INVITE.replace("INVITE sip", "BYE sip").replace("10 INVITE", "11 BYE")
                 .replace("To: <sip:1000@example.com>", "To: <sip:1000@example.com>;tag=lt"))
    assert d.matches(bye)
    assert not d.matches(invite())
    with pytest.raises(ValueError):
        Dialog.from_request(invite(INVITE.replace("Contact: <sip:1001@10.0.0.2:5080>\r\n", "")), "x")


def test_in_dialog_request_loose_and_strict():
    d = Dialog.from_request(invite(), "lt")
    bye = d.request("BYE")
    assert bye.uri == "sip:1001@10.0.0.2:5080"
    assert bye.headers.get_all("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.headers.get("from") == "<sip:1000@example.com>;tag=lt"
    assert bye.headers.get("to") == "<sip:1001@example.com>;tag=ft"
    assert str(bye.cseq) == "1 BYE" and str(d.request("INFO", body=b"x", content_type="text/plain").cseq) == "2 INFO"
    strict = Dialog.from_request(invite(INVITE.replace("<sip:p1.example.com;lr>", "<sip:p1.example.com>")), "lt")
    req = strict.request("BYE")
    assert req.uri == "sip:p1.example.com"
    assert req.headers.get_all("route") == ["<sip:p2.example.com;lr>", "<sip:1001@10.0.0.2:5080>"]


def test_response_for_keeps_one_tag():
    req = invite()
    ringing = response_for(req, 180, "Ringing", "lt")
    ok = response_for(req, 200, "OK", "lt", [("Contact", "<sip:vm@127.0.0.1>")], b"v=0\r\n", "application/sdp")
    assert ringing.to.tag == ok.to.tag == "lt"
    assert ok.headers.get_all("record-route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ok.headers.get("content-type") == "application/sdp" and ok.body == b"v=0\r\n"
    trying = response_for(req, 100, "Trying", "lt")
    assert trying.to.tag is None and "record-route" not in trying.headers
    assert response_for(req, 486, "Busy Here", "lt").headers.get_all("record-route") == []
    # a request that already has a To tag keeps it
    tagged = invite(INVITE.replace("To: <sip:1000@example.com>", "To: <sip:1000@example.com>;tag=old"))
    assert response_for(tagged, 200, "OK", "new").to.tag == "old"
    again = parse(bytes(ok))
    assert again.body == b"v=0\r\n"


def _reference_request(d: Dialog, method: str, extra: list[tuple[str, str]], body: bytes,
                       content_type: str | None) -> bytes:
    """The in-dialog request as it was built before (Headers.add per field, then set_body)."""
    from onenumber.sip.headers import NameAddr
    from onenumber.sip.message import Headers
    from onenumber.sip.uri import SipUri

    uri, routes = d.remote_target, list(d.route_set)
    if routes:
        first = NameAddr.parse(routes[0])
        if not (isinstance(first.uri, SipUri) and first.uri.has_param("lr")):
            uri, routes = str(first.uri), [*routes[1:], f"<{d.remote_target}>"]
    h = Headers()
    for r in routes:
        h.add("Route", r)
    h.add("Max-Forwards", "70")
    h.add("From", f"<{d.local_uri}>;tag={d.local_tag}")
    h.add("To", f"<{d.remote_uri}>" + (f";tag={d.remote_tag}" if d.remote_tag else ""))
    h.add("Call-ID", d.call_id)
    h.add("CSeq", f"{d.local_cseq} {method}")
    for name, value in extra:
        h.add(name, value)
    req = Request(method, uri, h)
    req.set_body(body, content_type if body else None)
    return bytes(req)


@pytest.mark.parametrize("text", [INVITE, INVITE.replace("<sip:p1.example.com;lr>", "<sip:p1.example.com>"),
                                  INVITE.replace("Record-Route: <sip:p1.example.com;lr>\r\n", "").replace(
                                      "Record-Route: <sip:p2.example.com;lr>\r\n", "")])
@pytest.mark.parametrize(("extra", "body", "ctype"), [
    ([("Event", "dialog"), ("Subscription-State", "active;expires=60"), ("Contact", "<sip:1000@h>")],
     b"<xml/>", "application/dialog-info+xml"),
    ([], b"", None),
    ([("Content-Type", "text/plain")], b"hi", "text/plain"),  # a caller's own body headers still win
])
def test_request_is_byte_for_byte_the_old_one(text, extra, body, ctype) -> None:
    d = Dialog.from_request(invite(text), "lt")
    req = d.request("NOTIFY", extra, body, ctype)
    assert bytes(req) == _reference_request(d, "NOTIFY", extra, body, ctype)
    # what the request remembers is what parsing it would give
    req.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bKx")
    again = parse(bytes(req))
    assert req.cseq == again.cseq
    assert req.routes == again.routes
