"""The call event stream (issue 7), sans-IO: what each story emits, in order, with the device;
the history rows the first subscriber makes of it; and a failing subscriber that breaks nothing."""

from __future__ import annotations

import logging

import pytest

from onenumber.routing.model import Forwarding
from onenumber.services.events import (
    BindingChanged,
    BranchRinging,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallForwarded,
    CallStarted,
    DialogChanged,
    DialogState,
    EndCause,
    EventBus,
    FailCause,
)
from onenumber.services.history import CallSummary, history_rows
from onenumber.settings import Trunk

from .sipnet import TRUNK, Net, answer_auth, invite, make_account, reply, requests_to, responses_to

D0, D1, D2 = 31000, 31002, 31004
PHONE = ("127.0.0.1", 32000)


def office(**alice_kw: object) -> Net:
    alice, devs = make_account("1000", "Alice", 2, **alice_kw)
    bob, bob_devs = make_account("1001", "Bob", 1)
    net = Net([alice, bob], devs + bob_devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1], prefix=""),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1)
    net.take_events()
    return net


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, DialogChanged | BindingChanged)]


def rows_of(net: Net, events: list) -> dict[tuple[str, str], object]:
    """Feed the events to the pure row builder as the writer does."""
    calls: dict[str, CallSummary] = {}
    rows = {}
    from onenumber.services.history import HistoryWriter

    writer = HistoryWriter(None, EventBus(), net.directory)
    for e in events:
        writer.on_event(e)
    for call_id in list(writer.calls):  # calls still up: hang them up, rows are written at the end
        writer.on_event(CallEnded(call_id, net.now + 60, EndCause.BYE, "caller"))
    for r in writer.pending:
        rows[(r.account, r.direction)] = r
    assert calls == {}
    return rows


def test_answered_on_device_2_while_device_1_rang() -> None:
    net = office()
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    net.send(reply(inv1, 200, "OK", tag="d1", contact=f"sip:1000_2@127.0.0.1:{D1}"), ("127.0.0.1", D1))
    events = net.take_events()
    assert kinds(events) == ["CallStarted", "BranchRinging", "BranchRinging", "CallAnswered"]
    ringing = [e for e in events if isinstance(e, BranchRinging)]
    assert [(e.account, e.device) for e in ringing] == [("1000", "1000"), ("1000", "1000_2")]
    (answered,) = [e for e in events if isinstance(e, CallAnswered)]
    assert (answered.account, answered.device, answered.position) == ("1000", "1000_2", 1)
    states = [(e.device, e.state) for e in events if isinstance(e, DialogChanged)]
    assert ("1000_2", DialogState.CONFIRMED) in states and ("1000", DialogState.TERMINATED) in states
    assert states.index(("1000", DialogState.EARLY)) < states.index(("1000", DialogState.TERMINATED))
    rows = rows_of(net, events)
    row = rows[("1000", "in")]
    assert (row.outcome, row.device) == ("answered", "1000_2")  # the other device records nothing extra


def test_caller_cancels_is_missed() -> None:
    net = office()
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    cancel = bytes(req).decode().replace("INVITE sip", "CANCEL sip", 1).replace("1 INVITE", "1 CANCEL")
    net.send((cancel.split("Content-Type")[0] + "Content-Length: 0\r\n\r\n").encode(), TRUNK)
    events = net.take_events()
    assert kinds(events)[-1] == "CallFailed"
    failed = events[-1] if isinstance(events[-1], CallFailed) else next(e for e in events if isinstance(e, CallFailed))
    assert (failed.status, failed.cause) == (487, FailCause.CANCELLED)
    assert rows_of(net, events)[("1000", "in")].outcome == "missed"


def test_busy_everywhere() -> None:
    net = office()
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 486, "Busy Here", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 486, "Busy Here", tag="d1"), ("127.0.0.1", D1))
    events = net.take_events()
    (failed,) = [e for e in events if isinstance(e, CallFailed)]
    assert (failed.status, failed.cause, failed.account) == (486, FailCause.BUSY, "1000")
    assert rows_of(net, events)[("1000", "in")].outcome == "busy"


