"""The forking proxy, sans-IO: ring plans executed, best response, CANCEL reasons, forwarding."""

from __future__ import annotations

from dataclasses import replace

from onenumber.routing.model import DeclineMode, Forwarding, RingMode

from .sipnet import TRUNK, Net, answer_auth, invite, make_account, reply, requests_to, responses_to

CALLER = ("127.0.0.1", 30000)
D0, D1, D2 = 31000, 31002, 31004  # device ports


def two_devices(**account_kw: object) -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 2, **account_kw)
    bob, bob_devs = make_account("1001", "Bob", 1)
    from onenumber.settings import Trunk

    net = Net([alice, bob], devs + bob_devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1)
    return net, devs


def test_ring_all_first_answer_wins_and_others_cancelled_elsewhere() -> None:
    net, _ = two_devices()
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert [r.status for r in responses_to(out, TRUNK[1])] == [100]
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    assert inv0.headers.get("record-route") and int(inv0.headers.get("max-forwards")) == 69
    out = net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    out += net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [180, 180]
    out = net.send(reply(inv0, 200, "OK", tag="d0", contact="sip:1000@127.0.0.1:31000"), ("127.0.0.1", D0))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [200]
    cancels = requests_to(out, D1, "CANCEL")
    assert len(cancels) == 1
    assert cancels[0].headers.get("reason") == 'SIP;cause=200;text="Call completed elsewhere"'
    assert not requests_to(out, D0, "CANCEL")
    assert net.core.dialogs.call_state("1000").active_calls == 1


def test_caller_cancel_has_no_completed_elsewhere_reason() -> None:
    net, _ = two_devices()
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    cancel = bytes(req).decode().replace("INVITE sip", "CANCEL sip", 1).replace("1 INVITE", "1 CANCEL")
    cancel = cancel.split("Content-Type")[0] + "Content-Length: 0\r\n\r\n"
    out = net.send(cancel.encode(), TRUNK)
    statuses = sorted(r.status for r in responses_to(out, TRUNK[1]))
    assert statuses == [200, 487]
    for port in (D0, D1):
        (c,) = requests_to(out, port, "CANCEL")
        assert c.headers.get("reason") is None


def test_busy_branch_drops_and_other_answers_then_all_busy_gives_486() -> None:
    net, _ = two_devices()
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    out = net.send(reply(inv0, 486, "Busy Here", tag="d0"), ("127.0.0.1", D0))
    assert [r.status for r in responses_to(out, TRUNK[1])] == []
    assert requests_to(out, D0, "ACK")  # the transaction ACKs the 486
    out = net.send(reply(inv1, 486, "Busy Here", tag="d1"), ("127.0.0.1", D1))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [486]


def test_busy_forward_to_another_account_with_diversion() -> None:
    net, _devs = two_devices(forwarding=Forwarding(busy="1001"))
    net.bind(net.directory.devices("1001")[0], D2)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 486, "Busy Here", tag="d0"), ("127.0.0.1", D0))
    out = net.send(reply(inv1, 486, "Busy Here", tag="d1"), ("127.0.0.1", D1))
    (fwd,) = requests_to(out, D2, "INVITE")
    assert "reason=user-busy" in (fwd.headers.get("diversion") or "")
    assert fwd.headers.get_all("history-info")
    assert fwd.uri.startswith("sip:1001@")  # the contact of 1001's device is the R-URI... of the branch
    assert not responses_to(out, TRUNK[1])


def test_decline_everywhere_stops_the_call_and_device_mode_drops_only_the_branch() -> None:
    net, _ = two_devices(decline=DeclineMode.EVERYWHERE)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.send(reply(inv0, 603, "Decline", tag="d0"), ("127.0.0.1", D0))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [603]
    (c,) = requests_to(out, D1, "CANCEL")
    assert c.headers.get("reason") == 'SIP;cause=600;text="Busy Everywhere"'

    net, _ = two_devices(decline=DeclineMode.DEVICE)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    out = net.send(reply(inv0, 603, "Decline", tag="d0"), ("127.0.0.1", D0))
    assert not responses_to(out, TRUNK[1]) and not requests_to(out, D1, "CANCEL")
    out = net.send(reply(inv1, 200, "OK", tag="d1", contact="sip:x@127.0.0.1:31002"), ("127.0.0.1", D1))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [200]


def test_ordered_stages_join_and_earlier_keep_ringing() -> None:
    net, devs = two_devices(stage_seconds=5, no_answer_seconds=20)
    net.directory.devices_by_account["1000"][1] = replace(devs[1], ring_order=2)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    assert not requests_to(out, D1, "INVITE")
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    out = net.advance(5.0)
    assert requests_to(out, D1, "INVITE")
    assert not requests_to(out, D0, "CANCEL")


