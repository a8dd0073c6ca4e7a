"""End-to-end: the forking proxy rings the right devices (SPEC "Incoming calls" / "Outgoing calls").

Every device is a SIPp UAS registered from its own port (scenarios/dev_*.xml), every caller a
SIPp UAC answering the 407 (scenarios/call_*.xml); each keeps a message trace, so a test
asserts on what each device saw. Depends only on the harness and the SIPp binary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    Device,
    Server,
    SippPeer,
    Traced,
    add_accounts,
    admin,
    configure,
    free_port,
    history,
    one_call,
    place_call,
    register,
    run_sipp,
    start_device,
)

COMPLETED_ELSEWHERE = re.compile(r'SIP;\s*cause=200;\s*text="Call completed elsewhere"')
BUSY_EVERYWHERE = re.compile(r'SIP;\s*cause=600;\s*text="Busy Everywhere"')


class Peers:
    """The SIPp peers of one test; anything still running at the end is killed by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.all: list[SippPeer] = []

    def device(self, server: Server, device: Device, scenario: str, **kw: object) -> SippPeer:
        peer = start_device(server, device, scenario, self.workdir, **kw)  # type: ignore[arg-type]
        self.all.append(peer)
        return peer

    def call(self, server: Server, device: Device, number: str, scenario: str, **kw: object) -> SippPeer:
        peer = place_call(server, device, number, scenario, self.workdir, **kw)  # type: ignore[arg-type]
        self.all.append(peer)
        return peer

    def report(self, server: Server) -> str:
        return "\n".join(p.describe() for p in self.all) + "\n[server log]\n" + server.log()[-3000:]

    def stop(self) -> None:
        for p in self.all:
            p.stop()


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    ps = Peers(tmp_path / "peers")
    try:
        yield ps
    finally:
        ps.stop()


@pytest.fixture
def accounts(server: Server) -> dict[str, list[Device]]:
    """Alice (1000) with two devices, Bob (1001) and Carol (1002) with one each."""
    made = add_accounts(server, [("1000", "Alice", 2), ("1001", "Bob", 1), ("1002", "Carol", 1)])
    return {"alice": made["1000"], "bob": made["1001"], "carol": made["1002"]}


def expect_ok(peers: Peers, server: Server, *ps: SippPeer, timeout: float = 15) -> None:
    for p in ps:
        rc = p.wait(timeout)
        assert rc == 0, f"{p.name} failed\n{peers.report(server)}"


def invites(p: SippPeer) -> list[Traced]:
    return p.received("INVITE")


def never_rang(peers: Peers, server: Server, p: SippPeer) -> None:
    """A device that must not ring: no INVITE in its trace and its scenario never completed."""
    assert not invites(p), f"{p.name} got an INVITE\n{peers.report(server)}"
    assert p.running(), f"{p.name} ended: it took a call\n{peers.report(server)}"
    p.stop()


def identity(msg: Traced) -> str:
    return f"From: {msg.header('From')} | PAI: {msg.header('P-Asserted-Identity')}"


# ------------------------------------------------------------------ ring all


