"""Bencode, the encoding of rtpengine's ng control protocol: integers, byte strings, lists, dicts.

Pure functions, no I/O. Strings are encoded as UTF-8; decoding gives `bytes` for strings
(`decode_text` turns them into `str` everywhere, which is what the ng replies are read as).
Dictionary keys are sorted on encoding, as bencode requires.
"""

from __future__ import annotations

from typing import Any

Value = int | bytes | str | list[Any] | tuple[Any, ...] | dict[Any, Any]


class BencodeError(ValueError):
    """Malformed bencoded input."""


def encode(value: Value) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Value, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans; use 0/1 or a string")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out.append(b"%d:" % len(data))
        out.append(data)
    elif isinstance(value, bytes | bytearray):
        out.append(b"%d:" % len(value))
        out.append(bytes(value))
    elif isinstance(value, list | tuple):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        items: list[Any] = []
        for k, v in value.items():
            key = k.encode("utf-8") if isinstance(k, str) else k
            if not isinstance(key, bytes):
                raise TypeError(f"bencode dictionary keys are strings, not {type(k).__name__}")
            items.append((key, v))
        items.sort(key=lambda kv: kv[0])
        for i in range(1, len(items)):
            if items[i][0] == items[i - 1][0]:
                raise ValueError(f"duplicate dictionary key {items[i][0]!r}")
        for key, v in items:
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode(v, out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> Any:
    """Decode one whole value; trailing bytes are an error."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


MAX_DEPTH = 64


def _decode(data: bytes, i: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise BencodeError("nested too deeply")
    if i >= len(data):
        raise BencodeError("unexpected end of input")
    c = data[i]
    if c == 0x69:  # i
        end = data.find(b"e", i + 1)
        if end < 0:
            raise BencodeError("unterminated integer")
        text = data[i + 1:end]
        if not text or text == b"-" or (text.startswith(b"0") and len(text) > 1) or text.startswith(b"-0"):
            raise BencodeError(f"bad integer {text!r}")
        try:
            return int(text), end + 1
        except ValueError:
            raise BencodeError(f"bad integer {text!r}") from None
    if c == 0x6C:  # l
        items: list[Any] = []
        i += 1
        while True:
            if i >= len(data):
                raise BencodeError("unterminated list")
            if data[i] == 0x65:
                return items, i + 1
            item, i = _decode(data, i, depth + 1)
            items.append(item)
    if c == 0x64:  # d
        result: dict[bytes, Any] = {}
        i += 1
        while True:
            if i >= len(data):
                raise BencodeError("unterminated dictionary")
            if data[i] == 0x65:
                return result, i + 1
            key, i = _decode(data, i, depth + 1)
            if not isinstance(key, bytes):
                raise BencodeError("dictionary key is not a string")
            value, i = _decode(data, i, depth + 1)
            result[key] = value
    if 0x30 <= c <= 0x39:
        colon = data.find(b":", i)
        if colon < 0:
            raise BencodeError("string without length")
        text = data[i:colon]
        if not text.isdigit() or (text.startswith(b"0") and len(text) > 1):
            raise BencodeError(f"bad string length {text!r}")
        n = int(text)
        start = colon + 1
        if start + n > len(data):
            raise BencodeError("string longer than the input")
        return data[start:start + n], start + n
    raise BencodeError(f"unexpected byte {bytes([c])!r} at offset {i}")


def decode_text(value: Any) -> Any:
    """A decoded value with every byte string (keys too) turned into `str` (UTF-8, lenient)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [decode_text(v) for v in value]
    if isinstance(value, dict):
        return {decode_text(k): decode_text(v) for k, v in value.items()}
    return value
