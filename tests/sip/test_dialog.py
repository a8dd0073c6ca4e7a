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