def test_no_answer_forward_then_answered_by_the_target() -> None:
    net = office(forwarding=Forwarding(no_answer="1001"), no_answer_seconds=5)
    net.bind(net.directory.devices("1001")[0], D2)
    net.take_events()
    out = net.send(invite("1000", TRUNK), TRUNK)
    for port in (D0, D1):
        net.send(reply(requests_to(out, port, "INVITE")[0], 180, "Ringing", tag=f"t{port}"), ("127.0.0.1", port))
    out = net.advance(5.5)
    fwd = requests_to(out, D2, "INVITE")[0]
    net.send(reply(fwd, 200, "OK", tag="bob", contact=f"sip:1001@127.0.0.1:{D2}"), ("127.0.0.1", D2))
    events = net.take_events()
    assert kinds(events) == ["CallStarted", "BranchRinging", "BranchRinging", "CallForwarded", "CallAnswered"]
    (forwarded,) = [e for e in events if isinstance(e, CallForwarded)]
    assert (forwarded.account, forwarded.reason, forwarded.to) == ("1000", "no-answer", "1001")
    rows = rows_of(net, events)
    assert (rows[("1000", "in")].outcome, rows[("1000", "in")].forwarded_to) == ("forwarded", "1001")
    assert rows[("1001", "in")].outcome == "answered"


def test_unconditional_forward_rings_nothing_of_the_first_account() -> None:
    net = office(forwarding=Forwarding(unconditional="1001"))
    net.bind(net.directory.devices("1001")[0], D2)
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert not requests_to(out, D0) and requests_to(out, D2, "INVITE")
    events = net.take_events()
    assert kinds(events) == ["CallStarted", "CallForwarded"]
    assert events[-1].reason == "unconditional" if isinstance(events[-1], CallForwarded) else True


def test_trunk_call_from_a_device_and_its_end() -> None:
    net = office()
    req = invite("0612345678", PHONE, from_user="1000_2")
    (challenge,) = responses_to(net.send(req, PHONE), PHONE[1])
    auth = answer_auth(challenge, req, "1000_2", "secret-1000-1")
    out = net.send(invite("0612345678", PHONE, from_user="1000_2", call_id=req.call_id, auth=auth, cseq=2), PHONE)
    (fwd,) = requests_to(out, TRUNK[1], "INVITE")
    out = net.send(reply(fwd, 200, "OK", tag="gw", contact=f"sip:0612345678@{TRUNK[0]}:{TRUNK[1]}"), TRUNK)
    ok = next(r for r in responses_to(out, PHONE[1]) if r.status == 200)
    routes = list(reversed(ok.headers.get_all("record-route")))
    bye = "\r\n".join([
        f"BYE sip:0612345678@{TRUNK[0]}:{TRUNK[1]} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{PHONE[1]};branch=z9hG4bKb1",
        *[f"Route: {r}" for r in routes], f"From: {ok.headers.get('from')}", f"To: {ok.headers.get('to')}",
        f"Call-ID: {req.call_id}", "CSeq: 3 BYE", "Max-Forwards: 70", "Content-Length: 0", "", ""])
    net.send(bye.encode(), PHONE)
    events = net.take_events()
    assert kinds(events) == ["CallStarted", "CallAnswered", "CallEnded"]
    started = events[0]
    assert isinstance(started, CallStarted)
    assert (started.caller.account, started.caller.device, started.callee_account) == ("1000", "1000_2", None)
    ended = next(e for e in events if isinstance(e, CallEnded))
    assert ended.by == "caller"
    rows = rows_of(net, events)
    out_row = rows[("1000", "out")]
    assert (out_row.outcome, out_row.device, out_row.other_number) == ("answered", "1000_2", "0612345678")
    assert list(rows) == [("1000", "out")]


