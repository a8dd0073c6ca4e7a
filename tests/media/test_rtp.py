"""RTP: header format, the reorder buffer, and two asyncio sessions talking over 127.0.0.1."""

import asyncio
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.media import g711
from onenumber.media.dtmf import event_payloads
from onenumber.media.rtp import FRAME_SAMPLES, ReorderBuffer, RtpPacket, RtpSession, frames, open_session

LOOPBACK = "127.0.0.1"


def test_pack_and_parse():
    p = RtpPacket(0, 65535, 0xFFFFFFFF, 0x12345678, b"\xff" * 160, marker=True)
    data = p.pack()
    assert data[:12] == bytes([0x80, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x12, 0x34, 0x56, 0x78])
    assert RtpPacket.parse(data) == p
    with_csrc = RtpPacket(8, 1, 2, 3, b"ab", csrcs=(7, 9))
    assert RtpPacket.parse(with_csrc.pack()) == with_csrc


def test_parse_extension_and_padding():
    head = bytes([0x80 | 0x10 | 0x20, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
    ext = bytes([0xBE, 0xDE, 0, 1, 1, 2, 3, 4])  # one 32-bit word of extension
    data = head + ext + b"payload" + b"\x00\x00\x03"
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.payload) == (8, 1, 2, 3, b"payload")


@pytest.mark.parametrize(
    "data",
    [b"\x80\x00", bytes([0x40]) + b"\x00" * 11, bytes([0x82]) + b"\x00" * 11,
     bytes([0x90]) + b"\x00" * 11, bytes([0xA0]) + b"\x00" * 10 + b"\x20"],
)
def test_parse_rejects_bad_packets(data):
    with pytest.raises(ValueError):
        RtpPacket.parse(data)


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, seq * FRAME_SAMPLES, 1, b"\xff")


def seqs(packets) -> list[int]:
    return [p.sequence for p in packets]


def test_reorder_in_order_and_swapped():
    buf = ReorderBuffer(depth=3, max_wait=0.1)
    out = []
    for i, s in enumerate([10, 11, 12, 13, 15, 14, 16, 17]):
        out += buf.push(pkt(s), now=i * 0.02)
    out += buf.flush()
    assert seqs(out) == list(range(10, 18))
    assert buf.stats.lost == 0 and buf.stats.late == 0


def test_reorder_gap_is_skipped_after_depth_or_wait():
    buf = ReorderBuffer(depth=3, max_wait=0.1)
    out = []
    for i, s in enumerate([1, 2, 3, 4, 5]):
        out += buf.push(pkt(s), i * 0.02)
    out += buf.due(1.0)
    assert seqs(out) == [1, 2, 3, 4, 5]
    out = buf.push(pkt(7), 1.0)  # 6 is missing
    assert out == [] and buf.due(1.05) == []
    assert seqs(buf.due(1.11)) == [7]
    assert buf.stats.lost == 1
    assert buf.push(pkt(6), 1.2) == [] and buf.stats.late == 1  # too late now
    buf.push(pkt(8), 1.2)
    assert buf.push(pkt(8), 1.21) == [] and buf.stats.duplicates + buf.stats.late >= 1


def test_reorder_first_packets_may_come_out_of_order():
    buf = ReorderBuffer(depth=2, max_wait=0.1)
    out = buf.push(pkt(101), 0.0) + buf.push(pkt(100), 0.01) + buf.push(pkt(102), 0.02)
    out += buf.push(pkt(103), 0.03) + buf.flush()
    assert seqs(out) == [100, 101, 102, 103]


def test_reorder_across_sequence_wrap():
    buf = ReorderBuffer(depth=3)
    order = [65533, 65534, 0, 65535, 1, 2, 3]
    out = [p for i, s in enumerate(order) for p in buf.push(pkt(s), i * 0.02)] + buf.flush()
    assert seqs(out) == [65533, 65534, 65535, 0, 1, 2, 3]
    assert buf.stats.lost == 0


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 65535), st.integers(1, 60), st.randoms(use_true_random=False))
def test_reorder_property_displacement_within_depth_is_fully_repaired(start, count, rnd):
    depth = 4
    order = list(range(start, start + count))
    # shuffle within disjoint windows of `depth` packets: each packet moves less than `depth`
    for w in range(0, count, depth):
        window = order[w:w + depth]
        rnd.shuffle(window)
        order[w:w + depth] = window
    buf = ReorderBuffer(depth=depth, max_wait=10.0)
    out = [p for i, s in enumerate(order) for p in buf.push(pkt(s), i * 0.02)] + buf.flush()
    assert seqs(out) == [s & 0xFFFF for s in range(start, start + count)]
    assert buf.stats.lost == 0 and buf.stats.late == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=80), st.integers(1, 6))
