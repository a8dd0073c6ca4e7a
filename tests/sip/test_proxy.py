"""Proxy helpers (onenumber.sip.proxy): what they remember must be what parsing gives."""

from __future__ import annotations

import pytest

from onenumber.sip.headers import NameAddr, Via
from onenumber.sip.message import Request, parse
from onenumber.sip.proxy import set_from, via_value


@pytest.mark.parametrize(("transport", "host"), [("udp", "127.0.0.1"), ("tcp", "[2001:db8::1]"), ("ws", "pbx.example")])
def test_via_value_remembers_what_parse_gives(transport: str, host: str) -> None:
    value = via_value(transport, host, 5070, "z9hG4bKon1234.abcd")
    assert Via.parse(value) == Via._parse(value)
    assert Via.parse(value).branch == "z9hG4bKon1234.abcd"


@pytest.mark.parametrize(("name_addr", "tag"), [
    ('"Alice \\"A\\"" <sip:100@pbx.example>', "3f2a9c81b"),
    ('"" <sip:100@pbx.example>', "x"),
    ("<sip:100@pbx.example>", ""),
    ('"Bob" <sip:200@[2001:db8::1]:5070>', "tag:with[odd]chars"),  # not a token: parsed on demand
])
def test_set_from_remembers_what_parse_gives(name_addr: str, tag: str) -> None:
    req = parse(
        b"INVITE sip:1@pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
        b"From: <sip:9@10.0.0.1>;tag=old\r\nTo: <sip:1@pbx.example>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(req, Request)
    value = set_from(req, name_addr, tag)
    assert req.headers.get("from") == value
    assert req.from_ == NameAddr._parse(value)
    assert req.from_.tag == (tag or None)
