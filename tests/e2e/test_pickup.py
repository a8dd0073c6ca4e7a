"""Directed pickup with real peers: 1000 rings on two SIPp devices, 1001 dials `*81000`:
the call comes to 1001's device (answer-after=0), the caller gets the 200 and the BYE flow
runs through the proxy, and both of 1000's devices get CANCEL "Call completed elsewhere".
With nothing ringing, the pickup code gets a clear 480."""

from __future__ import annotations

import time
from pathlib import Path

from .harness import Server, SippPeer, add_accounts, history, place_call, start_device


def _wait_ringing(devices: list[SippPeer], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(d.trace.exists() and "SIP/2.0 180 Ringing" in d.trace.read_text(errors="replace") for d in devices):
            return True
        time.sleep(0.05)
    return False


def test_star8_picks_up_a_call_ringing_on_both_devices(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 2), ("1001", "Bob", 1), ("1002", "Carol", 1)])
    alice, bob, carol = made["1000"], made["1001"][0], made["1002"][0]
    devs = [start_device(server, d, "dev_cancel_elsewhere.xml", tmp_path / f"d{i}", timeout=30)
            for i, d in enumerate(alice)]
    picker_socket = start_device(server, bob, "pickup_answer.xml", tmp_path / "picker", timeout=30)
    caller = place_call(server, carol, "1000", "call_answered.xml", tmp_path / "caller", background=True,
                        timeout=30)
    try:
        assert _wait_ringing(devs), "\n".join(d.describe() for d in devs) + server.log()[-3000:]
        dial = place_call(server, bob, "*81000", "pickup_dial.xml", tmp_path / "dial", name="dial")
        assert dial.returncode == 0, dial.describe()
        finals = [m for m in dial.messages() if not m.sent and (m.status or 0) >= 200]
        assert [m.status for m in finals if m.status != 407][:1] == [487], dial.describe()
        assert caller.wait(30) == 0, caller.describe() + server.log()[-3000:]
        assert picker_socket.wait(15) == 0, picker_socket.describe()
        for d in devs:
            assert d.wait(15) == 0, d.describe()
            (cancel,) = d.received("CANCEL")
            assert cancel.header("Reason") == 'SIP;cause=200;text="Call completed elsewhere"'
        assert len(caller.received(200)) >= 2  # the INVITE's (from the picker) and the BYE's
        assert picker_socket.received("BYE")
        # not a missed call for Alice; an answered one for Bob
        alice_rows = [r for r in history(server, "1000", 1) if r["direction"] == "in"]
        assert [r["outcome"] for r in alice_rows] == ["answered elsewhere"]
        bob_rows = [r for r in history(server, "1001", 1) if r["direction"] == "in"]
        assert [(r["outcome"], r["device"]) for r in bob_rows] == [("answered", bob.auth_username)]
    finally:
        for peer in (*devs, picker_socket, caller):
            peer.stop()


def test_pickup_with_nothing_ringing_is_480(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1)])
    dial = place_call(server, made["1001"][0], "*81000", "pickup_dial.xml", tmp_path / "dial", name="dial")
    assert dial.returncode == 0, dial.describe()
    (final,) = [m for m in dial.messages() if not m.sent and (m.status or 0) >= 200 and m.status != 407]
    assert final.status == 480 and "nothing is ringing at 1000" in final.reason_phrase
