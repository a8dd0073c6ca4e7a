"""G.711: known values from the ITU tables, the G.191 reference code, and round trips."""

import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onenumber.media import g711

# ITU-T G.711 decoder outputs at the top of each segment: μ-law in 14-bit units (Table 2a),
# A-law in 13-bit units (Table 1a); codes as transmitted (μ-law inverted, A-law even bits inverted).
ULAW_SEGMENT_TOPS = {0x80: 8031, 0x90: 3999, 0xA0: 1983, 0xB0: 975, 0xC0: 471, 0xD0: 219, 0xE0: 93, 0xF0: 30}
ALAW_SEGMENT_TOPS = {0xAA: 4032, 0xBA: 2016, 0x8A: 1008, 0x9A: 504, 0xEA: 252, 0xFA: 126, 0xCA: 63, 0xDA: 31}


def test_ulaw_known_values():
    for code, top in ULAW_SEGMENT_TOPS.items():
        assert g711.ULAW_DECODE[code] == top * 4
        assert g711.ULAW_DECODE[code & 0x7F] == -top * 4
    assert g711.ULAW_DECODE[0xFF] == 0 and g711.ULAW_DECODE[0x7F] == 0  # the two zeros
    assert g711.ULAW_DECODE[0xFE] == 2 * 4  # first step
    assert g711.ULAW_ENCODE[0] == 0xFF
    assert g711.ULAW_ENCODE[32767] == 0x80 and g711.ULAW_ENCODE[-32768 & 0xFFFF] == 0x00


def test_alaw_known_values():
    for code, top in ALAW_SEGMENT_TOPS.items():
        assert g711.ALAW_DECODE[code] == top * 8
        assert g711.ALAW_DECODE[code & 0x7F] == -top * 8
    assert g711.ALAW_DECODE[0xD5] == 8 and g711.ALAW_DECODE[0x55] == -8  # the smallest outputs (1 × 8)
    assert g711.ALAW_ENCODE[0] == 0xD5
    assert g711.ALAW_ENCODE[32767] == 0xAA and g711.ALAW_ENCODE[-32768 & 0xFFFF] == 0x2A


def _g191_ulaw_compress(x: int) -> int:
    """ITU-T G.191 STL `ulaw_compress`, transcribed line by line."""
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i, segno = absno >> 6, 1
    while i != 0:
        segno += 1
        i >>= 1
    out = ((8 - segno) << 4) | (15 - ((absno >> segno) & 15))
    return out | 0x80 if x >= 0 else out


def _g191_alaw_compress(x: int) -> int:
    """ITU-T G.191 STL `alaw_compress`, transcribed line by line."""
    ix = ((~x) >> 4) if x < 0 else (x >> 4)
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def test_encoders_match_the_g191_reference_for_every_sample():
    for x in range(-32768, 32768, 7):
        assert g711.ULAW_ENCODE[x & 0xFFFF] == _g191_ulaw_compress(x), x
        assert g711.ALAW_ENCODE[x & 0xFFFF] == _g191_alaw_compress(x), x


def test_codes_are_fixed_points():
    for code in range(256):
        assert g711.ALAW_ENCODE[g711.ALAW_DECODE[code] & 0xFFFF] == code
        expected = 0xFF if code == 0x7F else code  # μ-law's negative zero comes back as zero
        assert g711.ULAW_ENCODE[g711.ULAW_DECODE[code] & 0xFFFF] == expected


def test_decode_tables_are_monotonic():
    ulaw = sorted(range(256), key=lambda c: g711.ULAW_DECODE[c])
    assert [g711.ULAW_DECODE[c] for c in ulaw] == sorted(g711.ULAW_DECODE)
    positive = [g711.ALAW_DECODE[c ^ 0xD5] for c in range(128)]  # A-law: code order after un-masking
    assert positive == sorted(positive)


@given(st.lists(st.integers(-32768, 32767), max_size=400))
def test_round_trip_error_is_within_one_step(samples):
    for law_enc, law_dec, max_step in ((g711.ulaw_encode, g711.ulaw_decode, 1024),
                                       (g711.alaw_encode, g711.alaw_decode, 1024)):
        decoded = law_dec(law_enc(samples))
        assert len(decoded) == len(samples)
        for s, d in zip(samples, decoded, strict=True):
            # relative error bounded by the segment's step (half a step plus clipping at the top)
            assert abs(s - d) <= max(max_step, abs(s) // 16 + 16)
        # encoding is idempotent after one pass
        assert law_dec(law_enc(decoded)) == decoded


@given(st.binary(max_size=320))
def test_decode_le_and_encode_le(payload):
    for pt, dec in ((g711.PCMU, g711.ulaw_decode), (g711.PCMA, g711.alaw_decode)):
        pcm = g711.decode_le(pt, payload)
        assert array.array("h", pcm).tolist() == dec(payload).tolist()
        again = g711.encode_le(pt, pcm)
        assert g711.decode_le(pt, again) == pcm


def test_silence_and_bad_payload_type():
    assert g711.silence(g711.PCMU, 3) == b"\xff\xff\xff"
    assert g711.silence(g711.PCMA, 2) == b"\xd5\xd5"
    with pytest.raises(ValueError):
        g711.decode_le(9, b"\x00")
    with pytest.raises(ValueError):
        g711.encode_le(9, b"\x00\x00")
