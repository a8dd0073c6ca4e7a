"""'Who would ring now?': plan rows for the API and text for the CLI."""

import json

from onenumber.routing.explain import describe_action, explain, format_plan
from onenumber.routing.forwarding import BUSY
from onenumber.routing.model import (
    Account,
    Binding,
    Device,
    DeviceKind,
    FinalAction,
    FinalKind,
    Forwarding,
)
from onenumber.routing.plan import plan_call


def device(position: int, ring_order: int = 1, **kw) -> Device:
    user = "1000" if position == 0 else f"1000_{position + 1}"
    return Device("1000", position, DeviceKind.SOFTPHONE, user, "s", ring_order=ring_order, **kw)


def binding(dev: Device, contact: str = "") -> Binding:
    return Binding("1000", dev.auth_username, contact or f"sip:{dev.auth_username}@x", 100.0, "udp", ("x", 1))


def sample(**kw):
    devs = [device(0), device(1, 2), device(2, 0), device(3)]
    bindings = [binding(devs[0]), binding(devs[1]), binding(devs[1], "sip:other@y")]
    return plan_call(Account("1000", "Alice", **kw), devs, bindings, now=10.0)


def test_explain_rows():
    rows = explain(sample())
    assert rows == [
        {"position": 0, "auth_username": "1000", "rings": True, "stage": 0, "start": 0.0,
         "reason": "ring order 1"},
        {"position": 1, "auth_username": "1000_2", "rings": True, "stage": 1, "start": 10.0,
         "reason": "ring order 2"},
        {"position": 2, "auth_username": "1000_3", "rings": False, "stage": None, "start": None,
         "reason": "ring order 0 (never rings)"},
        {"position": 3, "auth_username": "1000_4", "rings": False, "stage": None, "start": None,
         "reason": "not registered"},
    ]
    json.dumps(rows)  # JSON-ready


def test_explain_when_nothing_rings():
    rows = explain(sample(dnd=True))
    assert {r["reason"] for r in rows} == {"account in do-not-disturb"}
    assert not any(r["rings"] for r in rows)


def test_describe_action():
    assert describe_action(BUSY) == "reject 486 Busy Here"
    fwd = FinalAction(FinalKind.FORWARD, reason="busy forward", target="2000")
    assert describe_action(fwd) == "forward to 2000 (busy forward)"


def test_format_plan_lists_stages_devices_and_outcomes():
    text = format_plan(sample(forwarding=Forwarding(no_answer="voicemail")))
    assert text.splitlines()[0] == "Ring plan for 1000"
    assert "stage 0 at 0 s, 1 contact: 1000 (position 0)" in text
    assert "stage 1 at 10 s, 2 contacts: 1000_2 (position 1)" in text
    assert "ring order 0 (never rings)" in text
    assert "not registered" in text
    assert "If every device is busy: reject 486 Busy Here" in text
    assert "No answer after 30 s: forward to voicemail (no-answer forward)" in text


def test_format_plan_immediate():
    text = format_plan(sample(forwarding=Forwarding(unconditional="2000")))
    assert "rings nothing: forward to 2000 (unconditional forward)" in text
    assert "forwarded unconditionally" in text
    assert "stage" not in text


def test_format_plan_nothing_registered():
    plan = plan_call(Account("1000", "Alice"), [device(0)], [], now=0.0)
    text = format_plan(plan)
    assert "rings nothing: reject 480 Temporarily Unavailable" in text


def test_format_plan_no_devices():
    plan = plan_call(Account("1000", "Alice"), [], [], now=0.0)
    assert "Devices: none" in format_plan(plan)
