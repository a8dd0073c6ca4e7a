"""Request and response models of the HTTP API (pydantic), shared with the CLI's `--json`.

Field names are the API's; validation messages name these fields. Building a response
from the value types goes through the `*_out` helpers so the API and the CLI print the
same shape. Depends on pydantic and the value types only (no HTTP).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model import Binding
from ..routing.explain import describe_action, explain
from ..routing.model import Account, Device, FinalAction, RingPlan
from ..settings import Trunk
from ..store.logins import ApiToken
from ..store.views import binding_view


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------- login


class LoginRequest(Model):
    username: str = Field(min_length=1, max_length=64, description="Admin username or account number")
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(Model):
    kind: Literal["user", "admin"]
    account: str | None
    name: str
    csrf: str


class ErrorDetail(Model):
    field: str
    message: str


class ErrorBody(Model):
    """Every error: a code, one line for people, the field it is about (API names) when known."""

    error: str
    message: str
    field: str | None = None
    details: list[ErrorDetail] | None = Field(default=None, description="every problem, for validation errors")
    detail: str | None = Field(default=None, description="the message again (the ops routers' shape)")


# ---------------------------------------------------------------------------------------- me


class DeviceOut(Model):
    """A device as listed: never its secret."""

    account: str
    position: int
    kind: str
    auth_username: str
    order: int = Field(description="lower rings first; 0 never rings")
    enabled: bool
    label: str
    internet: bool = Field(description="may register from outside the trusted networks")
    call_waiting: bool
    credential_expires_at: float | None
    registered: bool | None = Field(default=None, description="registered now (null where not known, e.g. CLI)")


class AccountOut(Model):
    number: str
    name: str
    dids: list[str]
    ring_mode: str
    stage_seconds: int
    no_answer_seconds: int
    forward_unconditional: str | None
    forward_busy: str | None
    forward_no_answer: str | None
    decline: str
    dnd: bool
    selected_device: int | None
    cli: str | None
    voicemail_pin_set: bool = Field(
        default=False, description="the box has its own voicemail PIN (never shown); false: the server-wide one")
    devices: list[DeviceOut] = []


class WebphoneCredential(Model):
    auth_username: str
    password: str
    realm: str
    domain: str
    ws_path: str
    display_name: str
    number: str


class HistoryOut(Model):
    direction: Literal["incoming", "outgoing"]
    other_number: str
    other_name: str
    started_at: str
    answered_at: str | None
    ended_at: str | None
    duration: float
    device: str | None
    device_position: int | None = None
    outcome: str
    forwarded_to: str | None = None
    forward_reason: str | None = None


NUMBER = r"^[0-9]{1,20}$"
TARGET_DOC = "a number, 'voicemail', or null / \"\" for off"
RingMode = Literal["ordered", "exclusive"]
Decline = Literal["everywhere", "device"]
DeviceKind = Literal["deskphone", "softphone", "mobile", "webphone"]


class AccountCreate(Model):
    number: str = Field(pattern=NUMBER, description="1 to 20 digits, e.g. 1000")
    name: str = Field(min_length=1, max_length=200)
    dids: list[str] = Field(default=[], max_length=50)


class MeUpdate(Model):
    """What a user may change of their own account. Only the fields given change."""

    ring_mode: RingMode | None = None
    stage_seconds: int | None = Field(default=None, ge=1, le=3600)
    no_answer_seconds: int | None = Field(default=None, ge=1, le=3600)
    forward_unconditional: str | None = Field(default=None, max_length=64, description=TARGET_DOC)
    forward_busy: str | None = Field(default=None, max_length=64, description=TARGET_DOC)
    forward_no_answer: str | None = Field(default=None, max_length=64, description=TARGET_DOC)
    dnd: bool | None = None
    selected_device: int | None = Field(default=None, ge=0, le=7, description="position, or null for none")
    voicemail_pin: str | None = Field(
        default=None, pattern=r"^([0-9]{4,12})?$",
        description="the box's own PIN, 4-12 digits, asked of callers not recognised by their device; "
                    "null or \"\": the server-wide one")


class AccountUpdate(MeUpdate):
    """Only the fields given change. For forward_* and cli, null or "" turns the value off. An
    admin may change what a user may (MeUpdate), and these besides."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    dids: list[str] | None = Field(default=None, max_length=50, description="the full list of DIDs")
    decline: Decline | None = None
    cli: str | None = Field(default=None, max_length=64, description="caller ID for external calls")


class DeviceCreate(Model):
    kind: DeviceKind
    position: int | None = Field(default=None, ge=0, le=7, description="default: the first free one")
    order: int = Field(default=1, ge=0, le=99, description="lower rings first; 0 never rings")
    label: str = Field(default="", max_length=200)
    auth_username: str | None = Field(default=None, min_length=1, max_length=64)
    internet: bool = False
    call_waiting: bool = True
    expires_days: float | None = Field(default=None, ge=0, le=36500, description="credential expiry; 0 = never")


class DeviceUpdate(Model):
    position: int | None = Field(default=None, ge=0, le=7, description="move the device to this position")
    kind: DeviceKind | None = None
    order: int | None = Field(default=None, ge=0, le=99)
    enabled: bool | None = None
    label: str | None = Field(default=None, max_length=200)
    auth_username: str | None = Field(default=None, min_length=1, max_length=64)
    internet: bool | None = None
    call_waiting: bool | None = None
    expires_days: float | None = Field(default=None, ge=0, le=36500, description="credential expiry; 0 = never")


class MyDeviceUpdate(Model):
    """What a user may change of their own devices."""

    order: int | None = Field(default=None, ge=0, le=99)
    enabled: bool | None = None
    label: str | None = Field(default=None, max_length=200)
    call_waiting: bool | None = None


