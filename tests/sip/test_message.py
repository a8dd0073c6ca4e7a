"""parse()/bytes() on the RFC 4475 and RFC 5118 torture messages and on our own torture set."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from onenumber.sip.errors import ParseError
from onenumber.sip.headers import NameAddr
from onenumber.sip.message import Headers, Request, Response, parse
from onenumber.sip.uri import AbsoluteUri, SipUri

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "rfc4475"
TORTURE = Path(__file__).parent / "torture"

# RFC 4475 / 5118 message → what parse() must do: "ok", or the ParseError status (None: drop)
OUTCOME: dict[str, object] = {
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": None,
    "insuf": 400,
    "multi01": 400,
    "mcl01": 400,
    "ipv6-bad": 400,
    "baddate": "ok",  # "process and ignore the bad Date"
}


def assert_roundtrip(msg: Request | Response) -> None:
    """What we print parses back to the same message (bytes() adds a missing Content-Length)."""
    again = parse(bytes(msg))
    assert bytes(again) == bytes(msg)
    assert again.body == msg.body and again.start_line() == msg.start_line()
    if "content-length" in msg.headers:
        assert again == msg


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _wire_form():
    spec = importlib.util.spec_from_file_location("rfc4475_send", CONFORMANCE / "send.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.wire_form


def _cases() -> list:
    if not (CONFORMANCE / "expected.tsv").exists():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason="shared/conformance not found"))]
    out = []
    for row in _rows(CONFORMANCE / "expected.tsv"):
        out.append(
            pytest.param(
                row["name"], row["class"], (CONFORMANCE / f"{row['name']}.dat").read_bytes(), id=row["name"]
            )
        )
    wire_form = _wire_form()
    for row in _rows(CONFORMANCE / "rfc5118" / "expected.tsv"):
        data = wire_form((CONFORMANCE / "rfc5118" / row["name"]).read_bytes())
        out.append(pytest.param(row["name"], row["class"], data, id=row["name"]))
    return out


CASES = _cases()
MESSAGES = {p.values[0]: p.values[2] for p in CASES if p.values[0]}


@pytest.mark.parametrize(("name", "klass", "data"), CASES)
def test_torture_message(name: str, klass: str, data: bytes) -> None:
    expected = OUTCOME.get(name, "ok" if klass.startswith("valid") else 400)
    if expected == "ok":
        assert_roundtrip(parse(data))
        return
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.status == expected
    if expected is not None and name != "insuf":
        assert isinstance(info.value.partial, Request)  # something to answer with


def _msg(name: str) -> Request | Response:
    if name not in MESSAGES:
        pytest.skip("shared/conformance not found")
    return parse(MESSAGES[name])


def test_wsinv_values() -> None:
    m = _msg("wsinv")
    assert isinstance(m, Request)
    assert m.to.tag == "1918181833n"
    assert m.from_.display == '"J Rosenberg \\\\\\""'
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert [v.transport for v in m.vias] == ["UDP", "TCP", "UDP"]
    assert m.vias[1].branch == "z9hG4bK9ikj8"
    assert m.vias[2].branch == "z9hG4bK30239"
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("subject") == ""
    c = m.contacts
    assert c is not None and c[0].display == '"Quoted string \\"\\""'
    assert c[0].params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(m.body) == 150


def test_intmeth_values() -> None:
    m = _msg("intmeth")
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    ruri = m.request_uri
    assert isinstance(ruri, SipUri)
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert ruri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert ruri.host == "example.com"
    assert m.to.display == '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"'
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.from_.tag == "_token~1'+`*%!-."


def test_escapes() -> None:
    m = _msg("esc01")
    assert isinstance(m, Request)
    ruri = m.request_uri
    assert isinstance(ruri, SipUri) and ruri.user_unescaped == "sips:user@example.com"
    c = m.contacts
    assert c is not None and c[0].uri.param("name") == "v%61lue%25%34%31"  # type: ignore[union-attr]
    m = _msg("escnull")
    c = m.contacts
    assert c is not None and [str(x.uri) for x in c] == [
        "sip:%00@host5.example.com",
        "sip:%00%00@host5.example.com",
    ]
    assert isinstance(m.to.uri, SipUri) and m.to.uri.user_unescaped == "null-\x00-null"
    m = _msg("esc02")
    assert isinstance(m, Request) and m.method == "RE%47IST%45R"
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert "<sip:alias2@host2.example.com>" not in m.headers.get_all("contact")


def test_uri_forms_in_torture() -> None:
    m = _msg("semiuri")
    assert isinstance(m, Request)
    ruri = m.request_uri
    assert isinstance(ruri, SipUri) and ruri.user == "user;par=u%40example.net" and ruri.params == ()
    c = _msg("cparam01").contacts
    assert c is not None and c[0].params == (("unknownparam", None),) and c[0].uri.params == ()  # type: ignore[union-attr]
    c = _msg("cparam02").contacts
    assert c is not None and c[0].params == () and c[0].uri.params == (("unknownparam", None),)  # type: ignore[union-attr]
    c = _msg("regescrt").contacts
    assert c is not None and c[0].uri.headers == "Route=%3Csip:sip.example.com%3E"  # type: ignore[union-attr]
    m = _msg("unksm2")
    assert isinstance(m.to.uri, AbsoluteUri) and m.to.uri.scheme == "isbn"
    m = _msg("unkscm")
    assert isinstance(m, Request) and isinstance(m.request_uri, AbsoluteUri)


def test_framing_in_torture() -> None:
    m = _msg("dblreq")
    assert isinstance(m, Request) and m.method == "REGISTER" and m.body == b""
    m = _msg("mpart01")
    assert len(m.body) == int(m.headers.get("content-length") or -1)
    assert b"\x00" in m.body
    assert len(_msg("longreq").vias) == 34


def test_ipv6_forms() -> None:
    m = _msg("port-ambiguous")
    assert isinstance(m, Request)
    ruri = m.request_uri
    assert isinstance(ruri, SipUri) and ruri.host == "[2001:db8::10:5070]" and ruri.port is None
    ruri = _msg("port-unambiguous").request_uri  # type: ignore[union-attr]
    assert ruri.host == "[2001:db8::10]" and ruri.port == 5070
    assert _msg("via-received-param-no-delim").top_via.param("received") == "2001:db8::9:255"
    assert _msg("via-received-param-with-delim").top_via.param("received") == "[2001:db8::9:255]"


# ---------------------------------------------------------------------------------------------
# our own torture set: tests/sip/torture/*.sip plus inline cases

BASE = (
    "OPTIONS sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1@192.0.2.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
)


def with_headers(extra: str = "", body: bytes = b"", base: str = BASE) -> bytes:
    return (base + extra + "\r\n").encode() + body


GOOD = {
    "plain": with_headers("Content-Length: 0\r\n"),
    "no-content-length-udp": with_headers(body=b"v=0\r\n"),
    "compact": (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK2\r\n"
        b"f: <sip:a@h>;tag=1\r\nt: sip:b@h\r\ni: x\r\nCSeq: 2 OPTIONS\r\n"
        b"m: <sip:a@h>\r\nl: 0\r\nk: path\r\n\r\n"
    ),
    "folding": with_headers("Subject: one\r\n two\r\n\tthree\r\n"),
    "leading-crlf": b"\r\n\r\n" + with_headers(),
    "comma-via": with_headers().replace(
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1",
        b"Via: SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/TCP [2001:db8::1]:5070",
    ),
    "quoted-comma-contacts": with_headers(
        'Contact: "Doe, John" <sip:j@h>;q=0.5, <sip:k@h;transport=tcp>\r\n'
    ),
    "escaped-uri": with_headers("Contact: <sip:%61lice@h;lr;x=%20y?Subject=a%20b&Priority=urgent>\r\n"),
    "ipv6": with_headers("Contact: <sip:a@[2001:db8::1]:5080;transport=tcp>\r\n"),
    "bare-lf": with_headers().replace(b"\r\n", b"\n"),
    "lower-version": with_headers().replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1),
    "huge-header": with_headers("X-Big: " + "a" * 60000 + "\r\n"),
    "nul-in-quoted-pair": with_headers().replace(b'"Alice"', b'"Al\\\x00ice"'),
    "utf8-display": with_headers().replace(b'"Alice"', '"Алиса"'.encode()),
    "star-contact-register": with_headers(
        "Contact: *\r\nExpires: 0\r\n", base=BASE.replace("OPTIONS", "REGISTER")
    ),
    "response": b"SIP/2.0 200 OK\r\n" + with_headers().split(b"\r\n", 1)[1],
    "response-empty-reason": b"SIP/2.0 180 \r\n" + with_headers().split(b"\r\n", 1)[1],
}

BAD: dict[str, tuple[bytes, int | None]] = {
    "empty": (b"", None),
    "only-crlf": (b"\r\n\r\n\r\n", None),
    "garbage": (b"\xff\xfe\x00\x01garbage", None),
    "http": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
    "start-line-only": (b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", None),  # no Via: nothing to answer to
    "negative-cl": (with_headers("Content-Length: -1\r\n"), 400),
    "nonnumeric-cl": (with_headers("Content-Length: ten\r\n"), 400),
    "unicode-digit-cl": (with_headers("Content-Length: ²\r\n"), 400),
    "cl-too-large": (with_headers("Content-Length: 10\r\n", b"abc"), 400),
    "cl-twice": (with_headers("Content-Length: 0\r\nl: 0\r\n"), 400),
    "cl-huge": (with_headers("Content-Length: 99999999999999999999\r\n"), 400),
    "header-without-colon": (with_headers("NoColonHere\r\n"), 400),
    "header-name-space": (with_headers("Bad Name: x\r\n"), 400),
    "nul-in-value": (with_headers("X-Foo: a\x00b\r\n"), 400),
    "nul-in-start-line": (with_headers().replace(b"OPTIONS sip", b"OPTIONS\x00 sip"), 400),
    "bad-method": (with_headers().replace(b"OPTIONS sip", b"OPT(ONS sip", 1), 400),
    "version-3": (with_headers().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
    "missing-cseq": (with_headers().replace(b"CSeq: 1 OPTIONS\r\n", b""), 400),
    "bad-cseq": (with_headers().replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"), 400),
    "cseq-overflow": (with_headers().replace(b"CSeq: 1 OPTIONS", b"CSeq: 4294967296 OPTIONS"), 400),
    "bad-max-forwards": (with_headers().replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), 400),
    "bad-via": (with_headers().replace(b"SIP/2.0/UDP 192.0.2.1:5060", b"SIP/2.0/UDP"), 400),
    "via-port-overflow": (with_headers().replace(b"192.0.2.1:5060", b"192.0.2.1:65536"), 400),
    "unterminated-display": (with_headers().replace(b'"Alice"', b'"Alice'), 400),
    "space-in-brackets": (with_headers().replace(b"<sip:bob@example.com>", b"< sip:bob@example.com>"), 400),
    "star-contact-invite": (with_headers("Contact: *\r\n"), 400),
    "star-mixed": (with_headers("Contact: *, <sip:a@b>\r\n", base=BASE.replace("OPTIONS", "REGISTER")), 400),
    "bad-route": (with_headers("Route: <sip:a@b;lr\r\n"), 400),
    "no-blank-line": (with_headers()[:-2], 400),
    "truncated-mid-line": (with_headers()[:-20], 400),
    "continuation-first": (with_headers().replace(b"SIP/2.0\r\nVia", b"SIP/2.0\r\n folded\r\nVia"), 400),
    "ruri-with-headers": (
        with_headers().replace(b"sip:bob@example.com SIP", b"sip:bob@example.com?a=b SIP"),
        400,
    ),
    "ruri-ipv6-unbracketed": (
        with_headers().replace(b"sip:bob@example.com SIP", b"sip:2001:db8::1 SIP"),
        400,
    ),
    "too-large-datagram": (with_headers("X-Big: " + "a" * 70000 + "\r\n"), None),
    "response-bad-cseq": (
        b"SIP/2.0 200 OK\r\n" + with_headers().split(b"\r\n", 1)[1].replace(b"CSeq: 1", b"CSeq: x"),
        None,
    ),
    "response-bad-code": (b"SIP/2.0 2000 OK\r\n" + with_headers().split(b"\r\n", 1)[1], None),
    "response-missing-via": (b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n", None),
}


def _torture_files() -> dict[str, tuple[bytes, object]]:
    """tests/sip/torture/NAME.EXPECT.sip where EXPECT is ok, 400, 505 or drop (LF line ends → CRLF)."""
    out: dict[str, tuple[bytes, object]] = {}
    for path in sorted(TORTURE.glob("*.sip")):
        name, expect = path.stem.rsplit(".", 1)
        data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out[name] = (
            data,
            {"ok": "ok", "drop": None}.get(expect, int(expect) if expect.isdigit() else expect),
        )
    return out


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_inline(name: str) -> None:
    assert_roundtrip(parse(GOOD[name]))


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_inline(name: str) -> None:
    data, status = BAD[name]
    with pytest.raises(ParseError) as info:
        parse(data)
    assert info.value.status == status, info.value.reason


@pytest.mark.parametrize("name", sorted(_torture_files()))
def test_torture_files(name: str) -> None:
    data, expected = _torture_files()[name]
    if expected == "ok":
        assert_roundtrip(parse(data))
    else:
        with pytest.raises(ParseError) as info:
            parse(data)
        assert info.value.status == expected


def test_details_of_good_messages() -> None:
    m = parse(GOOD["compact"])
    assert m.headers.get("Call-ID") == "x" and m.headers.get("i") == "x"
    assert [n for n, _ in m.headers][:3] == ["Via", "From", "To"]
    assert m.headers.get_all("supported") == ["path"]
    assert parse(GOOD["folding"]).headers.get("subject") == "one two three"
    vias = parse(GOOD["comma-via"]).vias
    assert [(v.transport, v.host, v.port) for v in vias] == [
        ("UDP", "a", None),
        ("TCP", "[2001:db8::1]", 5070),
    ]
    c = parse(GOOD["quoted-comma-contacts"]).contacts
    assert c is not None and [x.display_text for x in c] == ["Doe, John", None]
    assert c[0].param("q") == "0.5"
    assert parse(GOOD["no-content-length-udp"]).body == b"v=0\r\n"
    assert parse(GOOD["no-content-length-udp"], stream=True).body == b""
    assert parse(GOOD["bare-lf"]).call_id == "c1@192.0.2.1"
    assert parse(GOOD["star-contact-register"]).contacts is None
    r = parse(GOOD["response-empty-reason"])
    assert isinstance(r, Response) and (r.status, r.reason) == (180, "")
    assert parse(GOOD["utf8-display"]).from_.display_text == "Алиса"


def test_trailing_octets_ignored_and_body_cut() -> None:
    m = parse(with_headers("Content-Length: 3\r\n", b"abcdef"))
    assert m.body == b"abc"
    assert bytes(m).endswith(b"\r\n\r\nabc")


def test_partial_carries_headers() -> None:
    with pytest.raises(ParseError) as info:
        parse(BAD["negative-cl"][0])
    partial = info.value.partial
    assert isinstance(partial, Request) and partial.call_id == "c1@192.0.2.1"


def test_build_and_serialize() -> None:
    h = Headers(
        [
            ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
            ("f", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", "x"),
            ("CSeq", "1 MESSAGE"),
        ]
    )
    req = Request("MESSAGE", "sip:b@h", h, b"hi")
    data = bytes(req)
    assert data.startswith(
        b"MESSAGE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
    )
    assert b"Content-Length: 2\r\n\r\nhi" in data
    assert parse(data) == parse(bytes(parse(data)))
    req.body = b"longer"  # a stale Content-Length is never written out
    req.headers.set("Content-Length", "2")
    assert parse(bytes(req)).body == b"longer"
    resp = Response(486, "Busy Here", h.copy())
    assert bytes(resp).startswith(b"SIP/2.0 486 Busy Here\r\n")


def test_typed_cache_follows_changes() -> None:
    m = parse(GOOD["plain"])
    assert m.top_via.branch == "z9hG4bK-1"
    m.headers.prepend("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bK-2")
    assert m.top_via.branch == "z9hG4bK-2"
    assert [v.branch for v in m.vias] == ["z9hG4bK-2", "z9hG4bK-1"]
    m.headers.pop_first("Via")
    assert m.top_via.branch == "z9hG4bK-1"
    m.headers.set("To", "<sip:carol@example.com>;tag=t")
    assert m.to.tag == "t"
    assert isinstance(m, Request)
    m.uri = "sip:carol@example.com"
    assert m.request_uri.host == "example.com"  # type: ignore[union-attr]


def test_name_addr_without_brackets_is_rebracketed() -> None:
    na = NameAddr.parse("sip:a@b;tag=x")
    assert str(na) == "<sip:a@b>;tag=x" and not na.bracketed


def test_has_any_finds_a_field_by_its_long_or_compact_name() -> None:
    req = parse(b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nRequire: foo\r\n"
                b"From: <sip:x@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
                b"Content-Length: 0\r\n\r\n")
    assert req.headers.has_any(frozenset({"proxy-require", "require"}))
    assert req.headers.has_any(frozenset({"via"}))  # `v`, the compact form, is stored as via
    assert not req.headers.has_any(frozenset({"proxy-require", "supported"}))
    assert not Headers().has_any(frozenset({"require"}))


def test_headers_set_replaces_every_field_of_the_name_at_the_first_ones_place() -> None:
    from onenumber.sip.message import Headers

    h = Headers([("Via", "a"), ("From", "x"), ("To", "y"), ("f", "dup"), ("CSeq", "1 INVITE")])
    h.set("From", "z")
    assert list(h) == [("Via", "a"), ("From", "z"), ("To", "y"), ("CSeq", "1 INVITE")]
    h.set("To", "w")  # the only one: replaced in place
    assert list(h) == [("Via", "a"), ("From", "z"), ("To", "w"), ("CSeq", "1 INVITE")]
    h.set("Expires", "60")  # none yet: appended
    assert list(h)[-1] == ("Expires", "60")
