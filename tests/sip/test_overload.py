"""Overload policy (pure) and the stack's shedding: 503 + Retry-After for new work only."""

from __future__ import annotations

import pytest

from onenumber.sip.message import Response, parse
from onenumber.sip.overload import DrainRate, Overload, OverloadPolicy

from .test_stack import OPTIONS, SRC, make


def test_lag_or_queue_over_a_bound_turns_shedding_on_for_the_hold_time() -> None:
    ov = Overload(OverloadPolicy(max_lag=0.1, max_queue=1000, hold=1.0))  # the median of 5 samples
    assert not ov.sample(10.0, lag=0.05, queue=10)
    assert ov.admit("INVITE", False, 0, 10.0)
    assert not ov.sample(10.0, lag=0.4)  # one late timer is not an overload (median 0)
    assert not ov.sample(10.0, lag=0.3)  # nor two (median 50 ms)
    assert ov.sample(10.0, lag=0.3)  # a loop that keeps running late is (median 300 ms)
    assert ov.reason == "lag"
    assert not ov.admit("INVITE", False, 0, 10.5) and not ov.admit("REGISTER", False, 0, 10.9)
    assert ov.sample(10.0, lag=0.0) and ov.sample(10.0, lag=0.0)  # the median is still 300 ms: over
    assert not ov.sample(10.0, lag=0.0)  # calm again (median 0), but the hold runs to 11.0
    assert not ov.admit("INVITE", False, 0, 10.95)
    assert ov.admit("INVITE", False, 0, 11.01)
    assert ov.sample(20.0, queue=5000) and ov.reason == "queue"
    assert ov.shed == {"INVITE": 2, "REGISTER": 1} and ov.shed_total == 3


def test_what_never_starts_work_is_always_admitted() -> None:
    ov = Overload(OverloadPolicy(max_transactions=1))
    for method in ("ACK", "CANCEL", "BYE", "OPTIONS", "SUBSCRIBE", "NOTIFY", "INFO", "UPDATE"):
        assert ov.admit(method, False, 100, 0.0)
    assert ov.admit("INVITE", True, 100, 0.0)  # a re-INVITE in a dialog already accepted
    assert not ov.admit("INVITE", False, 100, 0.0) and ov.reason == "transactions"
    assert ov.admit("INVITE", False, 0, 0.0)
    off = Overload(OverloadPolicy(max_lag=0, max_queue=0, max_queue_delay=0, max_transactions=0))  # 0: off
    off.sample(0.0, lag=99.0, queue=1 << 30)
    assert off.admit("INVITE", False, 10**6, 0.0)


def test_the_queue_counts_in_time_at_the_rate_the_server_drains_it() -> None:
    ov = Overload(OverloadPolicy(max_queue=0, max_queue_delay=0.2))
    queue = 400 * 2304  # 400 datagrams waiting
    assert not ov.sample(0.0, queue=queue, rate=4000.0)  # a fast server: 100 ms of work
    assert ov.queue_delay == pytest.approx(0.1)
    assert ov.sample(0.0, queue=queue, rate=1000.0) and ov.reason == "queue delay"  # a slow one: 400 ms
    assert ov.sample(0.0, queue=queue, rate=0.0)  # a stalled one: counted at 50 messages/s
    assert not ov.sample(10.0, queue=0, rate=0.0) and ov.queue_delay == 0.0


def test_a_reloaded_lag_window_applies_to_the_samples_already_taken() -> None:
    ov = Overload(OverloadPolicy(max_lag=0.1, lag_window=5))
    for lag in (0.3, 0.3, 0.0, 0.0):
        ov.sample(0.0, lag=lag)
    assert ov.lag_median == 0.0  # [0 (no sample yet), 0.3, 0.3, 0, 0]
    ov.policy = OverloadPolicy(max_lag=0.1, lag_window=1)  # the settings reload (services/core.py)
    assert ov.sample(0.0, lag=0.2) and ov.lag_median == 0.2 and len(ov.lags) == 1
    ov.policy = OverloadPolicy(max_lag=0.1, lag_window=3)
    assert not ov.sample(0.0, lag=0.0) and ov.lag_median == 0.0  # [0 (no sample yet), 0.2, 0]


