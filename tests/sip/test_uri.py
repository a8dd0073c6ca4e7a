"""SIP URI parsing (RFC 3261 §19.1.1, §25.1) and comparison (§19.1.4)."""

from __future__ import annotations

import pytest

from onenumber.sip.errors import ParseError
from onenumber.sip.uri import AbsoluteUri, SipUri, parse_sip, parse_uri


def test_parts() -> None:
    u = parse_uri("sips:alice:secret@Example.COM:5061;transport=tls;lr;maddr=[2001:db8::1]?subject=hi&x=%20")
    assert isinstance(u, SipUri)
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sips", "alice", "secret", "Example.COM", 5061)
    assert u.params == (("transport", "tls"), ("lr", None), ("maddr", "[2001:db8::1]"))
    assert u.headers == "subject=hi&x=%20"
    assert u.param("LR") == "" and u.param("nope") is None and u.has_param("Transport")
    assert u.transport == "tls" and u.host_lower == "example.com" and u.default_port() == 5061
    assert str(u) == "sips:alice:secret@Example.COM:5061;transport=tls;lr;maddr=[2001:db8::1]?subject=hi&x=%20"
    assert str(u.without_headers()).endswith("maddr=[2001:db8::1]")


def test_userinfo_is_everything_before_the_at() -> None:
    u = parse_uri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com")
    assert isinstance(u, SipUri) and u.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*" and u.params == ()
    u = parse_uri("sip:user;par=u%40example.net@example.com;p=1")
    assert isinstance(u, SipUri) and u.user == "user;par=u%40example.net" and u.params == (("p", "1"),)
    assert u.user_unescaped == "user;par=u@example.net"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None),
        ("sip:u@[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", None),
        ("sip:u@192.0.2.1:0", "192.0.2.1", 0),
        ("sip:host.example.com.", "host.example.com.", None),
    ],
)
def test_hosts(text: str, host: str, port: int | None) -> None:
    u = parse_sip(text)
    assert (u.host, u.port) == (host, port)


def test_liberal_unescaped_uri_headers() -> None:
    u = parse_sip("sip:carol@example.com?Replaces=call%40h;to-tag=1")
    assert u.user == "carol" and u.headers == "Replaces=call%40h;to-tag=1"


def test_other_schemes() -> None:
    assert parse_uri("tel:+1-201-555-0123") == AbsoluteUri("tel", "+1-201-555-0123")
    assert parse_uri("SIP:a@b").scheme == "sip"  # type: ignore[union-attr]
    assert isinstance(parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"), AbsoluteUri)
    with pytest.raises(ParseError) as info:
        parse_sip("tel:123")
    assert info.value.status == 416


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "sip:",
        "sip:@host",
        "sip:a b@host",
        "sip:host:99999",
        "sip:host:",
        "sip:host;",
        "sip:host;;x",
        "sip:host;a=",
        "sip:2001:db8::10",
        "sip:[2001:db8::10",
        "sip:<host>",
        "sip:host?",
        'sip:us"er@host',
        "sip:-host",
        "1sip:host",
        "tel:a b",
        "sip:a@b@c",
        "sip:host:5060x",
        "sip:u%zz@host",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


# RFC 3261 §19.1.4, the examples
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    ("SIP:bob@biloxi.com", "sip:bob@BILOXI.com"),
    ("sip:bob@biloxi.com;lr", "sip:bob@biloxi.com;LR"),
]
DIFFERENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
    ("sip:bob:pw@biloxi.com", "sip:bob@biloxi.com"),
    ("sip:a%3Bb@h", "sip:a;b@h"),  # an escaped reserved character is not the character
    ("sip:h;maddr=1.2.3.4", "sip:h"),
    ("sip:h;user=phone", "sip:h;user=ip"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent(a: str, b: str) -> None:
    ua, ub = parse_sip(a), parse_sip(b)
    assert ua.equivalent(ub) and ub.equivalent(ua)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_not_equivalent(a: str, b: str) -> None:
    ua, ub = parse_sip(a), parse_sip(b)
    assert not ua.equivalent(ub) and not ub.equivalent(ua)


def test_not_equivalent_to_other_schemes() -> None:
    assert not parse_sip("sip:a@b").equivalent(AbsoluteUri("tel", "123"))


def test_escaped_param_names() -> None:
    u = parse_sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert u.has_param("lr") and u.param("name") == "v%61lue%25%34%31"
