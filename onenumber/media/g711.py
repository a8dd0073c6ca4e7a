"""G.711 PCMU (μ-law) and PCMA (A-law): our own tables, 16-bit linear PCM ↔ 8-bit codes.

The standard library's `audioop` is gone (Python 3.13), so the codec is here: the
classic segment/mantissa algorithm (ITU-T G.711, as in the reference C code) run once at
import to fill a 256-entry decode table and a 65,536-entry encode table per law, so
encoding and decoding a 20 ms frame is a table lookup per sample.

Linear samples are signed 16-bit; μ-law works on 14 bits (scaled ×4) and A-law on 13
bits (scaled ×8), so the largest decoded magnitudes are 8031×4 = 32124 and
4032×8 = 32256, as in the ITU tables.

Pure: no I/O; depends on the standard library only.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Sequence


def _ulaw_encode_one(sample: int) -> int:
    """ITU-T G.191 `ulaw_compress`: 14 most significant bits, one's complement for negatives."""
    magnitude = min(((~sample if sample < 0 else sample) >> 2) + 33, 0x1FFF)  # biased 14-bit
    segment = max(1, (magnitude >> 6).bit_length() + 1)
    code = ((8 - segment) << 4) | (15 - ((magnitude >> segment) & 0x0F))
    return code | 0x80 if sample >= 0 else code


def _ulaw_decode_one(code: int) -> int:
    """ITU-T G.191 `ulaw_expand`, in 16-bit units."""
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * (inverted & 0x0F) + step // 2 - 4 * 33
    return magnitude if code & 0x80 else -magnitude


def _alaw_encode_one(sample: int) -> int:
    value = sample >> 3  # 13 bits
    if value >= 0:
        mask = 0xD5  # sign bit set, even bits inverted
    else:
        mask = 0x55
        value = -value - 1
    segment = max(0, value.bit_length() - 5)  # 0 for < 32, then one per doubling
    if segment >= 8:
        return 0x7F ^ mask
    mantissa = (value >> 1) & 0x0F if segment < 2 else (value >> segment) & 0x0F
    return ((segment << 4) | mantissa) ^ mask


def _alaw_decode_one(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if code & 0x80 else -t


ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_decode_one(c) for c in range(256))
ALAW_DECODE: tuple[int, ...] = tuple(_alaw_decode_one(c) for c in range(256))
# indexed by the sample's 16-bit two's-complement pattern (sample & 0xFFFF)
ULAW_ENCODE: bytes = bytes(_ulaw_encode_one(i - 0x10000 if i >= 0x8000 else i) for i in range(0x10000))
ALAW_ENCODE: bytes = bytes(_alaw_encode_one(i - 0x10000 if i >= 0x8000 else i) for i in range(0x10000))

# decode to little-endian 16-bit bytes directly (a WAV's layout), one join per frame
_ULAW_LE = tuple(int.to_bytes(v & 0xFFFF, 2, "little") for v in ULAW_DECODE)
_ALAW_LE = tuple(int.to_bytes(v & 0xFFFF, 2, "little") for v in ALAW_DECODE)

PCMU = 0  # RTP static payload types (RFC 3551)
PCMA = 8


def ulaw_encode(samples: Sequence[int]) -> bytes:
    table = ULAW_ENCODE
    return bytes([table[s & 0xFFFF] for s in samples])


def alaw_encode(samples: Sequence[int]) -> bytes:
    table = ALAW_ENCODE
    return bytes([table[s & 0xFFFF] for s in samples])


def ulaw_decode(data: bytes) -> array.array:
    table = ULAW_DECODE
    return array.array("h", [table[b] for b in data])


def alaw_decode(data: bytes) -> array.array:
    table = ALAW_DECODE
    return array.array("h", [table[b] for b in data])


def decode_le(payload_type: int, data: bytes) -> bytes:
    """Decode a PCMU/PCMA payload straight to little-endian 16-bit PCM bytes."""
    table = _ULAW_LE if payload_type == PCMU else _ALAW_LE if payload_type == PCMA else None
    if table is None:
        raise ValueError(f"not a G.711 payload type: {payload_type}")
    return b"".join([table[b] for b in data])


def encode_le(payload_type: int, pcm: bytes) -> bytes:
    """Encode little-endian 16-bit PCM bytes to a PCMU/PCMA payload."""
    samples = array.array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if payload_type == PCMU:
        return ulaw_encode(samples)
    if payload_type == PCMA:
        return alaw_encode(samples)
    raise ValueError(f"not a G.711 payload type: {payload_type}")


def silence(payload_type: int, samples: int = 160) -> bytes:
    """A payload of digital silence (0xFF for μ-law, 0xD5 for A-law)."""
    return bytes([ULAW_ENCODE[0] if payload_type == PCMU else ALAW_ENCODE[0]]) * samples