class DeviceOrder(Model):
    positions: list[int] = Field(max_length=8, description="every device's position, in the order they ring")


class DeviceCreated(DeviceOut):
    secret: str = Field(description="the SIP password; shown only in this answer")


class PasswordSet(Model):
    password: str = Field(min_length=8, max_length=1024)


class PasswordChange(Model):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class BindingOut(Model):
    account: str
    auth_username: str
    contact: str
    transport: str
    expires: int
    expires_at: float
    source: str
    local: str
    instance: str | None
    reg_id: int | None
    user_agent: str
    path: list[str]
    outbound: bool
    q: float | None
    flow: str | None


class RingPlanRow(Model):
    position: int
    auth_username: str
    rings: bool
    stage: int | None
    start: float | None
    reason: str


class ActionOut(Model):
    kind: str
    status: int | None
    reason: str
    target: str | None
    text: str


class StageOut(Model):
    start: float
    positions: list[int]
    contacts: list[BindingOut]


class RingPlanOut(Model):
    """Who would ring now: the plan of a call arriving now, with a reason for every device
    (the same as `onenumber ring-plan NUMBER --json`)."""

    account: str
    ring_mode: str
    immediate: ActionOut | None
    stages: list[StageOut]
    devices: list[RingPlanRow]
    no_answer_seconds: float
    decline: str
    on_busy: ActionOut | None
    on_no_answer: ActionOut | None
    on_unavailable: ActionOut | None


class TrunkOut(Model):
    name: str
    host: str
    port: int
    transport: str
    prefix: str


class TrunkCreate(Model):
    name: str = Field(min_length=1, max_length=64)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    prefix: str = Field(default="", max_length=32)


class SettingValue(Model):
    value: str = Field(max_length=4000, description="as `onenumber settings set KEY VALUE` takes it")


class SelectedDevice(Model):
    position: int | None = Field(ge=0, le=7, description="Device position 0-7, or null for none")


class TokenOut(Model):
    id: int
    name: str
    role: Literal["admin", "user"]
    account: str | None
    created_at: float
    revoked_at: float | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself; shown only in this answer")


class TokenCreate(Model):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["admin", "user"] = "admin"
    account: str | None = Field(default=None, description="For a user token: the account it acts for")


def binding_out(binding: Binding, now: float) -> BindingOut:
    return BindingOut(**binding_view(binding, now))


def action_out(action: FinalAction | None) -> ActionOut | None:
    if action is None:
        return None
    return ActionOut(kind=str(action.kind), status=action.status or None, reason=action.reason,
                     target=action.target, text=describe_action(action))


def ring_plan_out(plan: RingPlan, account: Account, now: float) -> RingPlanOut:
    return RingPlanOut(
        account=plan.account, ring_mode=str(account.ring_mode), immediate=action_out(plan.immediate),
        stages=[StageOut(start=st.start, positions=list(st.positions),
                         contacts=[binding_out(b, now) for b in st.bindings]) for st in plan.stages],
        devices=[RingPlanRow(**row) for row in explain(plan)], no_answer_seconds=plan.no_answer_seconds,
        decline=str(plan.decline), on_busy=action_out(plan.on_busy), on_no_answer=action_out(plan.on_no_answer),
        on_unavailable=action_out(plan.on_unavailable),
    )


def trunk_out(trunk: Trunk) -> TrunkOut:
    return TrunkOut(name=trunk.name, host=trunk.host, port=trunk.port, transport=trunk.transport, prefix=trunk.prefix)


class UserTokenCreate(Model):
    name: str = Field(min_length=1, max_length=100, description="what the token is for")


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(id=token.id, name=token.name, role=token.role, account=token.account,
                    created_at=token.created_at, revoked_at=token.revoked_at)


def device_out(device: Device, registered: bool | None = None) -> DeviceOut:
    return DeviceOut(
        account=device.account, position=device.position, kind=str(device.kind), auth_username=device.auth_username,
        order=device.ring_order, enabled=device.enabled, label=device.label, internet=device.internet,
        call_waiting=device.call_waiting, credential_expires_at=device.credential_expires_at, registered=registered,
    )


def account_out(account: Account, devices: list[Device] | None = None,
                registered: set[str] | None = None) -> AccountOut:
    return AccountOut(
        number=account.number, name=account.display_name, dids=list(account.dids), ring_mode=str(account.ring_mode),
        stage_seconds=account.stage_seconds, no_answer_seconds=account.no_answer_seconds,
        forward_unconditional=account.forwarding.unconditional, forward_busy=account.forwarding.busy,
        forward_no_answer=account.forwarding.no_answer, decline=str(account.decline), dnd=account.dnd,
        selected_device=account.selected_device, cli=account.custom_cli,
        voicemail_pin_set=account.voicemail_pin is not None,
        devices=[device_out(d, None if registered is None else d.auth_username in registered) for d in devices or []],
    )


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def history_out(row: dict[str, Any], labels: dict[int, str] | None = None) -> HistoryOut:
    """A call_history row as the API shows it (ISO times, 'incoming'/'outgoing', the device label)."""
    position = row.get("device_position")
    device = row.get("device")
    if labels and position is not None and labels.get(position):
        device = labels[position]
    return HistoryOut(
        direction="incoming" if row["direction"] == "in" else "outgoing",
        other_number=row["other_number"], other_name=row["other_name"],
        started_at=_iso(row["started_at"]) or "", answered_at=_iso(row.get("answered_at")),
        ended_at=_iso(row.get("ended_at")), duration=float(row.get("duration") or 0), device=device,
        device_position=position, outcome=row["outcome"], forwarded_to=row.get("forwarded_to"),
        forward_reason=row.get("forward_reason"),
    )