def test_reorder_property_output_always_increasing(arrivals, depth):
    buf = ReorderBuffer(depth=depth, max_wait=0.05)
    out = []
    for i, s in enumerate(arrivals):
        out += buf.push(pkt(1000 + s), i * 0.02)
        out += buf.due(i * 0.02)
    out += buf.flush()
    got = seqs(out)
    assert got == sorted(set(got))  # strictly increasing: no duplicates, never backwards
    assert set(got) <= {1000 + s for s in arrivals}
    s = buf.stats
    assert s.released == len(got) and s.received == len(arrivals)


class _Raw(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport


async def test_loopback_with_reordering_duplicates_and_dtmf():
    """A raw sender shuffles 20 ms frames in windows of 3 and repeats one: the receiving
    session delivers every frame once and in order, and a key press as one digit."""
    got: list[RtpPacket] = []
    digits: list[str] = []
    rx_transport, rx = await open_session(LOOPBACK, 0, payload_type=g711.PCMU, on_audio=got.append,
                                          on_dtmf=digits.append, depth=5, max_wait=0.2)
    port = rx_transport.get_extra_info("sockname")[1]
    loop = asyncio.get_running_loop()
    tx_transport, _ = await loop.create_datagram_endpoint(_Raw, local_addr=(LOOPBACK, 0))
    try:
        packets = [RtpPacket(0, (60000 + i) & 0xFFFF, i * 160, 42, bytes([i % 256]) * 160) for i in range(60)]
        order = list(range(60))
        rnd = random.Random(7)
        for w in range(0, 60, 3):
            window = order[w:w + 3]
            rnd.shuffle(window)
            order[w:w + 3] = window
        order.insert(30, order[29])  # a duplicate
        start = loop.time()
        for n, i in enumerate(order):
            await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
            tx_transport.sendto(packets[i].pack(), (LOOPBACK, port))
        for payload in event_payloads("#"):
            tx_transport.sendto(RtpPacket(101, 0, 9600, 42, payload).pack(), (LOOPBACK, port))
        await asyncio.sleep(0.4)  # longer than max_wait: the tail is released by the timer
        assert [p.sequence for p in got] == [(60000 + i) & 0xFFFF for i in range(60)]
        assert [p.payload[0] for p in got] == [i % 256 for i in range(60)]
        assert digits == ["#"]
        assert rx.buffer.stats.duplicates + rx.buffer.stats.late == 1
    finally:
        tx_transport.close()
        rx.close()
    await asyncio.wait_for(rx.closed, 1)


async def test_session_pacing_and_symmetric_latch():
    """Session A plays 1 s of audio to B, paced at 20 ms; B latches onto A's address and answers."""
    received_b: list[RtpPacket] = []
    received_a: list[RtpPacket] = []
    tb, b = await open_session(LOOPBACK, 0, payload_type=g711.PCMA, on_audio=received_b.append, latch=True)
    ta, a = await open_session(LOOPBACK, 0, payload_type=g711.PCMA, on_audio=received_a.append,
                               remote=tb.get_extra_info("sockname"))
    loop = asyncio.get_running_loop()
    try:
        pcm = b"\x10\x00" * 8000
        t0 = loop.time()
        sent = await a.play(pcm)
        elapsed = loop.time() - t0
        assert sent == 50
        assert 0.95 <= elapsed <= 1.3  # 49 intervals of 20 ms, paced, not sent in a burst
        await asyncio.sleep(0.25)
        assert len(received_b) == 50
        assert received_b[0].marker and not received_b[1].marker
        ts = [p.timestamp for p in received_b]
        assert all((y - x) & 0xFFFFFFFF == 160 for x, y in itertools.pairwise(ts))
        assert b.remote == ta.get_extra_info("sockname")
        await b.send_frames(frames(pcm[:3200], g711.PCMA))
        await a.send_digit("5")
        await asyncio.sleep(0.25)
        assert len(received_a) == 10
    finally:
        a.close()
        b.close()


async def test_stop_event_ends_playback():
    tb, b = await open_session(LOOPBACK, 0)
    _ta, a = await open_session(LOOPBACK, 0, remote=tb.get_extra_info("sockname"))
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    try:
        sent = await a.play(b"\x00\x00" * 8000 * 5, stop)
        assert 3 <= sent <= 10
    finally:
        a.close()
        b.close()
    assert isinstance(a, RtpSession)
