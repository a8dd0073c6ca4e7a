"""Forwarding and do-not-disturb: the final actions of a ring plan.

Given an account, say what happens when the call must not ring at all (DND,
unconditional forward: `immediate_action`) and what happens after the devices had
their chance (`final_actions`: busy, no answer, nothing to ring).

Choices worth knowing:
- DND wins over an unconditional forward: "do not disturb" is the stronger wish, and
  DND with a busy forward set still sends the call there (SPEC: DND is busy/forward).
- When no device can ring (all unregistered, disabled or at ring order 0) the call
  goes to the **no-answer** forward when one is set: a caller reaching a phone that is
  switched off expects what happens when nobody picks up (usually voicemail). With no
  such forward the answer is 480 Temporarily Unavailable, as for no answer.
- An empty target string counts as "off", like ``None``: forwarding to "" cannot work.

Pure: depends on routing.model only; no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from onenumber.routing.model import Account, FinalAction, FinalKind

# Why the call is forwarded (FinalAction.reason of FORWARD actions).
UNCONDITIONAL_FORWARD = "unconditional forward"
DND_FORWARD = "do not disturb (busy forward)"
BUSY_FORWARD = "busy forward"
NO_ANSWER_FORWARD = "no-answer forward"
UNAVAILABLE_FORWARD = "no device can ring (handled as no answer: no-answer forward)"

# What a device's decision says when the call does not ring any device.
DEVICE_DND = "account in do-not-disturb"
DEVICE_UNCONDITIONAL = "forwarded unconditionally"

# Rejections (SIP status and reason phrase).
BUSY = FinalAction(FinalKind.REJECT, status=486, reason="Busy Here")
BUSY_DND = FinalAction(FinalKind.REJECT, status=486, reason="Busy Here (do not disturb)")
UNAVAILABLE = FinalAction(FinalKind.REJECT, status=480, reason="Temporarily Unavailable")


@dataclass(frozen=True, slots=True)
class FinalActions:
    """What the proxy does once ringing is over (or never started)."""

    on_busy: FinalAction
    on_no_answer: FinalAction
    on_unavailable: FinalAction


@dataclass(frozen=True, slots=True)
class Immediate:
    """The call is not offered to any device: `action` now, `device_reason` for each device."""

    action: FinalAction
    device_reason: str


def _forward(target: str, reason: str) -> FinalAction:
    return FinalAction(FinalKind.FORWARD, reason=reason, target=target)


def final_actions(account: Account) -> FinalActions:
    """The busy, no-answer and unavailable outcomes of the account's forwarding rules."""
    fwd = account.forwarding
    on_busy = _forward(fwd.busy, BUSY_FORWARD) if fwd.busy else BUSY
    if fwd.no_answer:
        on_no_answer = _forward(fwd.no_answer, NO_ANSWER_FORWARD)
        on_unavailable = _forward(fwd.no_answer, UNAVAILABLE_FORWARD)
    else:
        on_no_answer = on_unavailable = UNAVAILABLE
    return FinalActions(on_busy=on_busy, on_no_answer=on_no_answer, on_unavailable=on_unavailable)


def immediate_action(account: Account) -> Immediate | None:
    """DND or unconditional forward: the call skips every device. None when it may ring."""
    fwd = account.forwarding
    if account.dnd:
        action = _forward(fwd.busy, DND_FORWARD) if fwd.busy else BUSY_DND
        return Immediate(action, DEVICE_DND)
    if fwd.unconditional:
        return Immediate(_forward(fwd.unconditional, UNCONDITIONAL_FORWARD), DEVICE_UNCONDITIONAL)
    return None
