"""WAV files: incremental writing, surviving a crash, tolerant reading, resampling."""

import array
import math
import struct
import subprocess
import sys
import wave

import pytest

from onenumber.media.wav import (
    HEADER_SIZE,
    WavWriter,
    load_greeting,
    peak,
    read_wav,
    recover_wav,
    resample,
    rms,
    wav_info,
    write_wav,
)


def tone(seconds: float, rate: int = 8000, freq: float = 440.0, level: int = 10000) -> bytes:
    n = int(seconds * rate)
    return array.array("h", (int(level * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))).tobytes()


def test_writer_output_is_read_by_the_wave_module(tmp_path):
    path = tmp_path / "a.wav"
    with WavWriter(path) as w:
        w.write(tone(0.5))
        w.write_silence(4000)
        w.write(b"\x01")  # odd byte dropped
        assert w.duration == pytest.approx(1.0)
    with wave.open(str(path)) as r:
        assert (r.getframerate(), r.getnchannels(), r.getsampwidth(), r.getnframes()) == (8000, 1, 2, 8000)
    assert w.closed
    with pytest.raises(ValueError):
        w.write(b"\x00\x00")


def test_header_is_fixed_up_while_recording(tmp_path):
    path = tmp_path / "b.wav"
    w = WavWriter(path, fixup_every=0.5)
    pcm = tone(1.2)
    for i in range(0, len(pcm), 320):  # 20 ms frames, as the recorder writes them
        w.write(pcm[i:i + 320])
    # without closing: the header already covers the first second
    info = wav_info(path.read_bytes())
    assert info.declared_bytes == 8000 * 2
    assert info.data_bytes == 8000 * 2  # a smaller declared size is trusted (other chunks may follow)
    assert len(path.read_bytes()) == HEADER_SIZE + int(1.2 * 8000) * 2  # but nothing is lost
    w.close()
    assert wav_info(path.read_bytes()).declared_bytes == int(1.2 * 8000) * 2


def test_a_killed_recorder_loses_nothing(tmp_path):
    path = tmp_path / "crash.wav"
    code = (
        "import os, array, math, sys\n"
        "from onenumber.media.wav import WavWriter\n"
        f"w = WavWriter({str(path)!r}, fixup_every=1.0)\n"
        "pcm = array.array('h', (int(8000*math.sin(i/3)) for i in range(8000*3 + 800))).tobytes()\n"
        "for i in range(0, len(pcm), 320): w.write(pcm[i:i+320])\n"
        "os._exit(9)  # a crash: no close, no header fix-up for the last 0.1 s\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == 9
    # the file as the crash left it is a valid WAV for strict readers up to the last fix-up
    with wave.open(str(path)) as r:
        assert r.getnframes() == 8000 * 3
    assert recover_wav(path) == pytest.approx(3.1)
    with wave.open(str(path)) as r:
        assert r.getnframes() == 8000 * 3 + 800
    assert recover_wav(path) == pytest.approx(3.1)  # idempotent


def test_read_wav_formats(tmp_path):
    # stereo 16-bit at 16 kHz
    path = tmp_path / "st.wav"
    left = array.array("h", [1000, 3000] * 100)
    stereo = array.array("h", [x for s in left for x in (s, -s // 2 if s == 3000 else s)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(stereo.tobytes())
    rate, pcm = read_wav(path)
    assert rate == 16000
    assert array.array("h", pcm).tolist()[:2] == [1000, (3000 - 1500) // 2]
    # 8-bit unsigned
    path8 = tmp_path / "u8.wav"
    with wave.open(str(path8), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes([128, 255, 0]))
    assert array.array("h", read_wav(path8)[1]).tolist() == [0, 127 << 8, -128 << 8]
    # not a WAV / unsupported formats
    (tmp_path / "x.wav").write_bytes(b"hello")
    with pytest.raises(ValueError):
        read_wav(tmp_path / "x.wav")
    float_fmt = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 3, 1, 8000, 32000, 4, 32)
    (tmp_path / "f.wav").write_bytes(float_fmt + b"data" + struct.pack("<I", 4) + b"\x00" * 4)
    with pytest.raises(ValueError):
        read_wav(tmp_path / "f.wav")


def test_resample_keeps_duration_and_tone():
    for src in (16000, 22050, 44100, 48000):
        pcm = tone(1.0, rate=src, freq=440)
        out = resample(pcm, src, 8000)
        assert len(out) // 2 == pytest.approx(8000, abs=2)
        assert rms(out) == pytest.approx(rms(tone(1.0)), rel=0.08)  # a 440 Hz tone survives the low-pass
    # content above 4 kHz (would alias) is strongly attenuated by the box filter
    high = tone(1.0, rate=16000, freq=7000)
    assert rms(resample(high, 16000, 8000)) < 0.3 * rms(high)
    assert resample(b"", 16000) == b""
    assert resample(b"\x01\x00", 8000) == b"\x01\x00"


def test_load_greeting(tmp_path):
    path = tmp_path / "g.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(tone(2.0, rate=22050))
    pcm = load_greeting(path)
    assert len(pcm) // 2 / 8000 == pytest.approx(2.0, abs=0.01)
    assert peak(pcm) > 5000
    write_wav(tmp_path / "h.wav", pcm)
    assert wav_info((tmp_path / "h.wav").read_bytes()).data_offset == HEADER_SIZE
