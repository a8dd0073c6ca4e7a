"""Typed header views: Via, NameAddr, CSeq, parameters, comma lists, auth, Contact."""

from __future__ import annotations

import pytest

from onenumber.sip.errors import ParseError
from onenumber.sip.headers import (
    CSeq,
    NameAddr,
    Via,
    get_param,
    parse_contacts,
    parse_params,
    split_commas,
)
from onenumber.sip.uri import AbsoluteUri, SipUri


def test_via_forms() -> None:
    v = Via.parse("SIP / 2.0 / udp  host.example.com : 5062 ; branch = z9hG4bK1 ;rport;received=192.0.2.1")
    assert (v.transport, v.host, v.port) == ("UDP", "host.example.com", 5062)
    assert v.branch == "z9hG4bK1" and v.param("rport") == "" and v.param("received") == "192.0.2.1"
    assert v.sent_by == ("host.example.com", 5062)
    assert str(v) == "SIP/2.0/UDP host.example.com:5062;branch=z9hG4bK1;rport;received=192.0.2.1"
    v6 = Via.parse("SIP/2.0/TLS [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
    assert v6.host == "[2001:db8::9:1]" and v6.sent_by == ("[2001:db8::9:1]", 5061)
    assert Via.parse("SIP/2.0/UDP h;received=[2001:db8::9:255]").param("received") == "[2001:db8::9:255]"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 host",
        "HTTP/1.1/TCP host",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host;",
        "SIP/2.0/UDP host extra",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host;a=",
        "SIP/2.0/UDP [::1",
    ],
)
def test_via_invalid(value: str) -> None:
    with pytest.raises(ParseError):
        Via.parse(value)


def test_name_addr_forms() -> None:
    na = NameAddr.parse('"Alice \\"Al\\" Smith" <sip:alice@example.com;transport=tcp>;tag=abc;expires=60')
    assert na.display == '"Alice \\"Al\\" Smith"' and na.display_text == 'Alice "Al" Smith'
    assert isinstance(na.uri, SipUri) and na.uri.param("transport") == "tcp"
    assert na.tag == "abc" and na.param("EXPIRES") == "60"
    assert str(na) == '"Alice \\"Al\\" Smith" <sip:alice@example.com;transport=tcp>;tag=abc;expires=60'
    tok = NameAddr.parse("Alice  Smith<sip:a@b>")
    assert tok.display == "Alice  Smith" and tok.display_text == "Alice  Smith"
    spec = NameAddr.parse("sip:a@b;tag=1")
    assert not spec.bracketed and spec.tag == "1" and spec.uri.params == ()  # type: ignore[union-attr]
    assert isinstance(NameAddr.parse("<urn:service:sos>").uri, AbsoluteUri)
    q = NameAddr.parse('<sip:a@b>;+sip.instance="<urn:uuid:1>";reg-id=1')
    assert q.param("+sip.instance") == '"<urn:uuid:1>"'


@pytest.mark.parametrize(
    "value",
    [
        "",
        '"unterminated <sip:a@b>',
        "Bell, Alexander <sip:a@b>",
        "< sip:a@b>",
        "<sip:a@b >",
        "<sip:a@b",
        "sip:a@b?x=y",
        "sip:a@b,c",
        "<sip:a@b>;;",
        "<sip:a@b> junk",
        '"x" sip:a@b',
        "<>",
        "<sip:a@b>;tag=",
    ],
)
def test_name_addr_invalid(value: str) -> None:
    with pytest.raises(ParseError):
        NameAddr.parse(value)


def test_cseq() -> None:
    assert CSeq.parse(" 0009  INVITE ") == CSeq(9, "INVITE")
    assert str(CSeq(4294967295, "BYE")) == "4294967295 BYE"
    for bad in ["", "1", "INVITE", "4294967296 INVITE", "-1 INVITE", "1 IN VITE", "²1 INVITE"]:
        with pytest.raises(ParseError):
            CSeq.parse(bad)


def test_params_and_commas() -> None:
    assert parse_params(";lr;ftag = x ; q=0.5") == (("lr", None), ("ftag", "x"), ("q", "0.5"))
    assert parse_params("a=b") == (("a", "b"),)
    assert parse_params('x="a;b,c"') == (("x", '"a;b,c"'),)
    assert get_param((("Tag", "1"),), "tag") == "1" and get_param((), "tag") is None
    with pytest.raises(ParseError):
        parse_params(";a=b c")
    assert split_commas("a, b ,c") == ["a", "b", "c"]
    assert split_commas('"x, y" <sip:a@b;p=1,2>, <sip:c@d>') == ['"x, y" <sip:a@b;p=1,2>', "<sip:c@d>"]
    assert split_commas('"a\\", b" <sip:a@b>') == ['"a\\", b" <sip:a@b>']


def test_contacts() -> None:
    assert parse_contacts(["*"]) is None
    c = parse_contacts(["<sip:a@b>;expires=0", "sip:c@d"])
    assert c is not None and [str(x.uri) for x in c] == ["sip:a@b", "sip:c@d"]
    with pytest.raises(ParseError):
        parse_contacts(["*", "<sip:a@b>"])


def test_remembered_via_is_what_parse_gives() -> None:
    from onenumber.sip.headers import Via

    value = "SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bKremember1;rport"
    built = Via("UDP", "127.0.0.1", 25060, (("branch", "z9hG4bKremember1"), ("rport", None)))
    assert Via._parse(value) == built
    Via.remember(value, built)
    assert Via.parse(value) is built
