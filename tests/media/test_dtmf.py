"""RFC 4733 telephone-events: payload format, one digit per key press, lost end packets."""

import pytest

from onenumber.media.dtmf import DtmfReceiver, TelephoneEvent, digit_event, event_payloads


def feed_all(rx: DtmfReceiver, timestamp: int, payloads) -> list[str]:
    return [d for p in payloads for d in rx.feed(timestamp, p)]


def test_payload_round_trip_and_rfc_layout():
    ev = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert ev.pack() == bytes([11, 0x80 | 10, 0x03, 0x20])
    assert TelephoneEvent.parse(ev.pack()) == ev
    assert ev.digit == "#"
    assert TelephoneEvent.parse(bytes([10, 0x40 | 5, 0, 160])) == TelephoneEvent(10, False, 5, 160)  # R bit ignored
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash
    with pytest.raises(ValueError):
        TelephoneEvent.parse(b"\x01\x02")


def test_digit_event():
    assert [digit_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_event("a") == 12
    with pytest.raises(ValueError):
        digit_event("x")


def test_one_digit_per_press_despite_three_end_packets():
    rx = DtmfReceiver()
    out = []
    for payload in event_payloads("5"):
        out += rx.feed(1000, payload)
    assert out == ["5"]
    # a later retransmitted end packet of the same event is still ignored
    assert rx.feed(1000, event_payloads("5")[-1]) == []
    # the same key again is a new event (new timestamp)
    assert feed_all(rx, 2000, event_payloads("5")) == ["5"]
    assert rx.flush() == []


def test_lost_end_packets():
    rx = DtmfReceiver()
    starts = [p for p in event_payloads("1") if not TelephoneEvent.parse(p).end]
    assert feed_all(rx, 100, starts) == []
    # the next key press starts: the first one counts
    assert rx.feed(900, event_payloads("2")[0]) == ["1"]
    assert rx.feed(900, event_payloads("2")[-1]) == ["2"]
    # an event that never ends is reported at the end of the stream
    rx.feed(2000, event_payloads("#")[0])
    assert rx.flush() == ["#"]
    assert rx.flush() == []


def test_reordered_end_before_updates():
    rx = DtmfReceiver()
    payloads = event_payloads("9")
    assert rx.feed(500, payloads[-1]) == ["9"]
    assert feed_all(rx, 500, payloads[:-1]) == []
    assert rx.feed(500, b"\x00") == []  # garbage is ignored
