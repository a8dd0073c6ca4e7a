"""The voicemail user agent with a real phone: baresip leaves a message, then listens to it.

The voicemail service runs in the test's event loop on its own stack (the standalone
transaction user: no proxy yet), on a free UDP port; baresip 1.0 dials it directly
(no registration). Leaving: baresip's 440 Hz tone lasts `tone_seconds`, then it hangs
up; the stored WAV must be non-silent and as long as what was said after the beep.
Listening: baresip dials the access number as the box's owner; the menu plays the message
to its end (it becomes heard), times out and hangs up with our BYE.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from types import SimpleNamespace

from onenumber.media.wav import peak, read_wav, write_wav
from onenumber.services.subscriptions import Package, SubscriptionPolicy, Subscriptions
from onenumber.services.voicemail.menu import MenuSettings
from onenumber.services.voicemail.service import Prompts, StandaloneVoicemail, VoicemailService
from onenumber.services.voicemail.store import DirectoryMessageStore
from onenumber.sip.stack import Stack
from onenumber.transport.driver import Driver, listen_udp

from .baresip import Baresip, wav_peak
from .harness import LOOPBACK, check_port, free_port, run_sipp

GREETING_SECONDS = 1.0
BEEP_SECONDS = 0.4


async def _start_voicemail(tmp_path: Path, **kw):
    port = check_port(free_port())
    tags = (f"mwi{i}" for i in itertools.count(1))
    subs = Subscriptions(SubscriptionPolicy(packages=frozenset({Package.MESSAGE_SUMMARY})), lambda: next(tags),
                         f"sip:voicemail@{LOOPBACK}:{port}")
    app = StandaloneVoicemail(subscriptions=subs)
    stack = Stack(app)
    driver = Driver(stack)
    transport = await listen_udp(driver, LOOPBACK, port, 1 << 20)
    stack.local = {"udp": (LOOPBACK, port)}
    greeting = tmp_path / "greeting.wav"
    write_wav(greeting, b"\x00\x08" * int(8000 * GREETING_SECONDS))  # a quiet hum: audible, short
    store = DirectoryMessageStore(tmp_path / "vm")
    changes: list[str] = []
    finished: list[tuple[str, str]] = []
    svc = VoicemailService(
        stack, store, recordings=tmp_path / "vm", prompts=Prompts(greeting), pump=driver.pump,
        contact=f"sip:voicemail@{LOOPBACK}:{port}", on_change=lambda box: (changes.append(box), app.notify_box(box))[1],
        on_finished=lambda box, outcome: finished.append((box, outcome)), **kw,
    )
    app.service = svc
    return port, app, svc, store, changes, finished, transport


async def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_baresip_leaves_a_message_then_listens(tmp_path: Path) -> None:
    port, app, svc, store, changes, finished, transport = await _start_voicemail(tmp_path)
    tone_seconds = 6.0
    caller = Baresip(tmp_path / "caller", port, "1001", "1001", "x", regint=0, tone_seconds=tone_seconds)
    try:
        await asyncio.to_thread(caller.start)
        await asyncio.to_thread(caller.dial, f"sip:1000@{LOOPBACK}:{port}")
        await asyncio.to_thread(caller.wait_event, "CALL_ESTABLISHED", 5)
        await asyncio.to_thread(caller.wait_event, "CALL_CLOSED", tone_seconds + 10)  # its tone ended
        await _wait_for(lambda: finished, 5)
        await svc.drain()
    finally:
        await asyncio.to_thread(caller.stop)
    assert finished == [("1000", "voicemail")]
    (msg,) = await store.list("1000")
    assert msg.complete and msg.caller == "1001" and not msg.heard
    rate, pcm = read_wav(msg.path)
    recorded = len(pcm) / 2 / rate
    assert abs(recorded - msg.duration) < 0.01
    expected = tone_seconds - GREETING_SECONDS - BEEP_SECONDS
    print(f"recorded {recorded:.2f} s, expected {expected:.2f} s")
    assert abs(recorded - expected) <= 0.5, (recorded, expected)
    assert peak(pcm) > 3000  # the 440 Hz tone, not silence
    assert changes == ["1000"]

    # the owner listens: intro, the message to its end (heard), the menu times out, goodbye, our BYE
    app.menu = MenuSettings(menu_timeout=1.0, menu_repeats=0)
    owner = Baresip(tmp_path / "owner", port, "1000", "1000", "x", regint=0, tone_seconds=30, record=True)
    try:
        await asyncio.to_thread(owner.start)
        await asyncio.to_thread(owner.dial, f"sip:*98@{LOOPBACK}:{port}")
        await asyncio.to_thread(owner.wait_event, "CALL_ESTABLISHED", 5)
        await asyncio.to_thread(owner.wait_event, "CALL_CLOSED", msg.duration + 15)
        await _wait_for(lambda: len(finished) == 2, 5)
        await svc.drain()
    finally:
        await asyncio.to_thread(owner.stop)
    assert finished[1] == ("1000", "listened")
    assert (await store.list("1000"))[0].heard
    assert changes == ["1000", "1000"]
    heard = owner.recording_path()
    assert heard is not None and wav_peak(heard) > 1000  # it heard the tone it had left
    transport.close()


async def test_baresip_ends_the_message_with_hash_and_deletes_it_by_dtmf(tmp_path: Path) -> None:
    """With a SIPp device subscribed to the box's message-summary: no, then yes (1/0), then no."""
    port, app, svc, store, changes, finished, transport = await _start_voicemail(tmp_path)
    sipp = run_sipp("mwi_subscribe.xml", SimpleNamespace(address=f"{LOOPBACK}:{port}", workdir=tmp_path),
                    service="1000", timeout=45, background=True, workdir=tmp_path)
    await _wait_for(lambda: len(app.subscriptions), 10)
    caller = Baresip(tmp_path / "caller", port, "1001", "1001", "x", regint=0, tone_seconds=30)
    try:
        await asyncio.to_thread(caller.start)
        await asyncio.to_thread(caller.dial, f"sip:1000@{LOOPBACK}:{port}")
        await asyncio.to_thread(caller.wait_event, "CALL_ESTABLISHED", 5)
        await asyncio.sleep(GREETING_SECONDS + BEEP_SECONDS + 2.0)
        await asyncio.to_thread(caller.command, "sndcode", "#")  # RFC 4733 telephone-event
        closed = await asyncio.to_thread(caller.wait_event, "CALL_CLOSED", 10)  # our goodbye, then our BYE
        await _wait_for(lambda: finished, 5)
        await svc.drain()
    finally:
        await asyncio.to_thread(caller.stop)
    assert finished == [("1000", "voicemail")], closed
    (msg,) = await store.list("1000")
    assert abs(msg.duration - 2.0) <= 0.5, msg.duration
    assert changes == ["1000"]

    # the box's second device listens and deletes the message with 7 while it plays
    app.menu = MenuSettings(menu_timeout=5.0)
    second = Baresip(tmp_path / "second", port, "1000", "1000_2", "x", regint=0, tone_seconds=30)
    try:
        await asyncio.to_thread(second.start)
        await asyncio.to_thread(second.dial, f"sip:*98@{LOOPBACK}:{port}")
        await asyncio.to_thread(second.wait_event, "CALL_ESTABLISHED", 5)
        await asyncio.sleep(1.0)  # intro and "new message 1" are short beeps without espeak voices
        await asyncio.to_thread(second.command, "sndcode", "7")
        await asyncio.to_thread(second.wait_event, "CALL_CLOSED", 10)  # deleted, no more messages, goodbye
        await _wait_for(lambda: len(finished) == 2, 5)
        await svc.drain()
    finally:
        await asyncio.to_thread(second.stop)
    assert finished[1] == ("1000", "listened")
    assert await store.list("1000") == []
    assert not Path(msg.path).exists()
    assert changes[0] == "1000" and len(changes) in (2, 3)  # + "heard" if the 7 came after its end
    out, _ = await asyncio.to_thread(sipp.communicate, timeout=20)
    assert sipp.returncode == 0, out
    transport.close()
