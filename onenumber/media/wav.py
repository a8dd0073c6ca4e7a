"""WAV files for voicemail: an incremental recorder that survives crashes, a tolerant reader,
and resampling of greetings to 8 kHz.

- `WavWriter` writes 8 kHz 16-bit mono PCM as it arrives. The RIFF and data sizes in the
  header are fixed up every `fixup_every` seconds of audio and on `close`, so a file
  cut short by a crash or a kill is still a valid WAV up to the last fix-up, and
  `recover_wav` (run when the file is next opened) makes everything after it count too.
  Writes are unbuffered (a process crash loses nothing); `close` fsyncs (a power cut
  may lose what the OS had not written yet).
- `read_wav` reads PCM WAVs (8/16-bit, any channel count, WAVE_FORMAT_EXTENSIBLE
  included), trusting the file's length over a data size that is zero or too large.
- `load_greeting` gives 8 kHz mono 16-bit PCM whatever the file's rate (16 kHz, 22.05 kHz
  from espeak-ng, 44.1/48 kHz uploads): a box low-pass then linear interpolation.

File I/O is blocking and small (a header rewrite per second of audio); call from a
thread if that matters. Depends on the standard library only.
"""

from __future__ import annotations

import array
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

RATE = 8000
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")  # RIFF, size, WAVE, fmt , 16, PCM… data, size
HEADER_SIZE = _HEADER.size  # 44


