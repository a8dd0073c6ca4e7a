"""Directed pickup through the real core, sans-IO: `*8` + number and INVITE with Replaces."""

from __future__ import annotations

from onenumber.services.events import CallAnswered
from onenumber.services.subscriptions import WatchSettings
from onenumber.settings import Trunk
from onenumber.sip.message import Request

from .sipnet import TRUNK, Net, answer_auth, invite, make_account, reply, requests_to, responses_to

D0, D1, PICKER = 31000, 31002, 31010
COMPLETED = 'SIP;cause=200;text="Call completed elsewhere"'


def setup() -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 2)
    bob, bob_devs = make_account("1001", "Bob", 1)
    net = Net([alice, bob], devs + bob_devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1)
    return net, bob_devs


def ring_1000(net: Net) -> tuple[Request, Request, Request]:
    call = invite("1000", TRUNK)
    out = net.send(call, TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    return call, inv0, inv1


def dial(net: Net, number: str, bob_devs: list, *, replaces: str | None = None) -> list:
    phone = ("127.0.0.1", PICKER)
    req = invite(number, phone, from_user="1001")
    (challenge,) = responses_to(net.send(req, phone), PICKER)
    auth = answer_auth(challenge, req, "1001", bob_devs[0].secret)
    req2 = invite(number, phone, from_user="1001", call_id=req.call_id, auth=auth, cseq=2)
    if replaces:
        req2.headers.add("Replaces", replaces)
    return net.send(req2, phone)


def test_star8_connects_the_picker_and_cancels_every_device_completed_elsewhere() -> None:
    net, bob_devs = setup()
    call, _, _ = ring_1000(net)
    out = dial(net, "*81000", bob_devs)
    finals = [r for r in responses_to(out, PICKER) if r.status >= 200]
    assert [r.status for r in finals] == [487]  # its own INVITE ends: the call comes to it
    (offered,) = [r for r in requests_to(out, PICKER, "INVITE") if r.call_id == call.call_id]
    assert "answer-after=0" in (offered.headers.get("call-info") or "")
    assert offered.uri.startswith("sip:1001@127.0.0.1:31010")
    assert not requests_to(out, D0, "CANCEL")  # the others ring until the picker answers
    net.take_events()
    out = net.send(reply(offered, 200, "OK", tag="pk", contact=f"sip:1001@127.0.0.1:{PICKER}"),
                   ("127.0.0.1", PICKER))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [200]
    for port in (D0, D1):
        (cancel,) = requests_to(out, port, "CANCEL")
        assert cancel.headers.get("reason") == COMPLETED
    answered = [e for e in net.take_events() if isinstance(e, CallAnswered)]
    assert answered and answered[0].account == "1001" and answered[0].number == "1000"
    assert net.core.dialogs.call_state("1001").active_calls == 1


def test_pickup_works_whichever_device_rings() -> None:
    net, bob_devs = setup()
    net.location.apply([], [b for b in net.location.get("1000") if b.auth_username == "1000"])
    call = invite("1000", TRUNK)
    out = net.send(call, TRUNK)
    assert not requests_to(out, D0, "INVITE")
    (inv1,) = requests_to(out, D1, "INVITE")
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = dial(net, "*81000", bob_devs)
    (offered,) = [r for r in requests_to(out, PICKER, "INVITE") if r.call_id == call.call_id]
    out = net.send(reply(offered, 200, "OK", tag="pk", contact=f"sip:1001@127.0.0.1:{PICKER}"),
                   ("127.0.0.1", PICKER))
    (cancel,) = requests_to(out, D1, "CANCEL")
    assert cancel.headers.get("reason") == COMPLETED


def test_nothing_ringing_is_a_clear_480_and_unknown_number_404() -> None:
    net, bob_devs = setup()
    out = dial(net, "*81000", bob_devs)
    finals = [r for r in responses_to(out, PICKER) if r.status >= 200]
    assert finals[0].status == 480 and "nothing is ringing at 1000" in finals[0].reason
    out = dial(net, "*81999", bob_devs)
    assert [r.status for r in responses_to(out, PICKER) if r.status >= 200] == [404]


def test_a_watcher_the_rule_forbids_cannot_pick_up() -> None:
    net, bob_devs = setup()
    assert net.core.presence is not None
    net.core.presence.watch = WatchSettings(rule="nobody")
    ring_1000(net)
    out = dial(net, "*81000", bob_devs)
    finals = [r for r in responses_to(out, PICKER) if r.status >= 200]
    assert finals[0].status == 403
    assert not requests_to(out, D0, "CANCEL") and not [r for r in requests_to(out, PICKER, "INVITE")]


def test_the_watch_setting_applies_to_pickup_after_a_reload() -> None:
    from dataclasses import replace

    net, bob_devs = setup()
    settings = replace(net.directory.settings, presence_watch="1002:1000")
    net.directory.settings = settings
    for listener in net.directory.listeners:
        listener(net.directory)
    ring_1000(net)
    out = dial(net, "*81000", bob_devs)
    assert [r.status for r in responses_to(out, PICKER) if r.status >= 200] == [403]


def test_invite_with_replaces_from_a_blf_key_picks_up_that_call() -> None:
    net, bob_devs = setup()
    call, _, _ = ring_1000(net)
    from_tag = call.from_.tag
    out = dial(net, "*81000", bob_devs, replaces=f"{call.call_id};to-tag=;from-tag={from_tag};early-only")
    assert [r.call_id for r in requests_to(out, PICKER, "INVITE")] == [call.call_id]
    out = dial(net, "1000", bob_devs, replaces=f"{call.call_id};to-tag=x;from-tag=wrong")
    # a wrong caller tag: no pickup; to a ringing account's number it is an ordinary call again
    assert not [r for r in responses_to(out, PICKER) if r.status == 487]


def test_picker_declining_leaves_the_call_ringing() -> None:
    net, bob_devs = setup()
    call, _, _ = ring_1000(net)
    out = dial(net, "*81000", bob_devs)
    (offered,) = [r for r in requests_to(out, PICKER, "INVITE") if r.call_id == call.call_id]
    out = net.send(reply(offered, 486, "Busy Here", tag="pk"), ("127.0.0.1", PICKER))
    assert not [r for r in responses_to(out, TRUNK[1]) if r.status >= 200]
    assert not requests_to(out, D0, "CANCEL")


def test_a_registered_picker_is_reached_at_its_binding() -> None:
    net, bob_devs = setup()
    net.bind(bob_devs[0], 31020)
    call, _, _ = ring_1000(net)
    out = dial(net, "*81000", bob_devs)
    assert [r.status for r in responses_to(out, PICKER) if r.status >= 200] == [487]
    (offered,) = requests_to(out, 31020, "INVITE")
    assert offered.call_id == call.call_id and not requests_to(out, PICKER, "INVITE")


def test_replaces_with_tags_of_no_early_dialog_is_481() -> None:
    """Regression: only the Call-ID and from-tag were checked, so a Replaces naming another
    dialog of the call (a to-tag no rung device gave) took it all the same (RFC 3891: 481)."""
    net, bob_devs = setup()
    call, _, _ = ring_1000(net)
    from_tag = call.from_.tag
    for replaces in (f"{call.call_id};to-tag=nosuchtag;from-tag={from_tag}",
                     f"{call.call_id};to-tag=d0;from-tag=",
                     f"{call.call_id};to-tag={from_tag};from-tag=d0"):  # swapped
        out = dial(net, "*81000", bob_devs, replaces=replaces)
        finals = [r.status for r in responses_to(out, PICKER) if r.status >= 200]
        assert finals == [481], replaces
        assert not [r for r in requests_to(out, PICKER, "INVITE") if r.call_id == call.call_id]
        assert not requests_to(out, D0, "CANCEL")
    # the tag device 1 gave its early dialog names the call: picked up
    out = dial(net, "*81000", bob_devs, replaces=f"{call.call_id};to-tag=d1;from-tag={from_tag};early-only")
    assert [r.call_id for r in requests_to(out, PICKER, "INVITE")] == [call.call_id]
