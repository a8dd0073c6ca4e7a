"""Voicemail through the server (issue 10), with real phones: a baresip caller leaves a message on
1000 (no device of 1000 can ring: its no-answer target is voicemail); a SIPp device of 1000
subscribed to its message-summary through the proxy sees no → yes (1/0) → no; 1000's second
device (baresip) dials *98 and deletes the message by DTMF. The history says `voicemail`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from onenumber.media.greeting import speak
from onenumber.media.wav import peak, read_wav, write_wav

from .baresip import Baresip
from .harness import Server, add_accounts, configure, free_port, history, one_call, run_sipp

GREETING = Path(__file__).resolve().parents[2] / "data" / "greeting-default.wav"


def _messages(server: Server, box: str) -> list[dict]:
    """The box's rows in the server's database (`onenumber voicemail list`)."""
    out = server.cli("voicemail", "list", box, "--json")
    return [{**row, "heard": bool(row["heard"]), "complete": bool(row["complete"])} for row in json.loads(out.stdout)]


def voiced_seconds(pcm: bytes, rate: int, threshold: int = 1000) -> float:
    """From the first to the last sample louder than `threshold`: how long someone spoke."""
    samples = memoryview(pcm).cast("h")
    loud = [i for i in range(len(samples)) if abs(samples[i]) > threshold]
    return (loud[-1] - loud[0]) / rate if loud else 0.0


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_message_left_through_the_proxy_then_deleted_from_another_device(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 3), ("1001", "Bob", 1)])
    _desk, second, mwi_dev = made["1000"]
    bob = made["1001"][0]
    configure(server, "account", "update", "1000", "--forward-no-answer", "voicemail")
    recordings = tmp_path / "recordings"  # the voicemail_dir setting, applied without a restart
    configure(server, "settings", "set", "voicemail_dir", str(recordings))
    mwi = run_sipp("mwi_subscribe_auth.xml", server, service="1000", auth=(mwi_dev.auth_username, mwi_dev.secret),
                   local_port=free_port(), timeout=90, background=True, workdir=tmp_path)
    assert isinstance(mwi, subprocess.Popen)
    # what Bob says: silence while the greeting plays, then a sentence spoken by espeak-ng
    greeting = len(read_wav(str(GREETING))[1]) / 2 / 8000 if GREETING.exists() else 0.0
    sentence = speak("Hello Alice, this is Bob. Please call me back about the meeting tomorrow.")
    said = sentence + b"\x00\x00" * 4000  # half a second of silence after it
    wav = tmp_path / "bob-says.wav"
    lead = 0.2  # Bob starts speaking this long after the greeting (and its beep) ended
    write_wav(wav, b"\x00\x00" * int(8000 * (greeting + lead)) + said)
    message_seconds = lead + len(said) / 2 / 8000  # what he sends after the greeting
    caller = Baresip(tmp_path / "bob", server, "1001", bob.auth_username, bob.secret, source_wav=wav)
    owner = Baresip(tmp_path / "alice2", server, "1000", second.auth_username, second.secret, tone_seconds=30)
    try:
        caller.start()
        caller.wait_registered()
        caller.dial(f"sip:1000@{server.address}")
        caller.wait_event("CALL_ESTABLISHED", timeout=10)
        caller.wait_event("CALL_CLOSED", timeout=greeting + message_seconds + 15)  # its file ended: it hung up
        _wait(lambda: any(m["complete"] for m in _messages(server, "1000")), 10, "the message to be saved")
        (msg,) = _messages(server, "1000")
        assert msg["path"].startswith(str(recordings / "1000")), msg
        rate, pcm = read_wav(msg["path"])
        recorded, spoken = voiced_seconds(pcm, rate), voiced_seconds(sentence, 8000)
        print(f"message: {len(pcm) / 2 / rate:.2f} s stored, speech {recorded:.2f} s of the {spoken:.2f} s said")
        assert abs(recorded - spoken) <= 0.5, (recorded, spoken, greeting)
        assert peak(pcm) > 3000, "the message is the caller's speech, not silence"

        owner.start()
        owner.wait_registered()
        owner.dial(f"sip:*98@{server.address}")
        owner.wait_event("CALL_ESTABLISHED", timeout=10)
        # 7 while the message plays deletes it; a 7 during the intro only cuts the intro short
        deadline = time.monotonic() + 25
        while _messages(server, "1000") and time.monotonic() < deadline:
            time.sleep(1.5)
            owner.command("sndcode", "7", check=False)  # RFC 4733 telephone-event
        assert not _messages(server, "1000"), "the message was not deleted by DTMF"
        owner.wait_event("CALL_CLOSED", timeout=30)  # no more messages: goodbye and our BYE
    finally:
        caller.stop()
        owner.stop()
    out, _ = mwi.communicate(timeout=60)
    assert mwi.returncode == 0, out[-3000:] + server.log()[-3000:]
    rows = history(server, "1000", 2)  # Bob's call, and the *98 call of 1000's second device
    row = one_call([r for r in rows if r["direction"] == "in"])
    assert (row["outcome"], row["forwarded_to"]) == ("voicemail", "voicemail")
    assert [r["other_number"] for r in rows if r["direction"] == "out"] == ["*98"]
