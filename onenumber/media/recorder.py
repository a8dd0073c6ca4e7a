"""The voicemail recorder: in-order RTP audio packets in, a WAV file out.

Samples are placed by RTP timestamp, not by arrival: a gap the reorder buffer gave up
on becomes silence of the right length (so the message keeps its real duration), and a
packet overlapping what is already written is cut. The recording ends — `done` says
why — when it reaches `max_seconds`, or after `silence_seconds` of continuous audio
below `silence_threshold` (once something louder was heard, so a caller who waits a
moment before speaking is not cut off; before that, the max length applies), or when
the caller ends it (`stop`: `#` or BYE, decided by the dialog layer).

Everything written so far is on disk in a valid WAV (see wav.WavWriter), whatever way
the recording ends. Depends on media.g711, media.rtp and media.wav.
"""

from __future__ import annotations

from .g711 import decode_le
from .rtp import RtpPacket
from .wav import RATE, WavWriter, peak

MAX_LENGTH = "max-length"
SILENCE = "silence"


class Recorder:
    def __init__(
        self,
        writer: WavWriter,
        *,
        max_seconds: float = 120.0,
        silence_seconds: float | None = 5.0,
        silence_threshold: int = 300,
        max_gap_seconds: float = 1.0,
    ) -> None:
        self.writer = writer
        self.max_samples = int(max_seconds * RATE)
        self.silence_samples = None if silence_seconds is None else int(silence_seconds * RATE)
        self.silence_threshold = silence_threshold
        self.max_gap = int(max_gap_seconds * RATE)
        self.done: str | None = None
        self.heard = False  # something above the threshold was recorded
        self.silent_run = 0  # samples of silence at the end
        self._base: int | None = None  # RTP timestamp of sample 0
        self._shift = 0  # samples of long gaps (hold, comfort-noise pauses) not recorded
        self.written = 0  # samples written

    @property
    def duration(self) -> float:
        return self.written / RATE

    def on_packet(self, packet: RtpPacket) -> None:
        if self.done is not None or packet.payload_type not in (0, 8):
            return
        if self._base is None:
            self._base = packet.timestamp
        offset = (packet.timestamp - self._base) & 0xFFFFFFFF
        if offset >= 0x80000000:  # before the first packet: too late to place
            return
        offset -= self._shift
        pcm = decode_le(packet.payload_type, packet.payload)
        if offset < self.written:  # overlaps what is written: keep only the new tail
            pcm = pcm[2 * (self.written - offset):]
        elif offset > self.written:
            gap = offset - self.written
            if gap > self.max_gap:  # a long pause (or a timestamp jump): record at most max_gap of it
                self._shift += gap - self.max_gap
                gap = self.max_gap
            self._write(b"\x00\x00" * gap, silent=True)
        if pcm and self.done is None:
            self._write(pcm, silent=peak(pcm) < self.silence_threshold)

    def _write(self, pcm: bytes, *, silent: bool) -> None:
        room = self.max_samples - self.written
        if len(pcm) // 2 >= room:
            pcm = pcm[: 2 * room]
            self.done = MAX_LENGTH
        self.writer.write(pcm)
        samples = len(pcm) // 2
        self.written += samples
        if silent:
            self.silent_run += samples
        else:
            self.silent_run = 0
            self.heard = True
        if (
            self.done is None
            and self.heard
            and self.silence_samples is not None
            and self.silent_run >= self.silence_samples
        ):
            self.done = SILENCE

    def stop(self, reason: str) -> None:
        if self.done is None:
            self.done = reason

    def close(self) -> float:
        """Close the WAV; returns its duration in seconds."""
        return self.writer.close()
