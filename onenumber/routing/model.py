"""The values routing works on: accounts, devices, bindings, and the ring plan it returns.

Plain frozen dataclasses shared by the store (which loads them), the location service
(which holds bindings) and the routing policy (which reads them). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ..frozen import quick_init
from ..model import Binding
from ..settings import Settings, Trunk

MAX_DEVICES = 8
VOICEMAIL = "voicemail"  # the forwarding target that means the account's own voicemail box

__all__ = [
    "MAX_DEVICES",
    "VOICEMAIL",
    "Account",
    "Binding",
    "CallState",
    "DeclineMode",
    "Device",
    "DeviceDecision",
    "DeviceKind",
    "FinalAction",
    "FinalKind",
    "Forwarding",
    "RingMode",
    "RingPlan",
    "Snapshot",
    "Stage",
]


class DeviceKind(StrEnum):
    DESKPHONE = "deskphone"
    SOFTPHONE = "softphone"
    MOBILE = "mobile"
    WEBPHONE = "webphone"


class RingMode(StrEnum):
    ORDERED = "ordered"
    EXCLUSIVE = "exclusive"


class DeclineMode(StrEnum):
    EVERYWHERE = "everywhere"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Forwarding:
    """Where calls go instead of (or after) the devices. `None` means the rule is off.

    Targets are dialled numbers (internal number, DID or external); voicemail will be
    the target string ``"voicemail"`` once the voicemail service exists.
    """

    unconditional: str | None = None
    busy: str | None = None
    no_answer: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    number: str
    display_name: str
    dids: tuple[str, ...] = ()
    ring_mode: RingMode = RingMode.ORDERED
    stage_seconds: int = 10
    no_answer_seconds: int = 30
    forwarding: Forwarding = field(default_factory=Forwarding)
    decline: DeclineMode = DeclineMode.EVERYWHERE
    dnd: bool = False
    selected_device: int | None = None  # device position, for exclusive mode
    custom_cli: str | None = None  # caller ID shown on external calls
    voicemail_pin: str | None = None  # the box's PIN; None: the server-wide voicemail_pin setting


@dataclass(frozen=True, slots=True)
class Device:
    account: str  # the account's number
    position: int  # 0..7, unique per account
    kind: DeviceKind
    auth_username: str
    secret: str
    ring_order: int = 1  # 0 never rings; lower rings first
    enabled: bool = True
    label: str = ""
    internet: bool = False  # may register from outside the trusted networks
    credential_expires_at: float | None = None  # unix time; None = never
    call_waiting: bool = True
    # after a rotation the old secret still authenticates until previous_secret_until (unix time)
    previous_secret: str | None = None
    previous_secret_until: float | None = None
    secret_rotated_at: float | None = None  # unix time the current secret was set


@quick_init
@dataclass(frozen=True, slots=True)
class CallState:
    """What the account is doing now, as far as routing cares."""

    active_calls: int = 0  # established calls of the account, any device
    devices_in_call: frozenset[int] = frozenset()  # positions of devices in a call


class FinalKind(StrEnum):
    FORWARD = "forward"  # retarget the call to `target`
    REJECT = "reject"  # answer `status` `reason` upstream


@quick_init
@dataclass(frozen=True, slots=True)
class FinalAction:
    kind: FinalKind
    status: int = 0  # for REJECT
    reason: str = ""  # reason phrase for REJECT, or why we forward
    target: str | None = None  # for FORWARD: the number to call instead


@quick_init
@dataclass(frozen=True, slots=True)
class Stage:
    """Bindings rung together, starting `start` seconds after the call arrived."""

    start: float
    bindings: tuple[Binding, ...]
    positions: tuple[int, ...]  # the devices these bindings belong to


@quick_init
@dataclass(frozen=True, slots=True)
class DeviceDecision:
    """Why a device is in or out of a plan, for `onenumber ring-plan` and the API."""

    position: int
    auth_username: str
    rings: bool
    stage: int | None  # index into RingPlan.stages when it rings
    reason: str


@quick_init
@dataclass(frozen=True, slots=True)
class RingPlan:
    account: str
    stages: tuple[Stage, ...]
    no_answer_seconds: float
    decline: DeclineMode
    on_busy: FinalAction  # every rung device answered busy
    on_no_answer: FinalAction  # no_answer_seconds passed, or every stage timed out
    on_unavailable: FinalAction  # nothing to ring at all
    immediate: FinalAction | None = None  # set when the call must not ring (unconditional, DND)
    decisions: tuple[DeviceDecision, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """All configuration at one revision: what the server routes and authenticates with."""

    accounts: tuple[Account, ...]
    devices: tuple[Device, ...]
    settings: Settings
    trunks: tuple[Trunk, ...]
    revision: int