def _header(data_bytes: int, rate: int = RATE, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return _HEADER.pack(
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate, rate * block, block, bits,
        b"data", data_bytes,
    )


class WavWriter:
    """Append-only 8 kHz 16-bit mono WAV, its header kept (nearly) current."""

    def __init__(self, path: str | os.PathLike[str], rate: int = RATE, fixup_every: float = 1.0) -> None:
        self.path = Path(path)
        self.rate = rate
        self._fixup_bytes = max(2, int(fixup_every * rate) * 2)
        # unbuffered: every frame reaches the OS at once, so a killed process loses nothing
        self._file: BinaryIO | None = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self._file.write(_header(0, rate))
        self._file.flush()
        self.data_bytes = 0
        self._since_fixup = 0

    @property
    def duration(self) -> float:
        return self.data_bytes / 2 / self.rate

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, pcm: bytes) -> None:
        """Append little-endian 16-bit samples (an odd trailing byte is dropped)."""
        if self._file is None:
            raise ValueError("write to a closed WavWriter")
        if len(pcm) % 2:
            pcm = pcm[:-1]
        if not pcm:
            return
        self._file.write(pcm)
        self.data_bytes += len(pcm)
        self._since_fixup += len(pcm)
        if self._since_fixup >= self._fixup_bytes:
            self._fixup()

    def write_silence(self, samples: int) -> None:
        if samples > 0:
            self.write(b"\x00\x00" * samples)

    def _fixup(self) -> None:
        assert self._file is not None
        self._file.flush()
        self._file.seek(0)
        self._file.write(_header(self.data_bytes, self.rate))
        self._file.seek(0, os.SEEK_END)
        self._file.flush()
        self._since_fixup = 0

    def close(self) -> float:
        """Fix the header, sync to disk, close; returns the duration in seconds."""
        if self._file is not None:
            self._fixup()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        return self.duration

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class WavInfo:
    rate: int
    channels: int
    bits: int
    data_offset: int
    data_bytes: int  # what the file really holds (whole frames)
    declared_bytes: int  # what the header says

    @property
    def duration(self) -> float:
        return self.data_bytes / (self.channels * self.bits // 8) / self.rate


def wav_info(data: bytes) -> WavInfo:
    """Parse the chunks of a RIFF/WAVE file held in memory. Raises ValueError when it is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise ValueError("fmt chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first 2 bytes
                (tag,) = struct.unpack_from("<H", data, body + 24)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            tag, channels, rate, bits = fmt
            if tag != 1 or bits not in (8, 16) or channels < 1 or rate <= 0:
                raise ValueError(f"unsupported WAV format (tag {tag}, {bits} bits, {channels} channels)")
            available = len(data) - body
            real = available if size == 0 or size > available else size
            block = channels * bits // 8
            return WavInfo(rate, channels, bits, body, real - real % block, size)
        pos = body + size + (size & 1)
    raise ValueError("no data chunk" if fmt else "no fmt chunk")


def read_wav(path: str | os.PathLike[str]) -> tuple[int, bytes]:
    """(rate, mono 16-bit little-endian PCM) of a PCM WAV; channels are averaged."""
    data = Path(path).read_bytes()
    info = wav_info(data)
    raw = data[info.data_offset:info.data_offset + info.data_bytes]
    if info.bits == 8:
        samples = array.array("h", ((b - 128) << 8 for b in raw))
    else:
        samples = array.array("h", raw)
        if sys.byteorder == "big":
            samples.byteswap()
    if info.channels > 1:
        c = info.channels
        samples = array.array("h", (sum(samples[i:i + c]) // c for i in range(0, len(samples), c)))
    return info.rate, _le(samples)


def recover_wav(path: str | os.PathLike[str]) -> float:
    """Rewrite the header sizes of a WAV cut short (crash, kill) to cover all its data.

    Only for files we write (a 44-byte header, then data). Returns the duration."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "r+b") as f:
        head = f.read(HEADER_SIZE)
        info = wav_info(head)  # validates the header
        if info.data_offset != HEADER_SIZE:
            raise ValueError("not a WAV written by WavWriter")
        data_bytes = size - HEADER_SIZE
        data_bytes -= data_bytes % (info.channels * info.bits // 8)
        if data_bytes != info.declared_bytes:
            f.seek(0)
            f.write(_header(data_bytes, info.rate, info.channels, info.bits))
            f.truncate(HEADER_SIZE + data_bytes)
            f.flush()
            os.fsync(f.fileno())
    return data_bytes / (info.channels * info.bits // 8) / info.rate


def write_wav(path: str | os.PathLike[str], pcm: bytes, rate: int = RATE) -> None:
    """A whole mono 16-bit WAV at once (tests, greeting conversion)."""
    with WavWriter(path, rate) as w:
        w.write(pcm)


def resample(pcm: bytes, src_rate: int, dst_rate: int = RATE) -> bytes:
    """Mono 16-bit LE PCM from `src_rate` to `dst_rate` (box low-pass when going down, then linear)."""
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = array.array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    ratio = src_rate / dst_rate
    width = int(ratio)
    if width > 1:  # moving average over ~one output period: removes most of what would alias
        acc = 0
        smoothed = array.array("h", bytes(2 * len(samples)))
        for i, s in enumerate(samples):
            acc += s
            if i >= width:
                acc -= samples[i - width]
            smoothed[i] = acc // min(i + 1, width)
        samples = smoothed
    n_out = int(len(samples) / ratio)
    last = len(samples) - 1
    out = array.array("h", bytes(2 * n_out))
    for j in range(n_out):
        x = j * ratio
        i = int(x)
        frac = x - i
        a = samples[i]
        b = samples[i + 1] if i < last else a
        out[j] = int(a + (b - a) * frac)
    return _le(out)


def load_greeting(path: str | os.PathLike[str]) -> bytes:
    """A greeting as 8 kHz mono 16-bit LE PCM, whatever its rate and channels."""
    rate, pcm = read_wav(path)
    return resample(pcm, rate, RATE)


def peak(pcm: bytes) -> int:
    """The largest absolute sample of 16-bit LE PCM (0: silence)."""
    samples = array.array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return max((abs(s) for s in samples), default=0)


def rms(pcm: bytes) -> float:
    samples = array.array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return 0.0
    return (sum(s * s for s in samples) / len(samples)) ** 0.5


def _le(samples: array.array) -> bytes:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()