def test_call_waiting_off_keeps_a_device_quiet_and_dialogs_say_why() -> None:
    from dataclasses import replace

    alice, devs = make_account("1000", "Alice", 2)
    devs[1] = replace(devs[1], call_waiting=False)
    net = Net([alice], devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    net.send(reply(inv0, 200, "OK", tag="d0", contact=f"sip:1000@127.0.0.1:{D0}"), ("127.0.0.1", D0))
    assert net.core.dialogs.call_state("1000").active_calls == 1
    net.take_events()
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert requests_to(out, D0, "INVITE") and not requests_to(out, D1, "INVITE")
    ringing = [e for e in net.take_events() if isinstance(e, DialogChanged)]
    assert {e.device for e in ringing if e.direction == "recipient"} == {"1000"}


def test_a_subscriber_that_raises_breaks_no_call_and_is_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    net = office()
    calls = []

    def broken(event: object) -> None:
        calls.append(event)
        raise RuntimeError("subscriber bug")

    net.core.events.subscribe(broken)
    with caplog.at_level(logging.ERROR, logger="onenumber.events"):
        for _ in range(3):
            out = net.send(invite("1000", TRUNK), TRUNK)
            inv0 = requests_to(out, D0, "INVITE")[0]
            out = net.send(reply(inv0, 200, "OK", tag="d0", contact=f"sip:1000@127.0.0.1:{D0}"), ("127.0.0.1", D0))
            assert 200 in [r.status for r in responses_to(out, TRUNK[1])]
    assert len(calls) > 6
    assert len([r for r in caplog.records if "subscriber" in r.getMessage()]) == 1
    net.advance(61)
    with caplog.at_level(logging.ERROR, logger="onenumber.events"):
        net.send(invite("1000", TRUNK), TRUNK)
    assert len([r for r in caplog.records if "subscriber" in r.getMessage()]) == 2


def test_history_rows_for_an_internal_call_give_both_sides() -> None:
    from onenumber.services.events import Party

    call = CallSummary("c1", 100.0, Party("1000", "Alice", "1000", "1000_2", 1), "1001", targets=["1001"],
                       rang={"1001"}, answered_at=103.0, answered_by=Party("1001", "", "1001", "1001", 0),
                       ended_at=163.0)
    rows = {(r.account, r.direction): r for r in history_rows(call, {"1001": "Bob", "1000": "Alice"}.get)}
    out, inc = rows[("1000", "out")], rows[("1001", "in")]
    assert (out.other_number, out.other_name, out.outcome, out.device, out.duration) == ("1001", "Bob", "answered",
                                                                                         "1000_2", 60.0)
    assert (inc.other_number, inc.other_name, inc.outcome, inc.device) == ("1000", "Alice", "answered", "1001")


@pytest.mark.parametrize(("cause", "rang", "outcome_in", "outcome_out"), [
    (FailCause.CANCELLED, True, "missed", "no answer"),
    (FailCause.NO_ANSWER, True, "missed", "no answer"),
    (FailCause.UNAVAILABLE, False, "no answer", "no answer"),
    (FailCause.BUSY, True, "busy", "busy"),
    (FailCause.DECLINED, True, "declined", "declined"),
    (FailCause.FAILED, False, "failed", "failed"),
])
def test_history_outcomes_of_unanswered_calls(cause: FailCause, rang: bool, outcome_in: str, outcome_out: str) -> None:
    from onenumber.services.events import Party

    call = CallSummary("c1", 1.0, Party("1000", "Alice", "1000", "1000", 0), "1001", targets=["1001"],
                       rang={"1001"} if rang else set(), ended_at=5.0, fail_cause=cause)
    rows = {(r.account, r.direction): r.outcome for r in history_rows(call, lambda n: "")}
    assert rows == {("1000", "out"): outcome_out, ("1001", "in"): outcome_in}


def test_a_call_answered_by_another_account_is_answered_elsewhere_not_missed() -> None:
    from onenumber.services.events import Party

    call = CallSummary("c1", 1.0, Party("555", "Ext"), "1000", targets=["1000"], rang={"1000"}, answered_at=2.0,
                       answered_by=Party("1001", "", "1001", "1001", 0), ended_at=9.0)
    row, picked = history_rows(call, lambda n: "")
    assert (row.account, row.outcome) == ("1000", "answered elsewhere")
    # the account whose device took it (a pickup) has it as an answered incoming call
    assert (picked.account, picked.direction, picked.outcome, picked.device) == ("1001", "in", "answered", "1001")
    assert (picked.other_number, picked.duration) == ("555", 7.0)


def test_an_answered_call_with_no_bye_is_forgotten_after_the_dialog_limit() -> None:
    from onenumber.services.dialogs import DIALOG_LIMIT
    from onenumber.services.events import EndCause

    net = office()
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    net.send(reply(inv0, 200, "OK", tag="d0", contact=f"sip:1000@127.0.0.1:{D0}"), ("127.0.0.1", D0))
    net.take_events()
    net.core.proxy.forget_stale_calls(net.now + 60)
    assert net.core.dialogs.call_state("1000").active_calls == 1  # a long call is not a dead one
    net.core.proxy.forget_stale_calls(net.now + DIALOG_LIMIT + 1)
    (ended,) = [e for e in net.take_events() if isinstance(e, CallEnded)]
    assert ended.cause is EndCause.EXPIRED
    assert net.core.dialogs.call_state("1000").active_calls == 0
