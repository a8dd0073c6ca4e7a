"""End-to-end with real phones: a baresip caller rings two baresip devices of one account.

One device answers, the other is cancelled; audio flows both ways (each phone plays a tone
and records what it hears); the caller hangs up and the BYE crosses the proxy. Depends on
the harness and the baresip driver (tests/e2e/baresip.py) only.
"""

from __future__ import annotations

import time
from pathlib import Path

from .baresip import Baresip, wav_peak
from .harness import Server, add_accounts, history, one_call

SILENCE = 500  # peak sample below this is silence (the tone peaks near 12000)


def test_baresip_call_rings_both_devices_one_answers_audio_flows(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 2), ("1001", "Bob", 1)])
    desk, soft = made["1000"]
    bob = made["1001"][0]
    phones = [
        Baresip(tmp_path / "desk", server, "1000", desk.auth_username, desk.secret, record=True),
        Baresip(tmp_path / "soft", server, "1000", soft.auth_username, soft.secret, transport="tcp"),
        Baresip(tmp_path / "bob", server, "1001", bob.auth_username, bob.secret, record=True),
    ]
    desk_phone, soft_phone, caller = phones
    try:
        for p in phones:
            p.start()
        for p in phones:
            p.wait_registered()
        server.wait_bindings("1000", 2)

        caller.dial(f"sip:1000@{server.address}")
        desk_phone.wait_event("CALL_INCOMING", timeout=10)
        soft_phone.wait_event("CALL_INCOMING", timeout=10)
        desk_phone.accept()
        caller.wait_event("CALL_ESTABLISHED", timeout=10)
        desk_phone.wait_event("CALL_ESTABLISHED", timeout=10)
        closed = soft_phone.wait_event("CALL_CLOSED", timeout=10)  # cancelled: answered elsewhere
        assert not any(e.get("type") == "CALL_ESTABLISHED" for e in soft_phone.events()), closed
        assert 'cause=200;text="Call completed elsewhere"' in soft_phone.log(tail=2000), "not a missed call"

        time.sleep(1.5)  # let audio flow both ways
        caller.hangup()
        desk_phone.wait_event("CALL_CLOSED", timeout=10)  # the BYE crossed the proxy
        caller.wait_event("CALL_CLOSED", timeout=10)
    finally:
        for p in phones:
            p.stop()

    alice = one_call(history(server, "1000", 1))
    assert (alice["outcome"], alice["device"], alice["other_number"]) == ("answered", desk.auth_username, "1001")
    assert alice["duration"] >= 1.0, alice
    bob_row = one_call(history(server, "1001", 1))
    assert (bob_row["direction"], bob_row["outcome"], bob_row["device"]) == ("out", "answered", bob.auth_username)

    for phone in (desk_phone, caller):
        wav = phone.recording_path()
        assert wav is not None, f"no recording in {phone.workdir}:\n{phone.log()}"
        assert wav_peak(wav) > SILENCE, f"{wav} is silent: no audio reached {phone.auth_user}"
