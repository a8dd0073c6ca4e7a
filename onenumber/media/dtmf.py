"""RFC 4733 telephone-events: the 4-byte payload, and digits out of a stream of them.

A key press arrives as several RTP packets with the same RTP timestamp (the event's
start) and a growing duration; the last one has the E (end) bit and is sent three
times. `DtmfReceiver.feed` turns that into one digit: it reports the digit when the
first end packet of a timestamp arrives, ignores the repeated end packets, and reports
a digit whose end packets were all lost when the next event (another timestamp) starts
or when `flush` is called at the end of the call.

Pure: no I/O; depends on the standard library only.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"  # events 0..15 (RFC 4733 §3.2); 16 is flash, ignored here
TELEPHONE_EVENT = "telephone-event"


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int  # 0..255
    end: bool
    volume: int  # 0..63 (−dBm0)
    duration: int  # in RTP timestamp units

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise ValueError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def pack(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None


def digit_event(digit: str) -> int:
    index = EVENTS.find(digit.upper())
    if index < 0 or len(digit) != 1:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


class DtmfReceiver:
    """Digits from telephone-event packets, each reported once."""

    def __init__(self, memory: int = 32) -> None:
        self._done: deque[int] = deque(maxlen=memory)  # timestamps already reported
        self._pending: tuple[int, str] | None = None  # (timestamp, digit) started, not ended

    def feed(self, timestamp: int, payload: bytes) -> list[str]:
        """The digits this packet completes (usually none or one)."""
        try:
            ev = TelephoneEvent.parse(payload)
        except ValueError:
            return []
        if timestamp in self._done:
            return []  # a repeated end packet, or a late packet of a reported event
        out: list[str] = []
        if self._pending is not None and self._pending[0] != timestamp:
            out.append(self._finish())  # the previous event lost all its end packets
        digit = ev.digit
        if digit is None:
            return out
        if ev.end:
            self._pending = None
            self._done.append(timestamp)
            out.append(digit)
        else:
            self._pending = (timestamp, digit)
        return out

    def flush(self) -> list[str]:
        """At the end of the stream: an event that never ended still counts."""
        return [self._finish()] if self._pending is not None else []

    def _finish(self) -> str:
        assert self._pending is not None
        timestamp, digit = self._pending
        self._pending = None
        self._done.append(timestamp)
        return digit


def event_payloads(digit: str, duration_samples: int = 800, step: int = 160, volume: int = 10) -> list[bytes]:
    """The payloads a phone sends for one key press: updates every `step`, then 3 end packets."""
    event = digit_event(digit)
    out = [TelephoneEvent(event, False, volume, d).pack() for d in range(step, duration_samples, step)]
    out += [TelephoneEvent(event, True, volume, duration_samples).pack()] * 3
    return out
