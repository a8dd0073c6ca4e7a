"""The recorder: a WAV played through RTP comes out as a WAV of the same length, not silent."""

import asyncio
import shutil

import pytest

from onenumber.media import g711
from onenumber.media.greeting import generate_greeting
from onenumber.media.recorder import MAX_LENGTH, SILENCE, Recorder
from onenumber.media.rtp import RtpPacket, open_session
from onenumber.media.wav import WavWriter, load_greeting, peak, read_wav, write_wav

from .test_wav import tone

LOOPBACK = "127.0.0.1"


async def _play_and_record(source_pcm: bytes, out_path, payload_type: int, **recorder_kw) -> Recorder:
    rec = Recorder(WavWriter(out_path), **recorder_kw)
    tr, receiver = await open_session(LOOPBACK, 0, payload_type=payload_type, on_audio=rec.on_packet)
    _, sender = await open_session(LOOPBACK, 0, payload_type=payload_type, remote=tr.get_extra_info("sockname"))
    try:
        await sender.play(source_pcm)
        await asyncio.sleep(0.3)  # the receiver's reorder buffer lets the tail go after max_wait
    finally:
        sender.close()
        receiver.close()
    await asyncio.wait_for(receiver.closed, 1)
    rec.close()
    return rec


@pytest.mark.parametrize("payload_type", [g711.PCMU, g711.PCMA])
async def test_tone_through_rtp(tmp_path, payload_type):
    src = tone(2.0)
    rec = await _play_and_record(src, tmp_path / "msg.wav", payload_type, silence_seconds=None)
    rate, pcm = read_wav(tmp_path / "msg.wav")
    assert rate == 8000
    assert abs(len(pcm) / 2 / 8000 - 2.0) <= 0.1
    assert peak(pcm) > 5000
    assert rec.done is None


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (scripts/install-peers.sh)")
async def test_spoken_greeting_through_rtp(tmp_path):
    greeting = generate_greeting(tmp_path / "greeting.wav", "Hello, this is a test message for voicemail.")
    src = load_greeting(greeting)
    duration = len(src) / 2 / 8000
    assert duration > 2.0
    await _play_and_record(src, tmp_path / "msg.wav", g711.PCMU, silence_seconds=None)
    rate, pcm = read_wav(tmp_path / "msg.wav")
    assert abs(len(pcm) / 2 / rate - duration) <= 0.1
    assert peak(pcm) > 2000


def _packets(pcm: bytes, start_ts: int = 1000, pt: int = g711.PCMU) -> list[RtpPacket]:
    out = []
    for n, i in enumerate(range(0, len(pcm), 320)):
        out.append(RtpPacket(pt, n, (start_ts + n * 160) & 0xFFFFFFFF, 1, g711.encode_le(pt, pcm[i:i + 320])))
    return out


def test_gaps_become_silence_and_overlaps_are_cut(tmp_path):
    rec = Recorder(WavWriter(tmp_path / "r.wav"), silence_seconds=None)
    packets = _packets(tone(1.0), start_ts=0xFFFFFF00)  # timestamps wrap during the message
    for p in packets[:10] + packets[12:]:  # two frames lost
        rec.on_packet(p)
    rec.on_packet(packets[20])  # a repeat (already written)
    assert rec.close() == pytest.approx(1.0)
    _, pcm = read_wav(tmp_path / "r.wav")
    assert peak(pcm[10 * 320:12 * 320]) == 0 and peak(pcm[12 * 320:13 * 320]) > 0


def test_long_pause_is_capped(tmp_path):
    rec = Recorder(WavWriter(tmp_path / "r.wav"), silence_seconds=None, max_gap_seconds=0.5)
    a = _packets(tone(0.2))
    b = _packets(tone(0.2), start_ts=1000 + 8000 * 30)  # 30 s later (hold, a timestamp jump)
    for p in a + b:
        rec.on_packet(p)
    assert rec.close() == pytest.approx(0.9)


def test_max_length(tmp_path):
    rec = Recorder(WavWriter(tmp_path / "r.wav"), max_seconds=0.5, silence_seconds=None)
    for p in _packets(tone(1.0)):
        rec.on_packet(p)
    assert rec.done == MAX_LENGTH
    assert rec.close() == pytest.approx(0.5)


def test_silence_ends_only_after_speech(tmp_path):
    rec = Recorder(WavWriter(tmp_path / "r.wav"), silence_seconds=1.0)
    quiet = b"\x00\x00" * 8000 * 2
    for p in _packets(quiet + tone(0.5) + quiet):
        rec.on_packet(p)
    assert rec.done == SILENCE
    assert rec.close() == pytest.approx(2.0 + 0.5 + 1.0)
    rec2 = Recorder(WavWriter(tmp_path / "s.wav"), silence_seconds=1.0)
    rec2.on_packet(RtpPacket(101, 0, 0, 1, b"\x0b\x80\x03\x20"))  # not audio: ignored
    rec2.stop("dtmf")
    rec2.stop("bye")
    assert rec2.done == "dtmf" and rec2.close() == 0.0
    write_wav(tmp_path / "t.wav", b"")
