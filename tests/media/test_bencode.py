"""The bencode codec of the ng protocol: known encodings, round trips, malformed input refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onenumber.media.bencode import BencodeError, decode, decode_text, encode

values = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**63) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.binary(max_size=10), inner, max_size=5),
    max_leaves=20,
)


def test_known_encodings() -> None:
    assert encode(42) == b"i42e"
    assert encode(-3) == b"i-3e"
    assert encode(0) == b"i0e"
    assert encode("spam") == b"4:spam"
    assert encode("é") == b"2:\xc3\xa9"
    assert encode(["a", 1]) == b"l1:ai1ee"
    assert encode({"command": "ping"}) == b"d7:command4:pinge"
    assert encode({"b": 1, "a": {"c": []}}) == b"d1:ad1:clee1:bi1ee"  # keys sorted


def test_ng_reply_decodes_to_text() -> None:
    reply = decode(b"d6:result4:ponge")
    assert reply == {b"result": b"pong"}
    assert decode_text(reply) == {"result": "pong"}


@given(values)
def test_round_trip(value: object) -> None:
    assert decode(encode(value)) == value  # type: ignore[arg-type]


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=20) | st.integers(), max_size=6))
def test_text_round_trip(value: dict) -> None:
    assert decode_text(decode(encode(value))) == value


@given(st.binary(max_size=60))
def test_garbage_is_refused_or_decoded_never_crashes(data: bytes) -> None:
    try:
        decode(data)
    except BencodeError:
        pass


@pytest.mark.parametrize("bad", [b"", b"i", b"ie", b"i-e", b"i01e", b"i-0e", b"5:abc", b"l", b"d", b"di1ei2ee",
                                 b"03:abc", b"x", b"i1ei2e", b"1:"])
def test_malformed(bad: bytes) -> None:
    with pytest.raises(BencodeError):
        decode(bad)


def test_unencodable() -> None:
    with pytest.raises(TypeError):
        encode(True)
    with pytest.raises(TypeError):
        encode(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode({1: 2})  # type: ignore[dict-item]
