"""The routing policy: (account, devices, live bindings, call state, now) → RingPlan.

One small function per ring mode (`plan_ordered`, `plan_exclusive`), read like a
Kamailio route block; `plan_call` picks the account's mode. Every plan says, for each
device of the account, whether it rings and why (the reason constants below), so the
proxy, `onenumber ring-plan` and the API all tell the same story.

Rules beyond SPEC.md, decided here:
- A device is *registered* when it has at least one binding of this account that has
  not expired (`expires_at > now`); all those bindings ring, in its stage.
- Checks apply in this order, the first that fails is the reason: disabled, ring
  order 0, credentials expired, not registered, call waiting.
- Stages are additive: stage *i* starts at ``i * stage_seconds`` and earlier stages keep
  ringing. A stage that would start at or after ``no_answer_seconds`` (other than the
  first) can never ring, because the no-answer action ends the call then: its devices
  are out with `AFTER_NO_ANSWER`.
- When nothing rings and a device was left out only because of call waiting, the
  person is on the phone: the plan's `immediate` is the busy action (busy forward or
  486), not the "unavailable" one.
- Exclusive mode: when the selected device can ring (enabled, ring order > 0,
  credentials valid, registered) only it rings and the forwarding rules apply to it
  alone (XiVO): if it is in a call with call waiting off the account is busy. Otherwise
  the other devices get the ordered plan. No selection at all also means ordered.
- DND and unconditional forward are checked first, in every mode (see forwarding.py).

Pure: depends on routing.model and routing.forwarding only; no I/O, no clock (`now` is
passed in), no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby

from onenumber.routing.forwarding import Immediate, final_actions, immediate_action
from onenumber.routing.model import (
    Account,
    Binding,
    CallState,
    Device,
    DeviceDecision,
    RingMode,
    RingPlan,
    Stage,
)

from ..frozen import quick_init

# Why a device does not ring.
DISABLED = "disabled"
ORDER_ZERO = "ring order 0 (never rings)"
CREDENTIALS_EXPIRED = "credentials expired"
NOT_REGISTERED = "not registered"
CALL_WAITING_OFF = "account in a call and call waiting is off"
DEVICE_IN_CALL = "device in a call and call waiting is off"
NOT_SELECTED = "not selected (exclusive mode)"
SELECTED_DISABLED = "selected device disabled"
SELECTED_ORDER_ZERO = "selected device has ring order 0 (never rings)"
SELECTED_CREDENTIALS_EXPIRED = "selected device credentials expired"
SELECTED_NOT_REGISTERED = "selected device not registered"
AFTER_NO_ANSWER = (
    "ring order {order} would join at {start:g} s, after the no-answer timeout ({timeout:g} s)"
)

# Why a device rings (formatted with its ring order).
RINGS_ORDERED = "ring order {order}"
RINGS_SELECTED = "selected device (exclusive mode)"
RINGS_FALLBACK = "ring order {order} (selected device unavailable)"
RINGS_NO_SELECTION = "ring order {order} (no device selected)"

_SELECTED_REASONS = {
    DISABLED: SELECTED_DISABLED,
    ORDER_ZERO: SELECTED_ORDER_ZERO,
    CREDENTIALS_EXPIRED: SELECTED_CREDENTIALS_EXPIRED,
    NOT_REGISTERED: SELECTED_NOT_REGISTERED,
}
_BUSY_REASONS = frozenset({CALL_WAITING_OFF, DEVICE_IN_CALL})


@quick_init
@dataclass(frozen=True, slots=True)
class _View:
    """The account as routing sees it at `now`: its own devices and their live bindings."""

    account: Account
    devices: tuple[Device, ...]  # by position
    live: Mapping[str, tuple[Binding, ...]]  # auth username → unexpired bindings, by contact
    state: CallState
    now: float


def _view(
    account: Account, devices: Sequence[Device], bindings: Sequence[Binding], state: CallState, now: float
) -> _View:
    number = account.number
    own = sorted([d for d in devices if d.account == number], key=_by_position)
    live: dict[str, list[Binding]] = {}
    for b in bindings:
        if b.account == number and b.expires_at > now:
            found = live.get(b.auth_username)
            if found is None:
                live[b.auth_username] = [b]
            else:
                found.append(b)
    # a total order, so the plan never depends on the order bindings were given in (one binding
    # per device is the usual case: nothing to sort)
    by_contact = {user: tuple(sorted(bs, key=_binding_order)) if len(bs) > 1 else (bs[0],)
                  for user, bs in live.items()}
    return _View(account, tuple(own), by_contact, state, now)


def _by_position(d: Device) -> int:
    return d.position


def _binding_order(b: Binding) -> tuple[str, str, float, tuple[str, int], str]:
    return (b.contact, b.key, b.expires_at, b.source, b.transport)


# -- the checks every mode shares ---------------------------------------------------------


def _unavailable(device: Device, view: _View) -> str | None:
    """Why the device cannot ring whatever the call state; None when it can."""
    if not device.enabled:
        return DISABLED
    if device.ring_order == 0:
        return ORDER_ZERO
    if device.credential_expires_at is not None and device.credential_expires_at <= view.now:
        return CREDENTIALS_EXPIRED
    if not view.live.get(device.auth_username):
        return NOT_REGISTERED
    return None


def _call_waiting(device: Device, state: CallState) -> str | None:
    """Why the device must not be disturbed by a second call; None when it may ring."""
    if device.call_waiting:
        return None
    if device.position in state.devices_in_call:
        return DEVICE_IN_CALL
    if state.active_calls > 0:
        return CALL_WAITING_OFF
    return None


def _why_out(device: Device, view: _View) -> str | None:
    return _unavailable(device, view) or _call_waiting(device, view.state)


# -- the ring modes -----------------------------------------------------------------------


def plan_ordered(
    account: Account,
    devices: Sequence[Device],
    bindings: Sequence[Binding],
    state: CallState = CallState(),
    now: float = 0.0,
) -> RingPlan:
    """Ordered (the default): ring-order groups, each joining `stage_seconds` after the last."""
    view = _view(account, devices, bindings, state, now)
    if (skip := immediate_action(account)) is not None:
        return _skipped(view, skip)
    return _ordered(view, view.devices, RINGS_ORDERED)


def plan_exclusive(
    account: Account,
    devices: Sequence[Device],
    bindings: Sequence[Binding],
    state: CallState = CallState(),
    now: float = 0.0,
) -> RingPlan:
    """Exclusive: only the selected device rings; if it cannot, the others ring in order."""
    view = _view(account, devices, bindings, state, now)
    if (skip := immediate_action(account)) is not None:
        return _skipped(view, skip)
    selected = next((d for d in view.devices if d.position == account.selected_device), None)
    if selected is None:
        return _ordered(view, view.devices, RINGS_NO_SELECTION)
    others = [d for d in view.devices if d is not selected]
    if (why := _unavailable(selected, view)) is not None:
        return _ordered(view, others, RINGS_FALLBACK, {selected.position: _SELECTED_REASONS[why]})
    # The selected device is in use: the others stay silent even when it cannot take the call.
    out = {d.position: NOT_SELECTED for d in others}
    if (busy := _call_waiting(selected, view.state)) is not None:
        out[selected.position] = busy
        return _assemble(view, [], out)
    return _assemble(view, [(selected, RINGS_SELECTED)], out)


_MODES: dict[RingMode, Callable[..., RingPlan]] = {
    RingMode.ORDERED: plan_ordered,
    RingMode.EXCLUSIVE: plan_exclusive,
}


def plan_call(
    account: Account,
    devices: Sequence[Device],
    bindings: Sequence[Binding],
    state: CallState = CallState(),
    now: float = 0.0,
) -> RingPlan:
    """The ring plan for one incoming call to `account` (or for "who would ring now?")."""
    try:
        mode = _MODES[RingMode(account.ring_mode)]
    except (KeyError, ValueError):
        raise ValueError(f"account {account.number}: unknown ring mode {account.ring_mode!r}") from None
    return mode(account, devices, bindings, state, now)


# -- building the plan --------------------------------------------------------------------


def _ordered(
    view: _View, devices: Sequence[Device], ring_reason: str, out: Mapping[int, str] | None = None
) -> RingPlan:
    """The ordered plan over `devices`; `out` holds reasons decided by the caller."""
    reasons = dict(out or {})
    ringing: list[tuple[Device, str]] = []
    for device in devices:
        if (why := _why_out(device, view)) is not None:
            reasons[device.position] = why
        else:
            ringing.append((device, ring_reason.format(order=device.ring_order)))
    return _assemble(view, ringing, reasons)


def _assemble(view: _View, ringing: Sequence[tuple[Device, str]], out: Mapping[int, str]) -> RingPlan:
    """Group ringing devices into additive stages by ring order, then decide the finals."""
    account = view.account
    names = {d.position: d.auth_username for d in view.devices}
    decisions = {pos: DeviceDecision(pos, names[pos], False, None, why) for pos, why in out.items()}
    stages: list[Stage] = []
    ranked = sorted(ringing, key=lambda r: (r[0].ring_order, r[0].position))
    for step, (order, group) in enumerate(groupby(ranked, key=lambda r: r[0].ring_order)):
        members = list(group)
        start = float(step * account.stage_seconds)
        if step > 0 and start >= account.no_answer_seconds:
            late = AFTER_NO_ANSWER.format(order=order, start=start, timeout=account.no_answer_seconds)
            for device, _ in members:
                decisions[device.position] = DeviceDecision(
                    device.position, device.auth_username, rings=False, stage=None, reason=late
                )
            continue
        stage = len(stages)
        for device, why in members:
            decisions[device.position] = DeviceDecision(device.position, device.auth_username, True, stage, why)
        stages.append(Stage(
            start,
            tuple([b for device, _ in members for b in view.live[device.auth_username]]),
            tuple([device.position for device, _ in members]),
        ))
    finals = final_actions(account)
    on_the_phone = not stages and any(d.reason in _BUSY_REASONS for d in decisions.values())
    return RingPlan(
        account=account.number,
        stages=tuple(stages),
        no_answer_seconds=float(account.no_answer_seconds),
        decline=account.decline,
        on_busy=finals.on_busy,
        on_no_answer=finals.on_no_answer,
        on_unavailable=finals.on_unavailable,
        immediate=finals.on_busy if on_the_phone else None,
        decisions=tuple(decisions[pos] for pos in sorted(decisions)),
    )


def _skipped(view: _View, skip: Immediate) -> RingPlan:
    """A plan that rings nothing: DND or unconditional forward."""
    plan = _assemble(view, [], {d.position: skip.device_reason for d in view.devices})
    return replace(plan, immediate=skip.action)
