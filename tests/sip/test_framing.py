"""StreamFramer: Content-Length framing, CRLF keepalives, limits; fed whole, byte by byte, in pieces."""

from __future__ import annotations

import pytest

from onenumber.sip.errors import ParseError
from onenumber.sip.framing import StreamFramer
from onenumber.sip.message import parse


def msg(body: bytes = b"", cl: str | None = None, call_id: str = "f1") -> bytes:
    head = (
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-f\r\n"
        f"From: <sip:a@h>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\n"
    )
    if cl is None:
        cl = str(len(body))
    if cl != "-":
        head += f"Content-Length: {cl}\r\n"
    return (head + "\r\n").encode() + body


A = msg(b"hello")
B = msg(b"\r\n\r\nbody with CRLFCRLF inside", call_id="f2")
C = msg(cl="-", call_id="f3")  # no Content-Length: empty body on a stream
STREAM = b"\r\n\r\n" + A + b"\r\n" + B + b"\r\n\r\n" + C


def feed_in(data: bytes, step: int) -> tuple[list[bytes], StreamFramer]:
    f = StreamFramer()
    out: list[bytes] = []
    for i in range(0, len(data), step):
        out += f.feed(data[i : i + step])
    return out, f


@pytest.mark.parametrize("step", [len(STREAM), 1, 2, 3, 7, 64])
def test_whole_and_in_pieces(step: int) -> None:
    out, f = feed_in(STREAM, step)
    assert out == [A, B, C]
    assert f.pongs_needed == 2
    assert f.buffered == 0
    assert [parse(m, stream=True).call_id for m in out] == ["f1", "f2", "f3"]


def test_trailing_partial_message_is_kept() -> None:
    f = StreamFramer()
    assert f.feed(A + B[:30]) == [A]
    assert f.buffered == 30
    assert f.feed(B[30:-1]) == []
    assert f.feed(B[-1:] + A) == [B, A]


def test_partial_body_waits() -> None:
    f = StreamFramer()
    assert f.feed(A[:-2]) == []
    assert f.feed(A[-2:]) == [A]


def test_ping_split_and_lone_crlf() -> None:
    f = StreamFramer()
    assert f.feed(b"\r\n") == [] and f.pongs_needed == 0  # could be half a ping
    assert f.feed(b"\r\n") == [] and f.pongs_needed == 1
    f.pongs_needed = 0  # the caller answered it
    assert f.feed(b"\r\n" + A) == [A] and f.pongs_needed == 0  # lone CRLF before a message: skipped


def test_header_block_too_large() -> None:
    f = StreamFramer(max_header=100)
    with pytest.raises(ParseError) as info:
        f.feed(b"OPTIONS sip:a SIP/2.0\r\nX: " + b"a" * 200)
    assert info.value.status is None
    f = StreamFramer(max_header=100)
    with pytest.raises(ParseError):
        f.feed(A)  # complete but over the limit


@pytest.mark.parametrize("cl", ["-5", "ten", "", "99999999999", "70000"])
def test_bad_content_length_closes(cl: str) -> None:
    with pytest.raises(ParseError) as info:
        StreamFramer().feed(msg(cl=cl))
    assert info.value.status is None


def test_conflicting_content_lengths() -> None:
    data = A.replace(b"Content-Length: 5\r\n", b"Content-Length: 5\r\nl: 7\r\n")
    with pytest.raises(ParseError):
        StreamFramer().feed(data)
    # the same value twice frames fine; parse() then answers 400
    same = A.replace(b"Content-Length: 5\r\n", b"Content-Length: 5\r\nl: 5\r\n")
    assert StreamFramer().feed(same) == [same]
    with pytest.raises(ParseError) as info:
        parse(same, stream=True)
    assert info.value.status == 400


def test_compact_and_folded_content_length() -> None:
    data = A.replace(b"Content-Length: 5", b"l:\r\n 5")
    assert StreamFramer().feed(data + A) == [data, A]


def test_body_limit() -> None:
    big = msg(b"x" * 2000)
    with pytest.raises(ParseError):
        StreamFramer(max_body=1000).feed(big)
    assert StreamFramer(max_body=2000).feed(big) == [big]
