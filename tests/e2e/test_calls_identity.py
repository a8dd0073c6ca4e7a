"""Issue 6 end to end (§2, §3): what each side of a call sees through the proxy, with real peers.

- the caller's credentials for our realm are consumed: a SIPp caller and a baresip caller whose
  BYE carries them again; the callee's INVITE and BYE hold none of them (nor the device's auth
  username);
- the caller's responses carry its own From byte for byte; the callee sees the account's number
  and name; the callee's BYE reaches the caller with the caller's own From as its To.
"""

from __future__ import annotations

import re
from pathlib import Path

from .baresip import Baresip
from .harness import Server, Traced, add_accounts, place_call, start_device

REALM = 'realm="onenumber"'


def without_contact(msg: Traced) -> str:
    """The message minus its Contact (the device's own address, which it chose to show)."""
    return "\n".join(line for line in msg.text.split("\n") if not line.lower().startswith(("contact:", "m:")))


def ours(msg: Traced) -> list[str]:
    return [v for name in ("Proxy-Authorization", "Authorization") for v in msg.headers(name) if REALM in v]


def test_sipp_caller_bye_credentials_never_reach_the_callee(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 2)])
    bob2 = made["1001"][1]
    callee = start_device(server, made["1000"][0], "dev_answer.xml", tmp_path, name="alice")
    caller = place_call(server, bob2, "1000", "call_answered_creds.xml", tmp_path, from_user="1001_2")
    assert caller.returncode == 0, caller.describe() + server.log()[-3000:]
    assert callee.wait(15) == 0, callee.describe()
    sent_bye = [m for m in caller.messages() if m.sent and m.method == "BYE"]
    assert sent_bye and ours(sent_bye[0]), "the scenario must send its credentials in the BYE"
    [invite] = callee.received("INVITE")
    [bye] = callee.received("BYE")
    for msg in (invite, bye):
        assert ours(msg) == [], msg.text
        assert "1001_2" not in without_contact(msg), msg.text  # the device's auth username is nobody's business


def test_baresip_caller_bye_credentials_never_reach_the_callee(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 2)])
    bob2 = made["1001"][1]
    callee = start_device(server, made["1000"][0], "dev_answer.xml", tmp_path, name="alice")
    phone = Baresip(tmp_path / "bob", server, "1001", bob2.auth_username, bob2.secret)
    try:
        phone.start()
        phone.wait_registered()
        phone.dial(f"sip:1000@{server.address}")
        phone.wait_event("CALL_ESTABLISHED", timeout=10)
        phone.hangup()
        assert callee.wait(15) == 0, callee.describe() + "\n" + phone.log()
    finally:
        phone.stop()
    [invite] = callee.received("INVITE")
    [bye] = callee.received("BYE")
    for msg in (invite, bye):
        assert ours(msg) == [], msg.text
        assert "1001_2" not in without_contact(msg), msg.text


def test_caller_keeps_its_own_from_and_the_callee_bye_reaches_it_with_it(server: Server, tmp_path: Path) -> None:
    """Regression (issue 6 §3): 100/180/200 said `"Bob" <sip:1001@SERVER>` to a caller that sent
    `<sip:1001@SERVER:PORT>`; RFC 3261 wants the request's From back."""
    made = add_accounts(server, [("1000", "Alice", 2), ("1001", "Bob", 1)])
    alice2 = made["1000"][1]
    callee = start_device(server, made["1001"][0], "dev_answer_hangup.xml", tmp_path, name="bob")
    caller = place_call(server, alice2, "1001", "call_answered_callee_hangs_up.xml", tmp_path, from_user="1000_2")
    assert caller.returncode == 0, caller.describe() + server.log()[-3000:]
    assert callee.wait(15) == 0, callee.describe()
    [sent_invite] = [m for m in caller.messages() if m.sent and m.method == "INVITE" and "authentication"
                     not in m.text and m.header("Proxy-Authorization")]
    sent_from = sent_invite.header("From")
    assert sent_from and "1000_2" in sent_from
    for status in (100, 180, 200):
        for resp in caller.received(status):
            if resp.header("CSeq") and "INVITE" in (resp.header("CSeq") or ""):
                assert resp.header("From") == sent_from, (status, resp.text)
    [inv] = callee.received("INVITE")
    assert re.search(r'"Alice" <sip:1000@', inv.header("From") or ""), inv.text
    [bye] = caller.received("BYE")
    to = bye.header("To") or ""
    assert to.split(";tag=")[0] == sent_from.split(";tag=")[0], bye.text  # the caller's own From URI
    assert to.split(";tag=")[1] == sent_from.split(";tag=")[1]
