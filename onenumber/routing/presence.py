"""The presence policy: (account, devices, bindings, per-device dialogs, now) → one state.

Colleagues see one state per account (SPEC.md "Presence"): `available`, `ringing`,
`in-use`, `dnd`, `offline`. The inputs are the account (ring mode, selected device,
DND), its devices, their live bindings, and the dialogs each device is in, described by
`DeviceDialog` in RFC 4235 terms (trying / proceeding / early / confirmed / terminated,
initiator or recipient) so the same value can feed the dialog event package.

One device's state (`device_state`):
- `in-use` when it has a confirmed dialog, or a dialog it initiated that has not ended
  (a call being placed from it: the person is at that phone, as Asterisk's INUSE);
- `ringing` when it is the recipient of a dialog in trying / proceeding / early;
- `available` when it is registered (enabled, credentials valid, an unexpired binding of
  this account); `offline` otherwise. Terminated dialogs count for nothing.

The account's state:
- `in-use` wins over everything: a person in a call is in a call, DND or not;
- then `dnd` when the account is in do-not-disturb (nothing rings: SPEC "DND");
- `ordered` mode, and the fallback of `exclusive`: the "any device" rules — `in-use` if
  any device is in a call, else `ringing` if any rings, else `available` if any is
  registered, else `offline`;
- `exclusive` mode, XiVO's rules: when no `webphone` device is registered the state is
  the deskphone's, i.e. the "any device" rules over the non-web devices; when one is,
  the selected device's state wins, except that a call placed from (or answered on)
  another device still shows `in-use`.

Rules beyond SPEC.md, decided here:
- In exclusive mode with the web phone registered, a selected device that cannot ring
  (missing, disabled, credentials expired, not registered) does not decide: the ring
  plan falls back to the other devices then (plan.py), so presence falls back to the
  "any device" rules too. The same holds when no device is selected.
- Dialogs of positions the account has no device at are ignored.

Pure: depends on routing.model only; no I/O, no clock (`now` is passed in).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from onenumber.routing.model import Account, Binding, Device, DeviceKind, RingMode

from ..frozen import quick_init


class Presence(StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    IN_USE = "in-use"
    DND = "dnd"
    OFFLINE = "offline"


class DialogState(StrEnum):
    """RFC 4235 §3.7.1 dialog states."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Direction(StrEnum):
    """RFC 4235 §4.1.2: the device's role in the dialog."""

    INITIATOR = "initiator"  # the device placed the call
    RECIPIENT = "recipient"  # the device was called


@quick_init
@dataclass(frozen=True, slots=True)
class DeviceDialog:
    """One dialog (or early dialog) of one device of the account."""

    position: int  # the device's position in its account
    state: DialogState
    direction: Direction
    call_id: str = ""

    @property
    def active(self) -> bool:
        return self.state is not DialogState.TERMINATED

    @property
    def in_call(self) -> bool:
        """Confirmed, or placed from this device and not over yet."""
        if self.state is DialogState.CONFIRMED:
            return True
        return self.direction is Direction.INITIATOR and self.active

    @property
    def ringing(self) -> bool:
        return self.direction is Direction.RECIPIENT and self.state in _RINGING_STATES


_RINGING_STATES = frozenset({DialogState.TRYING, DialogState.PROCEEDING, DialogState.EARLY})
_CONFIRMED, _TERMINATED = DialogState.CONFIRMED, DialogState.TERMINATED
_INITIATOR, _RECIPIENT = Direction.INITIATOR, Direction.RECIPIENT


def is_registered(device: Device, bindings: Iterable[Binding], now: float) -> bool:
    """Enabled, credentials valid, and an unexpired binding of its own account."""
    if not device.enabled:
        return False
    if device.credential_expires_at is not None and device.credential_expires_at <= now:
        return False
    account, user = device.account, device.auth_username
    for b in bindings:  # noqa: SIM110  # a loop, not any(generator): every BLF flush runs this per device
        if b.auth_username == user and b.account == account and b.expires_at > now:
            return True
    return False


