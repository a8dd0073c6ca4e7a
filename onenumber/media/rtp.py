"""RTP (RFC 3550): packets, a reorder buffer, and an asyncio session for one call leg.

- `RtpPacket.pack` / `RtpPacket.parse`: the fixed header, CSRCs, header extension and
  padding (what we send has neither extension nor padding; what we receive may).
- `ReorderBuffer` (sans-IO): packets in, in-order packets out. It holds up to `depth`
  packets (or `max_wait` seconds) waiting for a missing one, then gives up on the gap and
  moves on; late and duplicate packets are dropped and counted. Sequence numbers are
  extended past the 16-bit wrap.
- `RtpSession` (the asyncio edge): a DatagramProtocol that sends 20 ms frames paced on
  the loop clock (deadlines from the start, so scheduling delays do not add up) and
  receives through the reorder buffer, handing audio packets to `on_audio` and
  RFC 4733 digits to `on_dtmf`. With `latch`, it sends to where the peer's RTP comes
  from (symmetric RTP, for phones behind NAT).

Depends on media.g711 and media.dtmf; asyncio only in `RtpSession`.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .dtmf import DtmfReceiver, event_payloads
from .g711 import encode_le

HEADER = struct.Struct("!BBHII")
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
PTIME = 0.020


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()

    def pack(self) -> bytes:
        first = 0x80 | len(self.csrcs)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        head = HEADER.pack(first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        return head + b"".join(struct.pack("!I", c) for c in self.csrcs) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < HEADER.size:
            raise ValueError("RTP packet shorter than its header")
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if first >> 6 != 2:
            raise ValueError(f"RTP version {first >> 6}")
        pos = HEADER.size
        cc = first & 0x0F
        if len(data) < pos + 4 * cc:
            raise ValueError("RTP packet shorter than its CSRC list")
        csrcs = struct.unpack_from(f"!{cc}I", data, pos) if cc else ()
        pos += 4 * cc
        if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(data) < pos + 4:
                raise ValueError("RTP extension header truncated")
            (words,) = struct.unpack_from("!H", data, pos + 2)
            pos += 4 + 4 * words
        end = len(data)
        if first & 0x20:  # padding: the last byte counts it
            pad = data[-1]
            if pad == 0 or pad > end - pos:
                raise ValueError("RTP padding larger than the payload")
            end -= pad
        if pos > end:
            raise ValueError("RTP header longer than the packet")
        return cls(second & 0x7F, seq, ts, ssrc, bytes(data[pos:end]), bool(second & 0x80), tuple(csrcs))


# -- reordering ---------------------------------------------------------------------------


@dataclass(slots=True)
class ReorderStats:
    received: int = 0
    released: int = 0
    lost: int = 0  # sequence numbers skipped over
    late: int = 0  # arrived after their place was released or skipped
    duplicates: int = 0


class ReorderBuffer:
    """In-order release of RTP packets, tolerant of jitter and loss (sans-IO: `now` is passed in)."""

    def __init__(self, depth: int = 5, max_wait: float = 0.1) -> None:
        self.depth = depth
        self.max_wait = max_wait
        self.stats = ReorderStats()
        self._held: dict[int, tuple[RtpPacket, float]] = {}  # extended seq → (packet, arrival)
        self._next: int | None = None  # extended seq to release next
        self._highest: int | None = None  # highest extended seq seen

    def _extend(self, seq: int) -> int:
        """The 16-bit sequence number extended to the one nearest the highest seen."""
        if self._highest is None:
            return seq + 0x10000  # room below the first packet for early reordered ones
        base = self._highest & ~0xFFFF
        candidates = (base - 0x10000 + seq, base + seq, base + 0x10000 + seq)
        return min(candidates, key=lambda c: abs(c - self._highest))  # type: ignore[operator]

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket]:
        self.stats.received += 1
        ext = self._extend(packet.sequence)
        if (self._next is not None and ext < self._next) or ext in self._held:
            if ext in self._held:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return []
        self._held[ext] = (packet, now)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        return self._release(now)

    def due(self, now: float) -> list[RtpPacket]:
        """Give up on a gap whose next packet has waited `max_wait`."""
        return self._release(now)

    def flush(self) -> list[RtpPacket]:
        """Everything held, in order (the end of the call)."""
        out = []
        for ext in sorted(self._held):
            out.append(self._held.pop(ext)[0])
            if self._next is not None and ext > self._next:
                self.stats.lost += ext - self._next
            self._next = ext + 1
        self.stats.released += len(out)
        return out

    def _release(self, now: float) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        while self._held:
            if self._next is not None and self._next in self._held:
                out.append(self._held.pop(self._next)[0])
                self._next += 1
                continue
            oldest = min(self._held)
            waited = now - min(arrival for _, arrival in self._held.values())
            if len(self._held) > self.depth or waited >= self.max_wait:
                if self._next is not None:
                    self.stats.lost += oldest - self._next
                self._next = oldest  # skip the gap (or start the stream)
                continue
            break
        self.stats.released += len(out)
        return out


# -- the asyncio session ------------------------------------------------------------------

AudioHandler = Callable[[RtpPacket], None]
DigitHandler = Callable[[str], None]


@dataclass(slots=True)
class SessionCounters:
    sent: int = 0
    received: int = 0
    invalid: int = 0
    other_source: int = 0


class RtpSession(asyncio.DatagramProtocol):
    """One RTP stream each way on one UDP socket."""

    def __init__(
        self,
        payload_type: int,
        remote: tuple[str, int] | None = None,
        *,
        on_audio: AudioHandler | None = None,
        on_dtmf: DigitHandler | None = None,
        dtmf_payload_type: int | None = 101,
        latch: bool = False,
        ssrc: int | None = None,
        depth: int = 5,
        max_wait: float = 0.1,
    ) -> None:
        self.payload_type = payload_type
        self.remote = remote
        self.on_audio = on_audio
        self.on_dtmf = on_dtmf
        self.dtmf_payload_type = dtmf_payload_type
        self.latch = latch
        self.ssrc = ssrc if ssrc is not None else int.from_bytes(os.urandom(4), "big")
        self.buffer = ReorderBuffer(depth, max_wait)
        self.dtmf = DtmfReceiver()
        self.counters = SessionCounters()
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] | None = None
        self._seq = int.from_bytes(os.urandom(2), "big")
        self._ts = int.from_bytes(os.urandom(4), "big")
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self._tick()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._drain(self.buffer.flush())
        self._digits(self.dtmf.flush())
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self.counters.invalid += 1
            return
        if self.latch and self.remote != addr[:2]:
            self.remote = (addr[0], addr[1])
        self.counters.received += 1
        if self.dtmf_payload_type is not None and packet.payload_type == self.dtmf_payload_type:
            self._digits(self.dtmf.feed(packet.timestamp, packet.payload))
            return
        assert self._loop is not None
        self._drain(self.buffer.push(packet, self._loop.time()))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.: keep going
        pass

    # ---------------------------------------------------------------- receiving
    def _tick(self) -> None:
        """Every 20 ms: release what waited too long for a missing packet."""
        assert self._loop is not None
        self._drain(self.buffer.due(self._loop.time()))
        self._timer = self._loop.call_later(PTIME, self._tick)

    def _drain(self, packets: Iterable[RtpPacket]) -> None:
        if self.on_audio is not None:
            for p in packets:
                self.on_audio(p)

    def _digits(self, digits: Iterable[str]) -> None:
        if self.on_dtmf is not None:
            for d in digits:
                self.on_dtmf(d)

    # ---------------------------------------------------------------- sending
    def send_packet(self, payload: bytes, *, payload_type: int | None = None, marker: bool = False,
                    timestamp: int | None = None, advance: int = FRAME_SAMPLES) -> None:
        """Send one packet now; the timestamp advances by `advance` samples afterwards."""
        if self.transport is None or self.remote is None or self.transport.is_closing():
            return
        ts = self._ts if timestamp is None else timestamp
        pkt = RtpPacket(self.payload_type if payload_type is None else payload_type, self._seq, ts, self.ssrc,
                        payload, marker)
        self.transport.sendto(pkt.pack(), self.remote)
        self.counters.sent += 1
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + advance) & 0xFFFFFFFF

    async def send_frames(self, payloads: Iterable[bytes], stop: asyncio.Event | None = None) -> int:
        """Send payloads (one 20 ms frame each) paced on the loop clock; returns how many went out.

        Deadlines are counted from the first frame, so a late wake-up is caught up, not
        accumulated. Stops early when `stop` is set or the socket closes."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        for i, payload in enumerate(payloads):
            if stop is not None and stop.is_set():
                break
            if self.transport is None or self.transport.is_closing():
                break
            delay = start + i * PTIME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_packet(payload, marker=i == 0)
            sent += 1
        return sent

    async def play(self, pcm: bytes, stop: asyncio.Event | None = None) -> int:
        """Play 8 kHz 16-bit little-endian PCM (the last frame padded with silence)."""
        return await self.send_frames(frames(pcm, self.payload_type), stop)

    async def send_digit(self, digit: str, duration_samples: int = 800) -> None:
        """Send one RFC 4733 key press (updates every 20 ms, then 3 end packets)."""
        if self.dtmf_payload_type is None:
            raise ValueError("no telephone-event payload type negotiated")
        start = self._ts
        payloads = event_payloads(digit, duration_samples)
        for i, payload in enumerate(payloads):
            self.send_packet(payload, payload_type=self.dtmf_payload_type, marker=i == 0, timestamp=start, advance=0)
            if i < len(payloads) - 3:
                await asyncio.sleep(PTIME)
        self._ts = (start + duration_samples) & 0xFFFFFFFF

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def frames(pcm: bytes, payload_type: int, samples: int = FRAME_SAMPLES) -> Iterable[bytes]:
    """Encoded 20 ms payloads of little-endian 16-bit PCM; the last one padded with silence."""
    size = samples * 2
    for pos in range(0, len(pcm), size):
        chunk = pcm[pos:pos + size]
        if len(chunk) < size:
            chunk += b"\x00" * (size - len(chunk))
        yield encode_le(payload_type, chunk)


async def open_session(
    host: str, port: int = 0, *, payload_type: int = 0, **kwargs: Any
) -> tuple[asyncio.DatagramTransport, RtpSession]:
    """Bind a UDP socket on host:port (0: any free port) with a new `RtpSession`."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: RtpSession(payload_type, **kwargs), local_addr=(host, port)
    )
    return transport, protocol


__all__ = [
    "FRAME_SAMPLES",
    "PTIME",
    "ReorderBuffer",
    "ReorderStats",
    "RtpPacket",
    "RtpSession",
    "frames",
    "open_session",
]