def test_the_drain_rate_is_messages_per_busy_second_whatever_the_wall_clock_did() -> None:
    drain = DrainRate(weight=0.5, min_messages=20)
    assert drain.update(10, 0.001) == 0.0  # too few messages yet: not known
    assert drain.update(10, 0.001) == pytest.approx(10_000.0)  # the two add up: 20 in 2 ms
    # idle time is not busy time: a quiet 50 ms with nothing to do leaves the rate as it was, so
    # datagrams queued while the loop was kept from running count as the few ms reading them takes
    assert drain.update(0, 0.0) == pytest.approx(10_000.0)
    assert drain.update(40, 0.008) == pytest.approx(7_500.0)  # a slower stretch moves it halfway
    # a 200 ms stall with 20 messages handled around it is one sample among many...
    assert drain.update(20, 0.2) == pytest.approx(3_800.0)
    # ...while a server that keeps getting only half a core falls to what it manages
    for _ in range(30):
        drain.update(100, 0.1)
    assert drain.rate == pytest.approx(1_000.0, rel=0.01)
    ov = Overload(OverloadPolicy(max_queue=0, max_queue_delay=0.1))
    # 75 datagrams queued in a stall, drained at 7,500 messages a second: 10 ms of work
    assert not ov.sample(0.0, lag=0.15, queue=75 * 2304, rate=7_500.0)
    assert ov.queue_delay == pytest.approx(0.01)


def test_requests_with_credentials_are_admitted_until_twice_a_bound() -> None:
    ov = Overload(OverloadPolicy(max_queue=1000, max_transactions=10, hold=1.0))
    assert ov.sample(0.0, queue=1500)  # over, under twice
    assert not ov.admit("INVITE", False, 0, 0.1)  # a new call: refused
    assert ov.admit("INVITE", False, 0, 0.1, credentials=True)  # its challenged second half: finished
    assert ov.admit("REGISTER", False, 0, 0.1, credentials=True)
    assert not ov.admit("INVITE", False, 10, 0.1, credentials=True)  # at the transactions bound: refused
    assert ov.sample(0.2, queue=2500)  # past twice the bound: everything new is refused
    assert not ov.admit("INVITE", False, 0, 0.3, credentials=True)
    assert ov.shed == {"INVITE": 3}


def test_retry_after_is_randomised_between_base_and_twice_base() -> None:
    seen = {Overload(OverloadPolicy(retry_after=5), rand=lambda r=r: r).retry_after() for r in (0.0, 0.5, 0.999)}
    assert seen == {5, 8, 10}


def test_bad_policy_values_are_refused() -> None:
    with pytest.raises(ValueError, match="bounds"):
        OverloadPolicy(max_lag=-1)
    with pytest.raises(ValueError, match="retry_after"):
        OverloadPolicy(retry_after=0)