def test_ring_all_first_answer_wins_other_cancelled_completed_elsewhere(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    bob = accounts["bob"][0]
    answers = peers.device(server, a1, "dev_answer.xml", name="alice1")
    rings = peers.device(server, a2, "dev_cancel_elsewhere.xml", name="alice2")
    caller = peers.call(server, bob, "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, answers, rings)

    for dev in (answers, rings):
        [inv] = invites(dev)
        assert inv.header("Record-Route"), "the proxy must Record-Route so BYE passes through it"
        assert "Bob" in (inv.header("From") or "") and "sip:1001@" in (inv.header("From") or "")
        assert "sip:1001@" in (inv.header("P-Asserted-Identity") or "")
    [cancel] = rings.received("CANCEL")
    assert COMPLETED_ELSEWHERE.search(cancel.header("Reason") or ""), cancel.text
    # The media-less call is established and torn down through the proxy.
    assert answers.received("ACK") and answers.received("BYE")
    assert len(caller.received(180)) == 2, "one 180 per ringing branch"
    assert len(caller.received(200)) >= 2  # 200 to the INVITE and to the BYE
    # history: one row per account; the device that rang and lost records nothing extra
    alice = one_call(history(server, "1000", 1))
    assert (alice["direction"], alice["outcome"], alice["device"]) == ("in", "answered", a1.auth_username)
    assert (alice["other_number"], alice["other_name"]) == ("1001", "Bob")
    assert alice["answered_at"] and alice["ended_at"] >= alice["answered_at"] >= alice["started_at"]
    bob_row = one_call(history(server, "1001", 1))
    assert (bob_row["direction"], bob_row["outcome"], bob_row["other_number"], bob_row["other_name"]) == (
        "out", "answered", "1000", "Alice")


def test_tcp_caller_rings_udp_devices(server: Server, accounts: dict[str, list[Device]], peers: Peers) -> None:
    a1, a2 = accounts["alice"]
    bob = accounts["bob"][0]
    answers = peers.device(server, a1, "dev_answer.xml", name="alice1")
    rings = peers.device(server, a2, "dev_cancel_elsewhere.xml", name="alice2")
    caller = peers.call(server, bob, "1000", "call_answered.xml", from_user="1001", transport="t1")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, answers, rings)
    [inv] = invites(answers)
    assert (inv.header("Via") or "").startswith("SIP/2.0/UDP")
    # RFC 5658: one Record-Route per side when the transport changes.
    rr = ",".join(inv.headers("Record-Route"))
    assert "transport=tcp" in rr.lower(), rr
    assert answers.received("BYE")


def test_late_second_answer_is_acked_and_hung_up(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    """Two devices answer: the caller gets one 200; the proxy ACKs and BYEs the late one."""
    a1, a2 = accounts["alice"]
    winner = peers.device(server, a1, "dev_answer.xml", name="winner")
    late = peers.device(server, a2, "dev_answer_late.xml", name="late")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, winner, late)
    answers = {m.header("To") for m in caller.received(200) if "INVITE" in (m.header("CSeq") or "")}
    assert len(answers) == 1, f"the caller saw 200s from several devices: {answers}"
    [bye] = late.received("BYE")
    assert COMPLETED_ELSEWHERE.search(bye.header("Reason") or ""), bye.text
    assert late.received("ACK")


def test_device_with_two_bindings_rings_on_both(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    """The same softphone on two computers: both ring, one answers, the other is cancelled."""
    a1 = accounts["alice"][0]
    answers = peers.device(server, a1, "dev_answer.xml", name="pc1")
    rings = peers.device(server, a1, "dev_cancel_elsewhere.xml", name="pc2")
    rows = server.wait_bindings("1000", 2)
    assert {r["auth_username"] for r in rows} == {a1.auth_username}
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, answers, rings)


def test_call_waiting_off_device_does_not_ring_while_account_in_a_call(
    server: Server, peers: Peers
) -> None:
    made = add_accounts(server, [("1000", "Alice", 3), ("1001", "Bob", 1), ("1002", "Carol", 1)])
    desk, soft, tablet = made["1000"]
    configure(server, "device", "update", "1000", str(soft.position), "--no-call-waiting")
    bob = peers.device(server, made["1001"][0], "dev_answer.xml", name="bob")
    n_soft = peers.device(server, soft, "dev_never.xml", name="soft-no-cw")
    t_tablet = peers.device(server, tablet, "dev_answer.xml", name="tablet-cw")
    # Alice is on the phone from her deskphone (3 s) ...
    first = peers.call(server, desk, "1001", "call_answered_long.xml", from_user="1000", name="alice-out",
                       background=True)
    deadline = time.monotonic() + 5
    while not bob.received("ACK") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bob.received("ACK"), peers.report(server)
    # ... when Carol calls her: only the device with call waiting on rings.
    second = peers.call(server, made["1002"][0], "1000", "call_answered.xml", from_user="1002", name="carol")
    assert second.returncode == 0, peers.report(server)
    assert not bob.received("BYE"), "the second call must overlap the first"
    expect_ok(peers, server, first, bob, t_tablet)
    never_rang(peers, server, n_soft)
    rows = {r["direction"]: r for r in history(server, "1000", 2)}
    assert (rows["out"]["outcome"], rows["out"]["device"], rows["out"]["other_number"]) == ("answered", "1000", "1001")
    assert (rows["in"]["outcome"], rows["in"]["device"], rows["in"]["other_number"]) == (
        "answered", tablet.auth_username, "1002")


# ------------------------------------------------------------------ ordered and exclusive


def test_ordered_stages_earlier_keep_ringing_order0_and_disabled_never_ring(
    server: Server, peers: Peers
) -> None:
    made = add_accounts(server, [("1000", "Alice", 4), ("1001", "Bob", 1)])
    devs, bob = made["1000"], made["1001"][0]
    first, second, zero, disabled = devs
    configure(server, "account", "update", "1000", "--stage-seconds", "1", "--no-answer-seconds", "10")

    async def orders(a: Any) -> None:
        await a.update_device("1000", second.position, ring_order=2)
        await a.update_device("1000", zero.position, ring_order=0)
        await a.update_device("1000", disabled.position, enabled=False)

    admin(server, orders)

    d_first = peers.device(server, first, "dev_cancel_elsewhere.xml", name="order1")
    d_second = peers.device(server, second, "dev_answer.xml", name="order2")
    d_zero = peers.device(server, zero, "dev_never.xml", name="order0")
    d_disabled = peers.device(server, disabled, "dev_never.xml", name="disabled")
    server.wait_bindings("1000", 4)
    caller = peers.call(server, bob, "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, d_first, d_second)

    [inv1] = invites(d_first)
    [inv2] = invites(d_second)
    assert inv2.at - inv1.at >= 0.9, f"order 2 joined {inv2.at - inv1.at:.2f}s after order 1"
    [cancel] = d_first.received("CANCEL")
    assert cancel.at > inv2.at, "order 1 keeps ringing when order 2 joins"
    never_rang(peers, server, d_zero)
    never_rang(peers, server, d_disabled)


def test_exclusive_selected_device_only_then_others_when_it_unregisters(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    desk, soft = accounts["alice"]
    bob = accounts["bob"][0]
    configure(server, "account", "update", "1000", "--ring-mode", "exclusive",
              "--selected-device", str(soft.position))

    # The selected device is registered: only it rings.
    d_desk = peers.device(server, desk, "dev_never.xml", name="desk-1")
    d_soft = peers.device(server, soft, "dev_answer.xml", name="soft-1")
    caller = peers.call(server, bob, "1000", "call_answered.xml", from_user="1001", name="caller-1")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, d_soft)
    never_rang(peers, server, d_desk)

    # The user logs out of the selected device: the others ring instead.
    proc = run_sipp("dev_unregister.xml", server, service="1000", auth=(soft.auth_username, soft.secret),
                    local_port=d_soft.port, timeout=10, workdir=peers.workdir)
    assert proc.returncode == 0, proc.stdout  # type: ignore[union-attr]
    server.wait_bindings("1000", 1)
    d_desk2 = peers.device(server, desk, "dev_answer.xml", name="desk-2")
    caller2 = peers.call(server, bob, "1000", "call_answered.xml", from_user="1001", name="caller-2")
    assert caller2.returncode == 0, peers.report(server)
    expect_ok(peers, server, d_desk2)


# ------------------------------------------------------------------ busy and decline


def test_one_device_busy_the_other_still_rings_and_answers(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    busy = peers.device(server, a1, "dev_busy.xml", name="busy")
    answers = peers.device(server, a2, "dev_answer.xml", name="answers")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, busy, answers)
    assert not busy.received("CANCEL"), "a device that said 486 is not cancelled again"
    assert not caller.received(486)


def test_all_devices_busy_gives_486(server: Server, accounts: dict[str, list[Device]], peers: Peers) -> None:
    a1, a2 = accounts["alice"]
    b1 = peers.device(server, a1, "dev_busy.xml", name="busy1")
    b2 = peers.device(server, a2, "dev_busy.xml", name="busy2")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_busy.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, b1, b2)
    assert one_call(history(server, "1000", 1))["outcome"] == "busy"
    assert one_call(history(server, "1001", 1))["outcome"] == "busy"


def test_all_devices_busy_forwards_to_busy_number(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    configure(server, "account", "update", "1000", "--forward-busy", "1002")
    b1 = peers.device(server, a1, "dev_busy.xml", name="busy1")
    b2 = peers.device(server, a2, "dev_busy.xml", name="busy2")
    carol = peers.device(server, accounts["carol"][0], "dev_answer.xml", name="carol")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, b1, b2, carol)
    [inv] = invites(carol)
    assert "1000" in (inv.header("Diversion") or "") and "user-busy" in (inv.header("Diversion") or ""), inv.text
    assert inv.headers("History-Info"), inv.text
    assert "Bob" in (inv.header("From") or ""), "the forwarded call still shows the real caller"


def test_decline_everywhere_ends_the_call_on_every_device(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    configure(server, "account", "update", "1000", "--decline", "everywhere")
    declines = peers.device(server, a1, "dev_decline.xml", name="declines")
    other = peers.device(server, a2, "dev_cancel_everywhere.xml", name="other")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_decline.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, declines, other)
    [cancel] = other.received("CANCEL")
    assert BUSY_EVERYWHERE.search(cancel.header("Reason") or ""), cancel.text


def test_decline_device_only_drops_that_device(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    configure(server, "account", "update", "1000", "--decline", "device")
    declines = peers.device(server, a1, "dev_decline.xml", name="declines")
    answers = peers.device(server, a2, "dev_answer.xml", name="answers")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, declines, answers)
    assert not caller.received(603)


# ------------------------------------------------------------------ no answer, forwarding, cancel


def test_no_answer_forwards_to_another_account(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    configure(server, "account", "update", "1000", "--no-answer-seconds", "1", "--forward-no-answer", "1002")
    r1 = peers.device(server, a1, "dev_cancel_missed.xml", name="rings1")
    r2 = peers.device(server, a2, "dev_cancel_missed.xml", name="rings2")
    carol = peers.device(server, accounts["carol"][0], "dev_answer.xml", name="carol")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, r1, r2, carol)
    [inv_alice] = invites(r1)
    [inv] = invites(carol)
    assert inv.at - inv_alice.at >= 0.9, "forwarded only after no_answer_seconds"
    assert "no-answer" in (inv.header("Diversion") or ""), inv.text
    assert inv.headers("History-Info"), inv.text
    alice = one_call(history(server, "1000", 1))
    assert (alice["outcome"], alice["forwarded_to"], alice["forward_reason"]) == ("forwarded", "1002", "no-answer")
    carol_row = one_call(history(server, "1002", 1))
    assert (carol_row["outcome"], carol_row["other_number"], carol_row["device"]) == ("answered", "1001", "1002")


def test_no_answer_without_forward_gives_480(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    configure(server, "account", "update", "1000", "--no-answer-seconds", "1")
    r1 = peers.device(server, a1, "dev_cancel_missed.xml", name="rings1")
    r2 = peers.device(server, a2, "dev_cancel_missed.xml", name="rings2")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_unavailable.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, r1, r2)


def test_unconditional_forward_skips_the_devices(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    configure(server, "account", "update", "1000", "--forward-unconditional", "1002")
    n1 = peers.device(server, a1, "dev_never.xml", name="never1")
    n2 = peers.device(server, a2, "dev_never.xml", name="never2")
    carol = peers.device(server, accounts["carol"][0], "dev_answer.xml", name="carol")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, carol)
    [inv] = invites(carol)
    assert "unconditional" in (inv.header("Diversion") or ""), inv.text
    never_rang(peers, server, n1)
    never_rang(peers, server, n2)
    alice = one_call(history(server, "1000", 1))
    assert (alice["outcome"], alice["forwarded_to"], alice["forward_reason"]) == (
        "forwarded", "1002", "unconditional")


def test_caller_cancel_reaches_every_device_without_completed_elsewhere(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    a1, a2 = accounts["alice"]
    r1 = peers.device(server, a1, "dev_cancel_missed.xml", name="rings1")
    r2 = peers.device(server, a2, "dev_cancel_missed.xml", name="rings2")
    caller = peers.call(server, accounts["bob"][0], "1000", "call_cancel.xml", from_user="1001")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, r1, r2)
    for dev in (r1, r2):
        [cancel] = dev.received("CANCEL")
        assert not COMPLETED_ELSEWHERE.search(cancel.text), cancel.text
    alice = one_call(history(server, "1000", 1))
    assert (alice["outcome"], alice["device"], alice["answered_at"]) == ("missed", None, None)
    assert one_call(history(server, "1001", 1))["outcome"] == "no answer"
    seen = server.cli_json("history", "1000", "--missed", "--mark-seen")
    assert isinstance(seen, dict) and seen["missed_unseen"] == 0 and len(seen["calls"]) == 1


# ------------------------------------------------------------------ outgoing


def test_outgoing_callee_sees_account_number_and_name_not_device(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    second = accounts["alice"][1]
    assert second.auth_username == "1000_2"
    register(server, second, free_port(), workdir=peers.workdir)
    bob = peers.device(server, accounts["bob"][0], "dev_answer.xml", name="bob")
    caller = peers.call(server, second, "1001", "call_answered.xml", from_user="1000_2")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, bob)
    [inv] = invites(bob)
    for name in ("From", "P-Asserted-Identity"):
        value = inv.header(name) or ""
        assert '"Alice"' in value and re.search(r"sip:1000@", value), identity(inv)
        assert "1000_2" not in value, identity(inv)


def test_external_number_goes_to_trunk_with_custom_cli(
    server: Server, accounts: dict[str, list[Device]], peers: Peers, tmp_path: Path
) -> None:
    gw_port = free_port()
    server.cli("account", "update", "1000", "--cli", "0612345678")
    configure(server, "trunk", "add", "gw", "--host", "127.0.0.1", "--port", str(gw_port))
    gateway = _gateway(server, peers, gw_port)
    second = accounts["alice"][1]
    caller = peers.call(server, second, "0033123456789", "call_answered.xml", from_user="1000_2")
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, gateway)
    [inv] = invites(gateway)
    assert inv.first_line.startswith("INVITE sip:0033123456789@127.0.0.1:"), inv.first_line
    for name in ("From", "P-Asserted-Identity"):
        value = inv.header(name) or ""
        assert "sip:0612345678@" in value and "1000_2" not in value, identity(inv)
    assert gateway.received("BYE")
    out = one_call(history(server, "1000", 1))
    assert (out["direction"], out["outcome"], out["device"], out["other_number"]) == (
        "out", "answered", "1000_2", "0033123456789")