def device_state(
    device: Device, bindings: Iterable[Binding], dialogs: Iterable[DeviceDialog], now: float
) -> Presence:
    """One device's own state (never `dnd`: DND belongs to the account)."""
    position = device.position
    ringing = False
    for d in dialogs:  # `in_call` and `ringing` written out: every BLF flush runs this per device
        if d.position != position:
            continue
        state = d.state
        if state is _CONFIRMED or (d.direction is _INITIATOR and state is not _TERMINATED):
            return Presence.IN_USE
        if not ringing and d.direction is _RECIPIENT and state in _RINGING_STATES:
            ringing = True
    if ringing:
        return Presence.RINGING
    return Presence.AVAILABLE if is_registered(device, bindings, now) else Presence.OFFLINE


_RANK = {Presence.IN_USE: 3, Presence.RINGING: 2, Presence.AVAILABLE: 1, Presence.OFFLINE: 0}


def any_device(states: Iterable[Presence]) -> Presence:
    """The "any device" rule: in-use, else ringing, else available, else offline."""
    return max(states, key=_RANK.__getitem__, default=Presence.OFFLINE)


def account_presence(
    account: Account,
    devices: Sequence[Device],
    bindings: Sequence[Binding],
    dialogs: Sequence[DeviceDialog],
    now: float,
) -> Presence:
    """The one state colleagues see for `account` (`account_view`'s first half)."""
    return account_view(account, devices, bindings, dialogs, now)[0]


def visible_dialogs(
    account: Account,
    devices: Sequence[Device],
    bindings: Sequence[Binding],
    dialogs: Sequence[DeviceDialog],
    now: float,
) -> list[DeviceDialog]:
    """The active dialogs that make the account's state: what BLF keys should show.

    Ordered mode: every device's. Exclusive mode: without the web phone registered, the
    other devices'; with it and a selected device that can ring, that device's dialogs and
    the calls (not the rings) of the others; otherwise every device's. Feeding only these
    to `account_presence` gives the same state (a property the tests check).
    """
    return account_view(account, devices, bindings, dialogs, now)[1]


_IN_USE, _DND = Presence.IN_USE, Presence.DND  # an enum member read off its class costs ~10 attribute reads
_EXCLUSIVE, _WEBPHONE = RingMode.EXCLUSIVE, DeviceKind.WEBPHONE


def account_view(
    account: Account,
    devices: Sequence[Device],
    bindings: Sequence[Binding],
    dialogs: Sequence[DeviceDialog],
    now: float,
) -> tuple[Presence, list[DeviceDialog]]:
    """`(account_presence(…), visible_dialogs(…))` in one pass over the inputs (a BLF flush needs
    both, and they share most of their work): the account's presence policy, in one place.

    A call on any counted device shows as in use, whatever is selected; then DND; then, in
    exclusive mode with the web phone registered, the selected device's state; else the "any
    device" rule. Exclusive mode without the web phone registered counts the other devices
    (XiVO: "the state is the deskphone's")."""
    number = account.number
    own = [d for d in devices if d.account == number]
    live = [b for b in bindings if b.account == number]
    positions = {d.position for d in own}
    active = [d for d in dialogs if d.state is not _TERMINATED and d.position in positions]
    # terminated dialogs and other positions' count for nothing in a device's state
    states = {d.position: device_state(d, live, active, now) for d in own}
    chosen = None
    if account.ring_mode != _EXCLUSIVE:
        web = False
        counted = list(states.values())
        visible = active
    elif not _webphone_registered(own, live, now):
        web = False
        counted = [states[d.position] for d in own if d.kind != _WEBPHONE]
        hidden = {d.position for d in own if d.kind == _WEBPHONE}
        visible = [d for d in active if d.position not in hidden]
    else:
        web = True
        counted = list(states.values())
        chosen = _selected(account, own, live, now)
        visible = active if chosen is None else [d for d in active if d.position == chosen.position or d.in_call]
    if _IN_USE in counted:
        presence = _IN_USE
    elif account.dnd:
        presence = _DND
    elif web and chosen is not None:
        presence = states[chosen.position]
    else:
        presence = any_device(counted)
    return presence, visible


def _webphone_registered(devices: Sequence[Device], bindings: Sequence[Binding], now: float) -> bool:
    return any(d.kind == DeviceKind.WEBPHONE and is_registered(d, bindings, now) for d in devices)


def _selected(account: Account, devices: Sequence[Device], bindings: Sequence[Binding], now: float) -> Device | None:
    """The selected device when it can ring, else None (the ring plan falls back then)."""
    chosen = next((d for d in devices if d.position == account.selected_device), None)
    if chosen is None or chosen.ring_order == 0 or not is_registered(chosen, bindings, now):
        return None
    return chosen