INVITE = (
    b"INVITE sip:bob@127.0.0.1:25060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bKinv1;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: c-inv\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_stack_sheds_new_invite_and_register_statelessly_and_serves_the_rest() -> None:
    stack, tu = make()
    ov = Overload(OverloadPolicy())
    stack.overload = ov
    for _ in range(3):  # a loop that keeps running late
        ov.sample(0.0, lag=10.0)
    stack.receive(INVITE, SRC, 0.1)
    stack.receive(INVITE.replace(b"INVITE", b"REGISTER").replace(b"z9hG4bKinv1", b"z9hG4bKreg1"), SRC, 0.1)
    stack.receive(OPTIONS, SRC, 0.1)
    out = [parse(s.data) for s in stack.outbox]
    assert [(r.status, r.cseq.method) for r in out if isinstance(r, Response)] == [
        (503, "INVITE"), (503, "REGISTER"), (200, "OPTIONS")]
    assert 5 <= int(out[0].headers.get("retry-after") or 0) <= 10
    assert stack.outbox[0].remote == ("10.0.0.5", 40000)  # back to the source (rport)
    assert [r.method for r in tu.requests] == ["OPTIONS"]  # the TU never saw the refused ones
    assert len(stack.server_txns) == 1 and ov.shed == {"INVITE": 1, "REGISTER": 1}
    in_dialog = INVITE.replace(b"To: <sip:bob@x>", b"To: <sip:bob@x>;tag=b1").replace(b"inv1", b"inv2")
    stack.receive(in_dialog, SRC, 0.2)
    assert tu.requests[-1].method == "INVITE"  # a re-INVITE is served


def test_retransmission_of_an_accepted_transaction_is_served_while_shedding() -> None:
    stack, tu = make()
    tu.on_request = lambda txn, req, now: tu.requests.append(req)  # type: ignore[method-assign]  # no answer yet
    stack.overload = Overload(OverloadPolicy(max_transactions=1))
    stack.receive(INVITE, SRC, 0.0)
    assert stack.pending == 1 and len(tu.requests) == 1
    stack.receive(INVITE.replace(b"inv1", b"inv9").replace(b"c-inv", b"c-2"), SRC, 0.0)
    stack.receive(INVITE.replace(b"inv1", b"inv8").replace(b"c-inv", b"c-3"), SRC, 0.0)
    assert stack.overload.shed == {"INVITE": 2}  # one request in progress is the most allowed
    stack.outbox.clear()
    stack.receive(INVITE, SRC, 0.3)  # retransmission: absorbed by its transaction, never a 503
    assert not any(b" 503 " in s.data for s in stack.outbox)
    txn = next(iter(stack.server_txns.values()))
    stack.respond(txn, stack.make_response(txn.request, 486, "Busy Here"), 0.4)
    assert stack.pending == 0


def test_overload_and_keepalive_settings_validate_with_their_name_and_reach_the_policy() -> None:
    from dataclasses import replace

    from onenumber.services.core import overload_policy
    from onenumber.settings import Settings, validate_setting

    assert validate_setting("overload_max_lag_ms", " 250 ") == "250"
    assert validate_setting("overload_max_queue_kb", "0") == "0"  # 0 switches the bound off
    assert validate_setting("overload_max_queue_ms", "150") == "150"
    for key, bad in (("overload_max_transactions", "-1"), ("overload_retry_after", "0"),
                     ("keepalive_max_misses", "0"), ("keepalive_interval", "soon")):
        with pytest.raises(ValueError, match=key):
            validate_setting(key, bad)
    s = Settings.from_rows({"overload_max_lag_ms": "250", "overload_max_queue_kb": "64", "keepalive_interval": "x",
                            "overload_max_queue_ms": "300"})
    assert s.keepalive_interval == 30  # a bad stored value falls back to the default
    p = overload_policy(replace(s, overload_retry_after=9))
    assert (p.max_lag, p.max_queue, p.max_queue_delay, p.max_transactions, p.retry_after) == (
        0.25, 64 * 1024, 0.3, 10000, 9)


def test_shedding_from_raw_bytes_answers_like_the_parsed_path() -> None:
    stack, tu = make()
    ov = stack.overload = Overload(OverloadPolicy(max_transactions=1))
    stack.pending = 1  # full: everything new is refused
    compact = (b"INVITE sip:bob@127.0.0.1:25060 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bKc1;rport\r\n"
               b"v: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKup\r\nf: <sip:a@x>;tag=1\r\nt: <sip:bob@x>\r\ni: c-c\r\n"
               b"CSeq: 7 INVITE\r\nProxy-Authorization: Digest username=\"a\"\r\nl: 0\r\n\r\n")
    folded = INVITE.replace(b"Max-Forwards: 70\r\n", b"Subject: a\r\n  folded\r\nMax-Forwards: 70\r\n")
    for data, vias in ((compact, 2), (folded, 1)):  # the first on raw bytes, the second through the parser
        stack.outbox.clear()
        stack.receive(data, SRC, 0.0)
        (sent,) = stack.outbox
        resp = parse(sent.data)
        assert isinstance(resp, Response) and resp.status == 503 and sent.remote == SRC.remote
        assert resp.to.tag and resp.cseq.method == "INVITE" and 5 <= int(resp.headers.get("retry-after") or 0) <= 10
        assert len(resp.headers.get_all("via")) == vias
    assert resp.call_id == "c-inv" and "received=10.0.0.5" in (resp.headers.get("via") or "")  # the parsed path
    assert ov.shed == {"INVITE": 2} and not tu.requests
    assert stack.responses_out[("INVITE", 503)] == 2 and stack.requests_in["INVITE"] == 2


def test_shedding_from_raw_bytes_never_refuses_a_retransmission() -> None:
    stack, tu = make()
    tu.on_request = lambda txn, req, now: tu.requests.append(req)  # type: ignore[method-assign]  # no answer yet
    stack.overload = Overload(OverloadPolicy(max_transactions=1))
    stack.receive(INVITE, SRC, 0.0)  # accepted, in progress: the server is now full
    stack.outbox.clear()
    stack.receive(INVITE, SRC, 0.5)  # its retransmission
    assert not stack.outbox and len(tu.requests) == 1 and not stack.overload.shed