def test_external_number_without_trunk_is_404_with_a_reason(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    caller = peers.call(server, accounts["alice"][0], "0033123456789", "call_notfound.xml", from_user="1000")
    assert caller.returncode == 0, peers.report(server)
    [final] = caller.received(404)
    assert len(final.reason_phrase) > len("Not Found"), f"a clear reason phrase: {final.first_line}"


def test_call_from_trunk_to_a_did_is_trusted_and_rings_the_account(
    server: Server, accounts: dict[str, list[Device]], peers: Peers
) -> None:
    trunk_port = free_port()
    server.cli("account", "update", "1000", "--add-did", "0311234567")
    configure(server, "trunk", "add", "gw", "--host", "127.0.0.1", "--port", str(trunk_port))
    a1, a2 = accounts["alice"]
    answers = peers.device(server, a1, "dev_answer.xml", name="alice1")
    rings = peers.device(server, a2, "dev_cancel_elsewhere.xml", name="alice2")
    outsider = Device("pstn", 0, "nobody", "nothing")
    caller = peers.call(server, outsider, "0311234567", "call_from_trunk.xml", from_user="0611111111",
                        local_port=trunk_port)
    assert caller.returncode == 0, peers.report(server)
    expect_ok(peers, server, answers, rings)
    assert not caller.received(407)
    [inv] = invites(answers)
    assert "0611111111" in (inv.header("From") or "")


def _gateway(server: Server, peers: Peers, port: int) -> SippPeer:
    """A SIPp UAS standing for the PSTN gateway on `port` (not registered: a configured trunk)."""
    dummy = Device("gw", 0, "gw", "")
    return peers.device(server, dummy, "dev_answer.xml", name="gateway", registered=False, port=port)


# ------------------------------------------------------------------ TCP device (baresip)


def test_udp_caller_rings_a_tcp_device(
    server: Server, accounts: dict[str, list[Device]], peers: Peers, tmp_path: Path
) -> None:
    """SIPp cannot keep a TCP registration open while it serves calls: the TCP device is baresip."""
    from .baresip import Baresip

    desk, soft = accounts["alice"]
    phone = Baresip(tmp_path / "baresip-tcp", server, "1000", soft.auth_username, soft.secret, transport="tcp")
    phone.start()
    try:
        phone.wait_registered()
        [binding] = server.wait_bindings("1000", 1)
        assert binding["transport"] == "tcp", binding
        rings = peers.device(server, desk, "dev_cancel_elsewhere.xml", name="udp-desk")
        caller = peers.call(server, accounts["bob"][0], "1000", "call_answered.xml", from_user="1001",
                            background=True)
        phone.wait_event("CALL_INCOMING", timeout=10)
        phone.accept()
        phone.wait_event("CALL_ESTABLISHED", timeout=10)
        expect_ok(peers, server, caller, rings)
        phone.wait_event("CALL_CLOSED", timeout=10)  # the caller's BYE reached it over TCP
        [inv] = invites(rings)
        rr = ",".join(inv.headers("Record-Route")).lower()
        assert (inv.header("Via") or "").startswith("SIP/2.0/UDP"), inv.text
        assert rr, inv.text
    finally:
        phone.stop()