def test_no_answer_forwards_after_timeout_and_cancels_without_reason() -> None:
    net, _ = two_devices(no_answer_seconds=10, forwarding=Forwarding(no_answer="1001"))
    net.bind(net.directory.devices("1001")[0], D2)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.advance(10.0)
    for port in (D0, D1):
        (c,) = requests_to(out, port, "CANCEL")
        assert c.headers.get("reason") is None
    (fwd,) = requests_to(out, D2, "INVITE")
    assert "reason=no-answer" in (fwd.headers.get("diversion") or "")


def test_no_answer_without_forward_gives_480() -> None:
    net, _ = two_devices(no_answer_seconds=10)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.advance(10.0)
    assert [r.status for r in responses_to(out, TRUNK[1])] == [480]


def test_exclusive_rings_only_selected() -> None:
    net, _ = two_devices(ring_mode=RingMode.EXCLUSIVE, selected_device=1)
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert requests_to(out, D1, "INVITE") and not requests_to(out, D0, "INVITE")


def test_late_second_answer_gets_ack_and_bye() -> None:
    net, _ = two_devices()
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    net.send(reply(inv0, 200, "OK", tag="d0", contact="sip:a@127.0.0.1:31000"), ("127.0.0.1", D0))
    out = net.send(reply(inv1, 200, "OK", tag="d1", contact="sip:b@127.0.0.1:31002"), ("127.0.0.1", D1))
    assert [m.method for m in requests_to(out, D1)] == ["ACK", "BYE"]
    assert not responses_to(out, TRUNK[1])


