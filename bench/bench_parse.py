"""Microbenchmarks of the SIP parser and serializer (pytest-benchmark).

    .venv/bin/python -m pytest bench/bench_parse.py --benchmark-only

"warm" runs parse the same bytes again and again (From/To/Contact values come from the
parsed-value caches, as for REGISTER refreshes and in-dialog requests); "cold" runs cycle
through 10,000 messages whose URIs and tags all differ, so every value is parsed afresh.
"""

from __future__ import annotations

import itertools

import pytest

from onenumber.sip.framing import StreamFramer
from onenumber.sip.message import parse

REGISTER = (
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK-524287-1---e0b2c7a1d3f4{n:04d}\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: <sip:alice{n}@192.0.2.10:5060;rinstance=8f1e2d3c4b5a{n:04d};transport=UDP>;expires=3600\r\n"
    'To: "Alice" <sip:alice{n}@example.com>\r\n'
    'From: "Alice" <sip:alice{n}@example.com>;tag=3a9f{n:04d}\r\n'
    "Call-ID: ZmQ0YjY5OWJhMWE1NTk2ZDBkZmE4NzA2ZWE4ZTc{n:04d}\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Expires: 3600\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n"
    "Supported: replaces, outbound, path\r\n"
    "User-Agent: Zoiper rv2.10.20.2\r\n"
    "Allow-Events: presence, kpml, talk\r\n"
    "Content-Length: 0\r\n\r\n"
)

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)

INVITE = (
    "INVITE sip:bob{n}@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK-{n:06d}\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
    "To: <sip:bob{n}@example.com>\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=a{n:06d}\r\n'
    "Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.10-{n}\r\n"
    "CSeq: 1 INVITE\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: Linphone/5.1.0\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n"
)


def register(n: int) -> bytes:
    return REGISTER.format(n=n).encode()


def invite(n: int) -> bytes:
    return INVITE.format(n=n).encode() + SDP


def test_register_size() -> None:
    assert 550 <= len(register(1)) <= 700  # "a typical 600-byte REGISTER"


@pytest.mark.benchmark(group="parse")
def test_parse_register_warm(benchmark) -> None:
    data = register(1)
    benchmark(parse, data)


@pytest.mark.benchmark(group="parse")
def test_parse_register_cold(benchmark) -> None:
    it = itertools.cycle([register(n) for n in range(10_000)])
    benchmark(lambda: parse(next(it)))


@pytest.mark.benchmark(group="parse")
def test_parse_invite_sdp_warm(benchmark) -> None:
    data = invite(1)
    benchmark(parse, data)


@pytest.mark.benchmark(group="parse")
def test_parse_invite_sdp_cold(benchmark) -> None:
    it = itertools.cycle([invite(n) for n in range(10_000)])
    benchmark(lambda: parse(next(it)))


@pytest.mark.benchmark(group="serialize")
def test_serialize_invite(benchmark) -> None:
    msg = parse(invite(1))
    benchmark(bytes, msg)


@pytest.mark.benchmark(group="serialize")
def test_forward_invite(benchmark) -> None:
    """What a proxy does per hop: parse, push a Via, drop a hop, print."""
    data = invite(1)

    def hop() -> bytes:
        m = parse(data)
        m.headers.prepend("Via", "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK-proxy1")
        m.headers.set("Max-Forwards", str((m.max_forwards or 70) - 1))
        return bytes(m)

    benchmark(hop)


@pytest.mark.benchmark(group="framing")
def test_frame_stream(benchmark) -> None:
    chunk = b"".join(invite(n) for n in range(20))

    def frame() -> int:
        return len(StreamFramer().feed(chunk))

    assert benchmark(frame) == 20