def test_outgoing_call_from_device_shows_account_identity_and_uses_trunk_cli() -> None:
    alice, devs = make_account("1000", "Alice", 2, custom_cli="0612345678")
    from onenumber.settings import Trunk

    net = Net([alice], devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    phone = ("127.0.0.1", 32000)
    req = invite("0033123456", phone, from_user="1000_2")
    out = net.send(req, phone)
    (challenge,) = responses_to(out, phone[1])
    assert challenge.status == 407
    auth = answer_auth(challenge, req, "1000_2", devs[1].secret)
    req2 = invite("0033123456", phone, from_user="1000_2", call_id=req.call_id, auth=auth, cseq=2)
    out = net.send(req2, phone)
    (fwd,) = requests_to(out, TRUNK[1], "INVITE")
    assert "0612345678" in (fwd.headers.get("from") or "") and '"Alice"' in (fwd.headers.get("from") or "")
    assert "0612345678" in (fwd.headers.get("p-asserted-identity") or "")
    assert "1000_2" not in bytes(fwd).decode().split("\r\n\r\n")[0].replace("Contact: <sip:1000_2", "")
    assert fwd.headers.get("proxy-authorization") is None


def test_external_call_without_trunk_is_404_with_reason() -> None:
    alice, devs = make_account("1000", "Alice", 1)
    net = Net([alice], devs)
    phone = ("127.0.0.1", 32000)
    req = invite("0033123456", phone, from_user="1000")
    (challenge,) = responses_to(net.send(req, phone), phone[1])
    auth = answer_auth(challenge, req, "1000", devs[0].secret)
    out = net.send(invite("0033123456", phone, from_user="1000", call_id=req.call_id, auth=auth, cseq=2), phone)
    statuses = [r for r in responses_to(out, phone[1]) if r.status >= 200]
    assert statuses[0].status == 404 and "trunk" in statuses[0].reason


def test_in_dialog_bye_is_relayed_and_ends_the_call() -> None:
    net, _ = two_devices()
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    out = net.send(reply(inv0, 200, "OK", tag="d0", contact="sip:1000@127.0.0.1:31000"), ("127.0.0.1", D0))
    ok = responses_to(out, TRUNK[1])[0]
    rr = ok.headers.get_all("record-route")
    bye = (
        f"BYE sip:1000@127.0.0.1:31000 SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK[0]}:{TRUNK[1]};branch=z9hG4bKbye1;rport\r\n"
        f"Route: {rr[0]}\r\nMax-Forwards: 70\r\nFrom: {ok.headers.get('from')}\r\nTo: {ok.headers.get('to')}\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    out = net.send(bye.encode(), TRUNK)
    (fwd,) = requests_to(out, D0, "BYE")
    assert fwd.headers.get("route") is None
    out = net.send(reply(fwd, 200, "OK"), ("127.0.0.1", D0))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [200]
    assert net.core.dialogs.call_state("1000").active_calls == 0


def test_a_device_calling_its_own_number_rings_the_other_devices_only() -> None:
    net, devs = two_devices()
    phone = ("127.0.0.1", D1)
    req = invite("1000", phone, from_user="1000_2")
    (challenge,) = responses_to(net.send(req, phone), phone[1])
    auth = answer_auth(challenge, req, "1000_2", devs[1].secret)
    out = net.send(invite("1000", phone, from_user="1000_2", call_id=req.call_id, auth=auth, cseq=2), phone)
    assert requests_to(out, D0, "INVITE") and not requests_to(out, D1, "INVITE")


def test_max_forwards_zero_gets_483_and_a_looped_request_gets_482() -> None:
    net, _ = two_devices()
    req = invite("1000", TRUNK)
    req.headers.set("Max-Forwards", "0")
    (r,) = responses_to(net.send(req, TRUNK), TRUNK[1])
    assert r.status == 483
    out = net.send(invite("1000", TRUNK), TRUNK)
    forwarded = requests_to(out, D0, "INVITE")[0]
    # the same request coming back to us unchanged (e.g. a trunk pointing at us) is a loop:
    # our own Via carries the hash of what it was when it left
    forwarded.uri = "sip:1000@127.0.0.1:25060"
    out = net.send(forwarded, TRUNK)
    assert [m.status for m in responses_to(out, TRUNK[1])] == [482]
    assert not requests_to(out, D0, "INVITE")


def test_timer_c_ends_a_call_nobody_answers_even_without_no_answer_timeout() -> None:
    net, _ = two_devices(no_answer_seconds=600)
    out = net.send(invite("1000", TRUNK), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.advance(181.0)
    assert requests_to(out, D0, "CANCEL") and requests_to(out, D1, "CANCEL")
    statuses = [r.status for r in responses_to(out, TRUNK[1])]
    assert statuses and set(statuses) == {408}  # (retransmitted: the test's trunk never ACKs)


def test_dnd_answers_busy_without_ringing() -> None:
    net, _ = two_devices(dnd=True)
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert not requests_to(out, D0, "INVITE") and not requests_to(out, D1, "INVITE")
    assert [r.status for r in responses_to(out, TRUNK[1])] == [100, 486]


def test_exclusive_device_whose_connection_closes_while_ringing_falls_back_at_once() -> None:
    """Issue 8's instant fallback: the selected web phone's socket closes while only it rings;
    its binding goes and the call rings the other devices now, not after a timeout."""
    from onenumber.routing.model import DeviceKind

    alice, devs = make_account("1000", "Alice", 2, ring_mode=RingMode.EXCLUSIVE, selected_device=1)
    from onenumber.settings import Trunk

    devs[1] = replace(devs[1], kind=DeviceKind.WEBPHONE)
    net = Net([alice], devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1, transport="ws", flow="ws-7")
    net.fake_relay()
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert not requests_to(out, D0, "INVITE")
    (web,) = [m for s, m in out if s.conn == "ws-7"]
    net.router.on_flow_closed("ws-7", net.now)
    out = net.drain()
    assert requests_to(out, D0, "INVITE"), "the deskphone rings as soon as the web phone is gone"
    assert net.location.get("1000") and all(b.flow is None for b in net.location.get("1000"))
    assert web is not None


def test_no_answer_forward_to_voicemail_rings_the_voicemail_service_never_a_trunk() -> None:
    from onenumber.sip.stack import Target

    net, _ = two_devices(forwarding=Forwarding(no_answer="voicemail"), no_answer_seconds=5)
    net.core.proxy.voicemail = Target("udp", "127.0.0.1", 39000)
    out = net.send(invite("1000", TRUNK), TRUNK)
    for port in (D0, D1):
        net.send(reply(requests_to(out, port, "INVITE")[0], 180, "Ringing", tag=f"t{port}"), ("127.0.0.1", port))
    out = net.advance(5.5)
    (vm,) = requests_to(out, 39000, "INVITE")[:1]
    assert vm.uri == "sip:1000@127.0.0.1:39000"  # the box is the account that forwarded
    assert "reason=no-answer" in (vm.headers.get("diversion") or "")
    assert not requests_to(out, TRUNK[1], "INVITE")


def test_forward_to_voicemail_without_the_service_is_a_clear_480() -> None:
    net, _ = two_devices(forwarding=Forwarding(unconditional="voicemail"))
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert not requests_to(out, TRUNK[1], "INVITE")
    (final,) = [r for r in responses_to(out, TRUNK[1]) if r.status >= 200]
    assert final.status == 480 and "voicemail" in final.reason


def test_the_access_number_from_a_device_reaches_its_own_box() -> None:
    from onenumber.sip.stack import Target

    alice, devs = make_account("1000", "Alice", 2, custom_cli="0612345678")
    net = Net([alice], devs)
    net.core.proxy.voicemail = Target("udp", "127.0.0.1", 39000)
    phone = ("127.0.0.1", 32000)
    req = invite("*98", phone, from_user="1000_2")
    (challenge,) = responses_to(net.send(req, phone), phone[1])
    auth = answer_auth(challenge, req, "1000_2", devs[1].secret)
    out = net.send(invite("*98", phone, from_user="1000_2", call_id=req.call_id, auth=auth, cseq=2), phone)
    (vm,) = requests_to(out, 39000, "INVITE")
    assert vm.uri == "sip:*98@127.0.0.1:39000"
    assert "<sip:1000@" in (vm.headers.get("from") or "")  # the account (the box), not the CLI or the device
